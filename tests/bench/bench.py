#!/usr/bin/env python3
"""bench.py — the timing and number crunching behind tests/bench/run.sh.

    bench.py flips --n N --gap-ms MS --out FILE --first POOL CMD [CMD2]
        Run a flip command N times, GAP_MS apart, through /bin/sh -c (as a
        deploy script would).  With two commands they alternate (CMD to
        POOL first, then CMD2 to the other pool); with one, every run flips
        to the other pool.  FILE gets "START_US WALL_US TARGET EXIT" lines.

    bench.py rflips --n N --gap-ms MS --out FILE --first POOL SOCK REQUEST
        The same as flips, but each flip is REQUEST (a JSON line of the
        wire protocol, e.g. a switch) sent on a fresh connection to
        switchd's socket SOCK, timed from the request's first byte to the
        final reply: what switchd takes, without a shell or switchctl
        starting.  EXIT is 0 when the reply says ok.

    bench.py times --n N --gap-ms MS CMD
        Run CMD N times; print "median p99 failures" of the wall times (ms).

    bench.py effect POLLS FLIPS
        Match each flip with the poller's records: time to effect = first
        response from the target pool at or after the flip's start, minus
        the start.  Prints one JSON object: wall and effect medians and
        p99s (ms), flips not seen, and errors the poller saw.

    bench.py window POLLS FLIPS FIRST COUNT OUTDAT OUTFLIPS
        Data for the flips plot: the poller's records from just before flip
        FIRST to just after flip FIRST+COUNT-1, as "MS POOLNUM" (blue 1,
        green 2, error 0), and the flips' start times, ms from the same
        origin.

    bench.py skew FLIPS POLLS...
        One poller's records per HAProxy node: for each flip, each node's
        first response from the target pool at or after the flip's start;
        skew = the last node's minus the first node's.  Prints one JSON
        object: wall and skew medians and maxima (ms), flips not seen on
        every node, failed flips.  Without POLLS, only the walls.

    bench.py load N SOCK
        N commands (status 1/2, history 1/4, hosts 1/4), each on a fresh
        connection as switchctl does; prints "ok N failed N secs S".
"""
import json
import socket
import statistics
import subprocess
import sys
import time


def pct(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def other(pool):
    return "green" if pool == "blue" else "blue"


def flip_args(prog, argv, positional):
    import argparse
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--gap-ms", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--first", required=True)
    for name, nargs in positional:
        ap.add_argument(name, nargs=nargs)
    return ap.parse_args(argv)


def flip_loop(a, flip):
    """N flips, GAP_MS apart, each timed around flip(i, start) -> exit
    status (start: called when the clock starts); writes FILE's lines."""
    target = a.first
    with open(a.out, "w") as f:
        for i in range(a.n):
            t = {}
            rc = flip(i, lambda: t.update(start=time.time_ns() // 1000,
                                          t0=time.perf_counter()))
            wall = int((time.perf_counter() - t["t0"]) * 1e6)
            f.write("%d %d %s %d\n" % (t["start"], wall, target, rc))
            f.flush()
            target = other(target)
            time.sleep(a.gap_ms / 1000.0)


