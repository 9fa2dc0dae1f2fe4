#!/bin/bash
# t-page: the status page (GET /) in a real browser.  Headless Chromium
# loads it once and is driven over the DevTools protocol (tests/cdp.py, a
# stdlib-only WebSocket client): the page names the hot pool, both pools'
# versions and states, each server, the lock and the journal; after a
# switch, made while the page stays open, its own script shows the new hot
# pool without a reload.  Screenshots before and after go to tests/out/
# (the README's doc/status-page.png is one of them: UPDATE_DOC=1).  Also:
# the page loads nothing from anywhere but switchd, is readable at a phone's
# width, and the HTTP server is read-only (405) and bounded (431/413).
. "$(dirname "$0")/../lib.sh"
t_setup

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
	echo "# SKIP: no chromium binary (Debian package chromium)"
	echo "0 passed, 0 failed"
	exit 0
fi
SHOTS=$REPO_DIR/tests/out
mkdir -p "$SHOTS"

two_pools
start_haproxy h1
HTTP_PORT=$(free_port)
write_config "http = { listen = \"127.0.0.1:$HTTP_PORT\"; };"
start_switchd
URL=http://127.0.0.1:$HTTP_PORT
ctl cold-deploy --no-deploy -v v2-green-sha -m "release 2" >/dev/null || die "cold-deploy failed"
ctl lock -m "page test holds the lock" >/dev/null || die "lock failed"
for i in $(seq 20); do via_live >/dev/null; done

# ---- plain HTTP checks of the page and the server's limits
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
expect_eq "GET / is 200" "$(code "$URL/")" 200
expect_match "GET / is HTML" "$(curl -s -D - -o /dev/null "$URL/")" "text/html"
expect_eq "HEAD / is 200" "$(code -I "$URL/")" 200
curl -s "$URL/" >"$T/page.html"
expect_nogrep '(src|href|url)[=(]["'"'"']?(https?:)?//' "$T/page.html" "the page loads no external asset"
expect_eq "POST /api/status is 405" "$(code -X POST "$URL/api/status")" 405
expect_eq "DELETE / is 405" "$(code -X DELETE "$URL/")" 405
expect_eq "PUT /metrics is 405" "$(code -X PUT --data x "$URL/metrics")" 405
expect_eq "an unknown path is 404" "$(code "$URL/nope")" 404
big=$(head -c 9000 /dev/zero | tr '\0' a)
r=$(code -H "X-Big: $big" "$URL/")
ok "headers over 8 KiB are refused ($r)" test "$r" = 431 -o "$r" = 400 -o "$r" = 413
r=$(code -X GET --data-binary "@$REPO_DIR/switchd/page.html" "$URL/")
ok "a body over 1 KiB is refused ($r)" test "$r" = 413
expect_eq "history n=0 is 400" "$(code "$URL/api/history?n=0")" 400
expect_eq "history n=x is 400" "$(code "$URL/api/history?n=x")" 400
expect_eq "status unchanged by all that: still locked" "$(status_get 'bool(d["lock"])')" true

# ---- the browser
CDP_PORT=$(free_port)
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
	--remote-debugging-address=127.0.0.1 --remote-debugging-port="$CDP_PORT" \
	--remote-allow-origins='*' --user-data-dir="$T/chrome" --window-size=1100,1400 \
	--hide-scrollbars "$URL/" </dev/null >"$T/chromium.log" 2>&1 &
CHROME_PID=$!
track "$CHROME_PID"
cdp() { "$PYTHON" "$LIB_DIR/cdp.py" "$CDP_PORT" "$@"; }
page_text() { cdp eval 'document.body.innerText'; }
# hot_shown POOL: the page's big "hot pool" element says POOL.
hot_shown() { [ "$(cdp eval 'document.getElementById("hot").textContent')" = "$1" ]; }
ok "chromium's DevTools endpoint answers" wait_for 30 cdp url
ok "the page shows blue as the hot pool" wait_for 20 hot_shown blue
ok "the page's chart has drawn a line" wait_for 20 eval \
	'[ "$(cdp eval "document.querySelectorAll(\"#chart polyline\").length")" -ge 2 ]'
B=$T/page-before.txt
page_text >"$B"
expect_grep "$LIVE_HOST" "$B" "the page names the live host"
expect_grep "v2-green-sha" "$B" "the page shows green's version"
expect_grep "verified" "$B" "the page shows green verified"
expect_grep "page test holds the lock" "$B" "the page shows the lock holder's message"
expect_grep "b1 UP" "$B" "the page shows blue's server"
expect_grep "g1 UP" "$B" "the page shows green's server"
expect_grep "cold-deploy" "$B" "the page shows the journal"
expect_grep "every node agrees" "$B" "the page shows that the nodes agree"
expect_nogrep "cannot reach switchd" "$B" "the page shows no error"
cdp screenshot "$SHOTS/t-page-before.png"
ok "screenshot before the switch saved" test -s "$SHOTS/t-page-before.png"
marker=$(cdp eval 'window.__noReload = 1; document.readyState')
expect_eq "page loaded" "$marker" complete

ctl unlock >/dev/null || die "unlock failed"
expect_ok switch -m "page test switch"
ok "the page shows green as the hot pool without a reload" wait_for 20 hot_shown green
expect_eq "the page was not reloaded" "$(cdp eval 'String(window.__noReload)')" 1
# The journal table refreshes when last_switch changes.
has_switch_row() { page_text | grep -q "page test switch"; }
ok "the page's journal shows the switch" wait_for 20 has_switch_row
for i in $(seq 20); do via_live >/dev/null; done
has_green_rate() { cdp eval 'document.getElementById("now").textContent' | grep -q 'green: [1-9]'; }
ok "the chart shows green's requests/s" wait_for 20 has_green_rate
A=$T/page-after.txt
page_text >"$A"
expect_grep "lock: free" "$A" "the page says the lock is free"
expect_grep "blue → green" "$A" "the page's journal shows blue → green"
cdp screenshot "$SHOTS/t-page-after.png"
ok "screenshot after the switch saved" test -s "$SHOTS/t-page-after.png"
if [ -n "${UPDATE_DOC:-}" ]; then
	mkdir -p "$REPO_DIR/doc" && cp "$SHOTS/t-page-after.png" "$REPO_DIR/doc/status-page.png"
fi

# ---- a phone's width: every section fits in 360 px
fits=$(cdp eval '(function () { document.body.style.width = "360px"; var m = 0;
	document.querySelectorAll("section").forEach(function (s) { m = Math.max(m, s.getBoundingClientRect().right); });
	return m <= 361 ? "fits" : "too wide: " + m; })()')
expect_eq "every section fits in a phone's 360 px" "$fits" fits
cdp screenshot "$SHOTS/t-page-phone.png"

kill_tree TERM "$CHROME_PID"
wait "$CHROME_PID" 2>/dev/null
untrack "$CHROME_PID"
t_done