def flips(argv):
    a = flip_args("bench.py flips", argv, [("cmds", "+")])

    def flip(i, start):
        start()
        return subprocess.run(["/bin/sh", "-c", a.cmds[i % len(a.cmds)]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    flip_loop(a, flip)


def rflips(argv):
    a = flip_args("bench.py rflips", argv, [("sock", None), ("request", None)])
    req = a.request.encode() + b"\n"

    def flip(i, start):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(a.sock)
        start()
        s.sendall(req)
        buf, final = b"", None
        while final is None:
            b = s.recv(65536)
            if not b:
                break
            buf += b
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                o = json.loads(line)
                if "ok" in o:       # progress lines have no "ok"
                    final = o
        s.close()
        return 0 if final is not None and final.get("ok") is True else 1
    flip_loop(a, flip)


def times(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="bench.py times")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--gap-ms", type=int, default=0)
    ap.add_argument("cmd")
    a = ap.parse_args(argv)
    walls, bad = [], 0
    for _ in range(a.n):
        t0 = time.perf_counter()
        rc = subprocess.run(["/bin/sh", "-c", a.cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL).returncode
        walls.append((time.perf_counter() - t0) * 1000)
        bad += rc != 0
        time.sleep(a.gap_ms / 1000.0)
    print("%.2f %.2f %d" % (statistics.median(walls), pct(walls, 0.99), bad))


def read_polls(path):
    polls = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 2:
                polls.append((int(p[0]), p[1]))
    return polls


def read_flips(path):
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            out.append((int(p[0]), int(p[1]), p[2], int(p[3])))
    return out


def effect(argv):
    import bisect
    polls = read_polls(argv[0])
    fl = read_flips(argv[1])
    times_ = [t for t, _ in polls]
    walls, effects, unseen, failed = [], [], 0, 0
    for i, (start, wall, target, rc) in enumerate(fl):
        walls.append(wall / 1000.0)
        failed += rc != 0
        end = fl[i + 1][0] if i + 1 < len(fl) else start + 10_000_000
        j = bisect.bisect_left(times_, start)
        seen = None
        while j < len(polls) and polls[j][0] < end:
            if polls[j][1] == target:
                seen = polls[j][0]
                break
            j += 1
        if seen is None:
            unseen += 1
        else:
            effects.append((seen - start) / 1000.0)
    lo, hi = (fl[0][0], fl[-1][0] + fl[-1][1]) if fl else (0, 0)
    errors = sum(1 for t, p in polls if lo <= t <= hi + 200_000 and p.startswith("error"))
    during = sum(1 for t, p in polls if lo <= t <= hi + 200_000)
    r = {"n": len(fl), "failed": failed, "unseen": unseen,
         "wall_median": statistics.median(walls) if walls else None,
         "wall_p99": pct(walls, 0.99),
         "effect_median": statistics.median(effects) if effects else None,
         "effect_p99": pct(effects, 0.99),
         "poll_responses": during, "poll_errors": errors}
    print(json.dumps(r))


def skew(argv):
    import bisect
    fl = read_flips(argv[0])
    nodes = [read_polls(p) for p in argv[1:]]
    times_ = [[t for t, _ in polls] for polls in nodes]
    walls, skews, unseen, failed = [], [], 0, 0
    for i, (start, wall, target, rc) in enumerate(fl):
        walls.append(wall / 1000.0)
        failed += rc != 0
        end = fl[i + 1][0] if i + 1 < len(fl) else start + 10_000_000
        seen = []
        for polls, ts in zip(nodes, times_):
            j = bisect.bisect_left(ts, start)
            while j < len(polls) and polls[j][0] < end:
                if polls[j][1] == target:
                    seen.append(polls[j][0])
                    break
                j += 1
        if not nodes:
            continue
        if len(seen) < len(nodes):
            unseen += 1
        else:
            skews.append((max(seen) - min(seen)) / 1000.0)
    r = {"n": len(fl), "failed": failed, "unseen": unseen,
         "wall_median": statistics.median(walls) if walls else None,
         "wall_max": max(walls) if walls else None,
         "skew_median": statistics.median(skews) if skews else None,
         "skew_max": max(skews) if skews else None}
    print(json.dumps(r))


def window(argv):
    polls = read_polls(argv[0])
    fl = read_flips(argv[1])
    first, count = int(argv[2]), int(argv[3])
    sel = fl[first:first + count]
    t0 = sel[0][0] - 20_000
    t1 = sel[-1][0] + sel[-1][1] + 40_000
    num = {"blue": 1, "green": 2}
    with open(argv[4], "w") as f:
        for t, p in polls:
            if t0 <= t <= t1:
                f.write("%.3f %d\n" % ((t - t0) / 1000.0, num.get(p, 0)))
    with open(argv[5], "w") as f:
        for start, wall, target, rc in sel:
            f.write("%.3f %.3f %s\n" % ((start - t0) / 1000.0, (start + wall - t0) / 1000.0,
                                        target))


def load(argv):
    n, path = int(argv[0]), argv[1]
    reqs = [b'{"v":1,"cmd":"status"}\n', b'{"v":1,"cmd":"history","args":{"n":5}}\n',
            b'{"v":1,"cmd":"status"}\n', b'{"v":1,"cmd":"hosts","args":{"pool":"hot"}}\n']
    ok = bad = 0
    first_error = None
    t0 = time.time()
    for i in range(n):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            s.sendall(reqs[i % 4])
            data = b""
            while not data.endswith(b"\n"):
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
            o = json.loads(data.splitlines()[-1]) if data else {}
            if o.get("ok") is True:
                ok += 1
            else:
                bad += 1
                first_error = first_error or ("request %d: %s" % (i + 1, data[:200]))
        except (OSError, ValueError) as e:
            bad += 1
            first_error = first_error or ("request %d: %s" % (i + 1, e))
    print("ok %d failed %d secs %.1f" % (ok, bad, time.time() - t0))
    if first_error:
        sys.stderr.write("first failure: %s\n" % first_error)


if __name__ == "__main__":
    {"flips": flips, "rflips": rflips, "times": times, "effect": effect, "window": window, "skew": skew,
     "load": load}[sys.argv[1]](sys.argv[2:])
