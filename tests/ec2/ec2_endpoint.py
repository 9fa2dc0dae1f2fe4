#!/usr/bin/python3
"""A local stand-in for the Amazon EC2 Query API and IMDSv2, for switchd's tests.

AWS cannot be reached from the test machines, so this server plays EC2. It is
deliberately independent of switchd's C client: every request's SigV4
signature is recomputed with botocore's own signer, so a canonicalisation bug
in our client fails here the way it would fail at AWS.

One process serves three things on 127.0.0.1:
  * the EC2 Query API (Version=2016-11-15): DescribeInstances, CreateTags,
    DeleteTags, with EC2's error codes, statuses and XML envelopes;
  * IMDSv2 under /latest/ (token, IAM role credentials, region);
  * an unauthenticated JSON admin API under /_admin/ that seeds instances,
    injects faults and exposes a log of received calls (see README.md).

Usage:
  /usr/bin/python3 ec2_endpoint.py --port 0 [--state FILE] [--region R]
                                   [--pidfile F] [--verbose]
Once listening it prints "PORT=<n>" as the first line of stdout.
"""

import argparse
import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import string
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

API_VERSION = "2016-11-15"
XMLNS = "http://ec2.amazonaws.com/doc/%s/" % API_VERSION
OWNER_ID = "123456789012"
DEFAULT_ACCESS_KEY = "AKIDEXAMPLE"
DEFAULT_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
DEFAULT_ROLE = "switchd-test-role"
DEFAULT_IMDS_EXPIRE_S = 6 * 3600      # IMDS role credentials live ~6 h at AWS
MAX_CLOCK_SKEW_S = 15 * 60            # AWS rejects requests dated > 15 min off
MAX_BODY = 10 * 1024 * 1024
MAX_CALL_LOG = 100000
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"

# instance-state-name -> instance-state-code, as EC2 reports them.
STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32,
               "terminated": 48, "stopping": 64, "stopped": 80}

# Instance ids are "i-" and 8 (old style) or 17 lowercase hex digits.
INSTANCE_ID_RE = re.compile(r"^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
# Other resource ids look like "<prefix>-<hex>"; we only model instances.
RESOURCE_ID_RE = re.compile(r"^[a-z]+(?:-[a-z]+)*-[0-9a-f]{8,17}$")

AUTH_FAILURE_MSG = "AWS was not able to validate the provided access credentials"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_z(dt, millis=False):
    """EC2 style timestamps: launchTime has milliseconds, IMDS does not."""
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class Ec2Error(Exception):
    """An EC2 error response. `detail` goes to the call log only: real EC2 keeps
    its reasons to itself (e.g. every signature problem is a bare AuthFailure),
    but a test author wants to know which check failed."""

    def __init__(self, status, code, message, detail=None):
        super().__init__(code)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def auth_failure(detail):
    return Ec2Error(401, "AuthFailure", AUTH_FAILURE_MSG, detail)


def incomplete_signature(message):
    return Ec2Error(400, "IncompleteSignature", message, message)


def invalid_value(message):
    return Ec2Error(400, "InvalidParameterValue", message)


class DropConnection(Exception):
    """Raised by the "drop" fault: close the socket without answering."""


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------

class Store:
    """Everything the server knows, behind one lock.

    Instances, credentials and IMDS settings are persisted to the --state file
    after every change; faults, the call logs and IMDS session tokens are
    runtime-only (a restart clears them, as it would a real outage)."""

    def __init__(self, path, region):
        self.path = path
        self.region = region
        self.lock = threading.RLock()
        self.reset()
        if path and os.path.exists(path):
            self._load()

    def reset(self):
        with self.lock:
            self.next_seq = 1
            self.instances = {}          # id -> dict, see new_instance()
            self.credentials = {
                DEFAULT_ACCESS_KEY: {"secret_key": DEFAULT_SECRET_KEY, "token": None,
                                     "expires": None, "source": "default"}}
            self.imds = {"role": DEFAULT_ROLE, "expire_in_s": DEFAULT_IMDS_EXPIRE_S}
            self.imds_tokens = {}        # token -> expiry (epoch seconds)
            self.faults = []
            self.calls = []
            self.imds_calls = []
            self.call_seq = 0

    def _load(self):
        with open(self.path) as f:
            data = json.load(f)
        self.next_seq = data.get("next_seq", 1)
        self.instances = {i["id"]: i for i in data.get("instances", [])}
        self.credentials = data.get("credentials", self.credentials)
        self.imds.update(data.get("imds", {}))

    def save(self):
        """Atomic write, so a test killing us mid-write never sees half a file."""
        if not self.path:
            return
        with self.lock:
            data = {"next_seq": self.next_seq,
                    "instances": sorted(self.instances.values(), key=lambda i: i["seq"]),
                    "credentials": self.credentials, "imds": self.imds}
            tmp = "%s.tmp.%d" % (self.path, os.getpid())
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)   # key order kept: tag order is data
            os.replace(tmp, self.path)

    # -- instances ----------------------------------------------------------

    def new_instance(self, spec):
        """Create one instance from an admin spec (caller holds the lock)."""
        iid = spec.get("id") or "i-" + secrets.token_hex(9)[:17]
        if not INSTANCE_ID_RE.match(iid):
            raise ValueError("bad instance id %r (want i- and 8 or 17 hex digits)" % iid)
        if iid in self.instances:
            raise ValueError("instance %s already exists" % iid)
        state = spec.get("state", "running")
        if state not in STATE_CODES:
            raise ValueError("bad state %r (one of %s)" % (state, ", ".join(STATE_CODES)))
        tags = spec.get("tags") or {}
        if not isinstance(tags, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ValueError("tags must be an object of strings")
        seq = self.next_seq
        self.next_seq += 1
        inst = {
            "id": iid,
            "seq": seq,    # creation order: DescribeInstances order and NextToken
            "reservation_id": "r-" + secrets.token_hex(9)[:17],
            "image_id": spec.get("image_id", "ami-0abcdef1234567890"),
            "instance_type": spec.get("instance_type", "t3.micro"),
            "availability_zone": spec.get("availability_zone", self.region + "a"),
            "private_ip": spec.get("private_ip", "10.0.%d.%d" % (seq // 250, seq % 250 + 4)),
            "state": state,
            "launch_time": iso_z(utcnow(), millis=True),
            "tags": dict(tags),
            # Eventual consistency: this many more EC2 calls that would see or
            # touch the instance behave as if it did not exist yet.
            "hidden_calls": int(spec.get("visible_after_calls", 0)),
        }
        self.instances[iid] = inst
        return inst

    def private_dns(self, inst):
        dashed = "ip-" + inst["private_ip"].replace(".", "-")
        if self.region == "us-east-1":
            return dashed + ".ec2.internal"
        return "%s.%s.compute.internal" % (dashed, self.region)

    def seen(self, inst):
        """An EC2 call would see `inst`. True if it is visible; otherwise spend
        one of its invisible calls and answer False."""
        if inst["hidden_calls"] > 0:
            inst["hidden_calls"] -= 1
            self.save()
            return False
        return True

    # -- credentials --------------------------------------------------------

    def add_credential(self, access_key, secret_key, token=None, expires=None, source="admin"):
        with self.lock:
            self.credentials[access_key] = {"secret_key": secret_key, "token": token,
                                            "expires": expires, "source": source}
        self.save()

    # -- faults -------------------------------------------------------------

    def take_fault(self, action):
        """The fault rule that fires for this call, if any (consumes one use)."""
        with self.lock:
            fired = None
            for rule in self.faults:
                if rule["action"] not in ("*", action) or rule["count"] == 0:
                    continue
                if rule["skip"] > 0:      # let this many matching calls through first
                    rule["skip"] -= 1
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                rule["fired"] += 1
                fired = dict(rule)
                break
            self.faults = [r for r in self.faults if r["count"] != 0]
            return fired

    # -- logs ---------------------------------------------------------------

    def log_call(self, entry):
        with self.lock:
            self.call_seq += 1
            entry["seq"] = self.call_seq
            self.calls.append(entry)
            del self.calls[:-MAX_CALL_LOG]

    def log_imds(self, entry):
        with self.lock:
            self.imds_calls.append(entry)
            del self.imds_calls[:-MAX_CALL_LOG]


# ---------------------------------------------------------------------------
# SigV4 verification (with botocore's signer)
# ---------------------------------------------------------------------------

class IncomingSigV4(SigV4Auth):
    """botocore's SigV4Auth, turned around to recompute a received signature.

    SigV4Auth.add_auth() stamps the current time and adds its own headers
    before signing. Instead we feed it the request's own X-Amz-Date and only
    the headers the client listed in SignedHeaders, then reuse botocore's
    canonical request, string-to-sign and key derivation unchanged."""

    def __init__(self, credentials, region, signed_headers):
        super().__init__(credentials, "ec2", region)
        self._signed_names = signed_headers

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            for value in request.headers.get_all(name) or []:
                header_map[name] = value
        return header_map

    def compute(self, request, timestamp):
        request.context["timestamp"] = timestamp
        canonical = self.canonical_request(request)
        return self.signature(self.string_to_sign(request, canonical), request)


def parse_authorization(value):
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise incomplete_signature("Unsupported AWS 'algorithm': '%s'" % algorithm)
    fields = {}
    for part in rest.split(","):
        key, eq, val = part.strip().partition("=")
        if eq:
            fields[key.strip()] = val.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise incomplete_signature(
                "Authorization header requires '%s' parameter. Authorization=%s"
                % (required, value))
    return fields


def request_timestamp(headers):
    """The signing time: X-Amz-Date, else the Date header (SigV4 allows both).
    Returns (SigV4 timestamp string, aware datetime, header name used)."""
    amz = headers.get("X-Amz-Date")
    if amz:
        try:
            dt = datetime.datetime.strptime(amz, SIGV4_TIMESTAMP).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise incomplete_signature("Invalid X-Amz-Date '%s'" % amz)
        return amz, dt, "x-amz-date"
    date = headers.get("Date")
    if date:
        try:
            dt = email.utils.parsedate_to_datetime(date).astimezone(datetime.timezone.utc)
        except (TypeError, ValueError):
            raise incomplete_signature("Invalid Date header '%s'" % date)
        return dt.strftime(SIGV4_TIMESTAMP), dt, "date"
    raise incomplete_signature("Authorization header requires existence of either "
                               "a 'X-Amz-Date' or a 'Date' header.")


def verify_request(store, method, url, query_pairs, headers, body):
    """Authenticate an EC2 request. Returns the access key, or raises Ec2Error
    with the code and status real EC2 uses:
      no credentials at all           400 MissingParameter (observed at EC2)
      malformed Authorization / date  400 IncompleteSignature
      unknown key, wrong scope, wrong
      signature, token mismatch       401 AuthFailure (EC2 does not answer
                                          SignatureDoesNotMatch for SigV4)
      date > 15 min off, expired
      session credentials             400 RequestExpired
    """
    auth = headers.get("Authorization")
    if not auth:
        if any(k == "X-Amz-Algorithm" for k, _ in query_pairs):
            raise auth_failure("pre-signed (query string) SigV4 is not supported here")
        raise Ec2Error(400, "MissingParameter",
                       "The request must contain the parameter AWSAccessKeyId",
                       "no Authorization header")
    fields = parse_authorization(auth)
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise incomplete_signature("Incorrect Credential scope '%s'" % fields["Credential"])
    access_key, scope_date, scope_region, scope_service, terminator = scope
    signed = [h.strip().lower() for h in fields["SignedHeaders"].split(";") if h.strip()]
    timestamp, when, date_header = request_timestamp(headers)
    if "host" not in signed:
        raise incomplete_signature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if date_header not in signed:
        raise incomplete_signature("'%s' must be a 'SignedHeader' in the AWS Authorization."
                                   % date_header)

    with store.lock:
        cred = store.credentials.get(access_key)
        cred = dict(cred) if cred else None
    if cred is None:
        raise auth_failure("unknown access key %s" % access_key)
    if scope_date != timestamp[:8]:
        raise auth_failure("credential scope date %s does not match %s %s"
                           % (scope_date, date_header, timestamp))
    if scope_region != store.region:
        raise auth_failure("credential should be scoped to a valid region, not '%s' "
                           "(this endpoint is %s)" % (scope_region, store.region))
    if scope_service != "ec2" or terminator != "aws4_request":
        raise auth_failure("credential should be scoped to service 'ec2'/aws4_request, not "
                           "'%s'/%s" % (scope_service, terminator))
    skew = (utcnow() - when).total_seconds()
    if abs(skew) > MAX_CLOCK_SKEW_S:
        raise Ec2Error(400, "RequestExpired", "Request has expired.",
                       "request date %s is %d s %s server time"
                       % (timestamp, abs(skew), "behind" if skew > 0 else "ahead of"))
    missing = [h for h in signed if headers.get(h) is None]
    if missing:
        raise auth_failure("signed header(s) not in request: %s" % ", ".join(missing))
    content_sha = headers.get("X-Amz-Content-SHA256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        # botocore trusts this header as the payload hash; AWS checks it.
        raise auth_failure("x-amz-content-sha256 does not match the body")

    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers.items():
        request.headers[name] = value
    # Decoded pairs, so botocore re-encodes them canonically (RFC 3986), as the
    # service does, rather than trusting the client's own escaping.
    request.params = query_pairs
    signer = IncomingSigV4(Credentials(access_key, cred["secret_key"], cred["token"]),
                           store.region, signed)
    expected = signer.compute(request, timestamp)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise auth_failure("signature mismatch (wrong secret key or canonical request)")

    token = headers.get("X-Amz-Security-Token")
    if cred["token"] is None and token is not None:
        raise auth_failure("X-Amz-Security-Token sent for long-term credentials")
    if cred["token"] is not None and not hmac.compare_digest(token or "", cred["token"]):
        raise auth_failure("X-Amz-Security-Token missing or wrong for %s" % access_key)
    if cred["expires"] is not None and time.time() >= cred["expires"]:
        # What EC2 answers for expired session (e.g. IMDS role) credentials.
        raise Ec2Error(400, "RequestExpired", "Request has expired.",
                       "credentials %s expired" % access_key)
    return access_key


# ---------------------------------------------------------------------------
# Query API parameters
# ---------------------------------------------------------------------------

def list_param(params, prefix):
    """Query-protocol list "Prefix.1", "Prefix.2", ... in index order."""
    found = []
    pat = re.compile(r"^%s\.(\d+)$" % re.escape(prefix))
    for key, value in params.items():
        m = pat.match(key)
        if m:
            found.append((int(m.group(1)), value))
    return [v for _, v in sorted(found)]


def struct_list_param(params, prefix):
    """Query-protocol list of structures: "Prefix.N.Member[.M]" -> [{Member...}]."""
    items = {}
    pat = re.compile(r"^%s\.(\d+)\.(.+)$" % re.escape(prefix))
    for key, value in params.items():
        m = pat.match(key)
        if m:
            items.setdefault(int(m.group(1)), {})[m.group(2)] = value
    return [items[n] for n in sorted(items)]


def dry_run(params):
    if params.get("DryRun", "").lower() == "true":
        raise Ec2Error(412, "DryRunOperation",
                       "Request would have succeeded, but DryRun flag is set.")


def wildcard(pattern):
    """EC2 filter values: '*' any run, '?' one character, backslash escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 1
        elif c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.S)


# Filter name -> the values an instance has for it ("tag:<key>" is separate).
FILTERS = {
    "tag-key": lambda store, inst: list(inst["tags"]),
    "tag-value": lambda store, inst: list(inst["tags"].values()),
    "instance-id": lambda store, inst: [inst["id"]],
    "instance-state-name": lambda store, inst: [inst["state"]],
    "instance-state-code": lambda store, inst: [str(STATE_CODES[inst["state"]])],
    "instance-type": lambda store, inst: [inst["instance_type"]],
    "image-id": lambda store, inst: [inst["image_id"]],
    "reservation-id": lambda store, inst: [inst["reservation_id"]],
    "availability-zone": lambda store, inst: [inst["availability_zone"]],
    "private-ip-address": lambda store, inst: [inst["private_ip"]],
    "private-dns-name": lambda store, inst: [store.private_dns(inst)],
    "owner-id": lambda store, inst: [OWNER_ID],
}


def filter_values(store, inst, name):
    if name.startswith("tag:"):
        key = name[4:]
        return [inst["tags"][key]] if key in inst["tags"] else []
    return FILTERS[name](store, inst)


def parse_filters(params):
    """Filter.N.Name / Filter.N.Value.M -> [(name, [compiled pattern])].
    Filters are ANDed, the values of one filter ORed."""
    filters = []
    for f in struct_list_param(params, "Filter"):
        name = f.get("Name")
        if not name:
            raise Ec2Error(400, "MissingParameter",
                           "The request must contain the parameter Filter.Name")
        if not (name.startswith("tag:") and len(name) > 4) and name not in FILTERS:
            raise invalid_value("The filter '%s' is invalid" % name)
        values = list_param(f, "Value")
        if not values:
            raise invalid_value("The filter '%s' requires at least one value" % name)
        filters.append((name, [wildcard(v) for v in values]))
    return filters


def matches(store, inst, filters):
    return all(any(p.match(v) for p in patterns for v in filter_values(store, inst, name))
               for name, patterns in filters)


def check_instance_ids(ids):
    for iid in ids:
        if not INSTANCE_ID_RE.match(iid):
            raise Ec2Error(400, "InvalidInstanceID.Malformed", 'Invalid id: "%s"' % iid)


def not_found(missing):
    if len(missing) == 1:
        msg = "The instance ID '%s' does not exist" % missing[0]
    else:
        msg = "The instance IDs '%s' do not exist" % ", ".join(missing)
    return Ec2Error(400, "InvalidInstanceID.NotFound", msg)


def encode_token(seq):
    raw = json.dumps({"after": seq, "n": secrets.token_hex(4)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token):
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return int(json.loads(raw)["after"])
    except (ValueError, KeyError, TypeError):
        raise Ec2Error(400, "InvalidPaginationToken",
                       "The specified pagination token is not valid or is expired.")


# ---------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------

def xml_response(action, request_id, inner):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s">'
            "<requestId>%s</requestId>%s</%sResponse>"
            % (action, XMLNS, request_id, inner, action))


def instance_xml(store, inst):
    e = escape
    tags = ""
    if inst["tags"]:    # EC2 leaves tagSet out entirely for untagged instances
        tags = "<tagSet>%s</tagSet>" % "".join(
            "<item><key>%s</key><value>%s</value></item>" % (e(k), e(v))
            for k, v in inst["tags"].items())
    return ("<item><instanceId>{id}</instanceId><imageId>{image}</imageId>"
            "<instanceState><code>{code}</code><name>{state}</name></instanceState>"
            "<privateDnsName>{dns}</privateDnsName><dnsName/><reason/>"
            "<amiLaunchIndex>0</amiLaunchIndex><instanceType>{type}</instanceType>"
            "<launchTime>{launch}</launchTime>"
            "<placement><availabilityZone>{az}</availabilityZone><tenancy>default</tenancy>"
            "</placement><privateIpAddress>{ip}</privateIpAddress>{tags}</item>").format(
                id=e(inst["id"]), image=e(inst["image_id"]), code=STATE_CODES[inst["state"]],
                state=inst["state"], dns=e(store.private_dns(inst)),
                type=e(inst["instance_type"]), launch=inst["launch_time"],
                az=e(inst["availability_zone"]), ip=e(inst["private_ip"]), tags=tags)


def describe_instances(store, params, request_id):
    ids = list_param(params, "InstanceId")
    filters = parse_filters(params)
    max_results = params.get("MaxResults")
    if max_results is not None:
        if ids:
            raise Ec2Error(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the "
                           "parameter maxResults")
        try:
            max_results = int(max_results)
        except ValueError:
            raise invalid_value("Invalid value '%s' for maxResults" % max_results)
        if not 5 <= max_results <= 1000:
            raise invalid_value("Value ( %d ) for parameter maxResults is invalid. "
                                "Expecting a value between 5 and 1000." % max_results)
    after = decode_token(params["NextToken"]) if params.get("NextToken") else 0
    check_instance_ids(ids)
    dry_run(params)

    with store.lock:
        if ids:
            named = list(dict.fromkeys(ids))
            missing = [i for i in named if i not in store.instances]
            present = [store.instances[i] for i in named if i in store.instances]
            # Named but not yet visible (eventual consistency) is NotFound too.
            missing += [inst["id"] for inst in present if not store.seen(inst)]
            if missing:
                raise not_found(sorted(missing, key=ids.index))
            matched = [i for i in present if matches(store, i, filters)]
        else:
            matched = [i for i in store.instances.values()
                       if matches(store, i, filters) and store.seen(i)]
        matched.sort(key=lambda i: i["seq"])
        page = [i for i in matched if i["seq"] > after]
        more = max_results is not None and len(page) > max_results
        if max_results is not None:
            page = page[:max_results]
        items = "".join(
            "<item><reservationId>%s</reservationId><ownerId>%s</ownerId><groupSet/>"
            "<instancesSet>%s</instancesSet></item>"
            % (inst["reservation_id"], OWNER_ID, instance_xml(store, inst)) for inst in page)
    inner = "<reservationSet>%s</reservationSet>" % items
    if more:
        inner += "<nextToken>%s</nextToken>" % encode_token(page[-1]["seq"])
    return xml_response("DescribeInstances", request_id, inner)


def tag_targets(store, params, action):
    """Validate ResourceId.N and return the instances, all or none (caller holds
    the lock): one unknown id fails the whole call and changes nothing."""
    ids = list_param(params, "ResourceId")
    if not ids:
        raise Ec2Error(400, "MissingParameter",
                       "The request must contain the parameter resourceIdSet")
    if len(ids) > 1000:
        # The API reference caps ResourceId.N at 1000 ("break up this request
        # into smaller batches"); the exact error code is not documented.
        raise invalid_value("%s accepts up to 1000 resource IDs, got %d" % (action, len(ids)))
    for rid in ids:
        if rid.startswith("i-"):
            check_instance_ids([rid])
        elif RESOURCE_ID_RE.match(rid):
            raise Ec2Error(400, "InvalidID", "The ID '%s' is not valid "
                           "(this test endpoint only models instances)" % rid)
        else:
            raise Ec2Error(400, "InvalidID", "The ID '%s' is not valid" % rid)
    unique = list(dict.fromkeys(ids))
    missing = [i for i in unique if i not in store.instances]
    missing += [i for i in unique if i in store.instances
                and not store.seen(store.instances[i])]
    if missing:
        raise not_found(sorted(missing, key=ids.index))
    return [store.instances[i] for i in unique]


def validate_tag_key(key):
    if key is None or key == "":
        raise invalid_value("Tag key must be specified and not empty")
    if len(key) > 128:
        raise invalid_value("Tag key exceeds the maximum length of 128 characters")
    if key.lower().startswith("aws:"):
        raise invalid_value("Tag keys starting with 'aws:' are reserved for internal use")


def create_tags(store, params, request_id):
    tags = struct_list_param(params, "Tag")
    if not tags:
        raise Ec2Error(400, "MissingParameter", "The request must contain the parameter Tag")
    new = {}
    for t in tags:
        validate_tag_key(t.get("Key"))
        value = t.get("Value", "")   # an absent Value means the empty string
        if len(value) > 256:
            raise invalid_value("Tag value exceeds the maximum length of 256 characters")
        new[t["Key"]] = value
    with store.lock:
        targets = tag_targets(store, params, "CreateTags")
        dry_run(params)
        for inst in targets:
            if len(set(inst["tags"]) | set(new)) > 50:
                raise Ec2Error(400, "TagLimitExceeded",
                               "The maximum number of Tags for a resource has been reached.")
        for inst in targets:
            inst["tags"].update(new)
    store.save()
    return xml_response("CreateTags", request_id, "<return>true</return>")


def delete_tags(store, params, request_id):
    tags = struct_list_param(params, "Tag")
    for t in tags:
        validate_tag_key(t.get("Key"))
    with store.lock:
        targets = tag_targets(store, params, "DeleteTags")
        dry_run(params)
        for inst in targets:
            if not tags:              # no Tag.N at all: delete every tag
                inst["tags"].clear()
            for t in tags:
                # With a Value (even ""), delete only if the value matches.
                if t["Key"] in inst["tags"] and ("Value" not in t
                                                 or inst["tags"][t["Key"]] == t["Value"]):
                    del inst["tags"][t["Key"]]
    store.save()
    return xml_response("DeleteTags", request_id, "<return>true</return>")


ACTIONS = {"DescribeInstances": describe_instances,
           "CreateTags": create_tags,
           "DeleteTags": delete_tags}

def check_action(action, params):
    if not action:
        raise Ec2Error(400, "MissingAction", "The request must contain the parameter Action")
    version = params.get("Version")
    if not version:
        raise Ec2Error(400, "MissingParameter", "The request must contain the parameter Version")
    if version != API_VERSION:
        raise Ec2Error(400, "NoSuchVersion", "The requested version (%s) of service "
                       "AmazonEC2 does not exist" % version)
    if action not in ACTIONS:
        raise Ec2Error(400, "InvalidAction",
                       "The action %s is not valid for this web service." % action)


FAULT_ERRORS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "internal": (500, "InternalError", "An internal error has occurred"),
    "unavailable": (503, "Unavailable", "The server is overloaded and can't handle the request."),
    "auth": (401, "AuthFailure", AUTH_FAILURE_MSG),
}
FAULT_KINDS = set(FAULT_ERRORS) | {"slow", "drop", "error"}


def error_xml(code, message, request_id):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            "<Code>%s</Code><Message>%s</Message></Error></Errors>"
            "<RequestID>%s</RequestID></Response>" % (escape(code), escape(message), request_id))


# ---------------------------------------------------------------------------
# IMDS
# ---------------------------------------------------------------------------

def random_key(prefix, n, alphabet=string.ascii_uppercase + string.digits):
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def issue_imds_credentials(store):
    """Fresh keys on every fetch, registered with the EC2 side so they sign
    requests; they stop working at their Expiration."""
    with store.lock:
        expire_in = store.imds["expire_in_s"]
    now = utcnow()
    expires = now + datetime.timedelta(seconds=expire_in)
    ak = random_key("ASIA", 16)
    sk = random_key("", 40, string.ascii_letters + string.digits + "+/")
    token = base64.b64encode(secrets.token_bytes(120)).decode()
    store.add_credential(ak, sk, token, expires.timestamp(), source="imds")
    return {"Code": "Success", "LastUpdated": iso_z(now), "Type": "AWS-HMAC",
            "AccessKeyId": ak, "SecretAccessKey": sk, "Token": token,
            "Expiration": iso_z(expires)}


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, like the real endpoint
    store = None                       # set in main()
    verbose = False

    def version_string(self):
        return "AmazonEC2"

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("ec2_endpoint: %s %s\n" % (self.address_string(), fmt % args))

    # -- plumbing -----------------------------------------------------------

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass                         # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                if sum(map(len, chunks)) > MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def send(self, status, body, content_type, headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj):
        self.send(status, json.dumps(obj, indent=1) + "\n", "application/json")

    def dispatch(self):
        path = urlsplit(self.path).path
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send(413, "request body too large\n", "text/plain")
        if path.startswith("/_admin/"):
            return self.handle_admin(path, body)
        if path == "/latest" or path.startswith("/latest/"):
            return self.handle_imds(path)
        if self.command not in ("GET", "POST"):
            return self.send(405, "", "text/plain")
        return self.handle_ec2(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = dispatch

    # -- EC2 ----------------------------------------------------------------

    def handle_ec2(self, body):
        store = self.store
        request_id = str(uuid.uuid4())
        split = urlsplit(self.path)
        # Keep '+' literal in the URL query (SigV4 canonical form has no '+'
        # for space); form bodies follow form rules where '+' is a space.
        query_pairs = [(unquote(k), unquote(v)) for k, _, v in
                       (p.partition("=") for p in split.query.split("&") if p)]
        params = dict(query_pairs)
        if self.command == "POST" and self.headers.get("Content-Type", "").lower().startswith(
                "application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        entry = {"time": iso_z(utcnow(), millis=True), "request_id": request_id,
                 "method": self.command, "action": action, "params": params,
                 "access_key": None, "status": None, "code": None, "fault": None,
                 "detail": None}
        url = "http://%s%s" % (self.headers.get("Host", "127.0.0.1"), split.path or "/")
        try:
            entry["access_key"] = verify_request(
                store, self.command, url, query_pairs, self.headers, body)
            check_action(action, params)
            self.apply_fault(entry, action)
            status, xml = 200, ACTIONS[action](store, params, request_id)
        except Ec2Error as e:
            status, xml = e.status, error_xml(e.code, e.message, request_id)
            entry["code"], entry["detail"] = e.code, e.detail
        except DropConnection:
            entry["status"] = 0
            store.log_call(entry)
            self.close_connection = True
            return
        entry["status"] = status
        store.log_call(entry)
        self.send(status, xml, "text/xml;charset=UTF-8", {"x-amzn-RequestId": request_id})

    def apply_fault(self, entry, action):
        rule = self.store.take_fault(action)
        if rule is None:
            return
        entry["fault"] = rule["kind"]
        kind = rule["kind"]
        if kind == "slow":
            time.sleep(rule["delay_ms"] / 1000.0)
        elif kind == "drop":
            raise DropConnection()
        elif kind == "error":
            raise Ec2Error(rule["status"], rule["code"], rule["message"], "injected fault")
        else:
            status, code, message = FAULT_ERRORS[kind]
            raise Ec2Error(status, code, message, "injected fault")

    # -- IMDS ---------------------------------------------------------------

    def handle_imds(self, path):
        status = self._imds(path)
        self.store.log_imds({"time": iso_z(utcnow(), millis=True), "method": self.command,
                             "path": path, "status": status})

    def _imds(self, path):
        store = self.store
        text = "text/plain"
        if path == "/latest/api/token":
            if self.command != "PUT":
                self.send(405, "", text)
                return 405
            if self.headers.get("X-Forwarded-For"):
                # IMDSv2 refuses tokens to requests that went through a proxy.
                self.send(403, "", text)
                return 403
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                self.send(400, "", text)
                return 400
            token = base64.b64encode(secrets.token_bytes(42)).decode()
            with store.lock:
                now = time.time()
                store.imds_tokens = {t: exp for t, exp in store.imds_tokens.items() if exp > now}
                store.imds_tokens[token] = now + int(ttl)
            self.send(200, token, text, {"X-aws-ec2-metadata-token-ttl-seconds": ttl})
            return 200
        if self.command not in ("GET", "HEAD"):
            self.send(405, "", text)
            return 405
        token = self.headers.get("X-aws-ec2-metadata-token")
        with store.lock:
            valid = token is not None and store.imds_tokens.get(token, 0) > time.time()
            role = store.imds["role"]
        if not valid:     # IMDSv2 only (HttpTokens=required): no v1 fallback
            self.send(401, "", text)
            return 401
        creds_dir = "/latest/meta-data/iam/security-credentials/"
        if path == creds_dir or path == creds_dir.rstrip("/"):
            self.send(200, role, text)
            return 200
        if path.startswith(creds_dir) and path[len(creds_dir):].rstrip("/") == role:
            self.send(200, json.dumps(issue_imds_credentials(store), indent=2), text)
            return 200
        leaf = {"/latest/meta-data/placement/region": store.region,
                "/latest/meta-data/placement/availability-zone": store.region + "a"}
        value = leaf.get(path.rstrip("/"))
        if value is None:
            self.send(404, "", text)
            return 404
        self.send(200, value, text)
        return 200

    # -- admin --------------------------------------------------------------

    def handle_admin(self, path, body):
        route = ADMIN_ROUTES.get((self.command, path.rstrip("/")))
        if route is None:
            return self.send_json(404, {"error": "no admin route %s %s" % (self.command, path)})
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            query = dict(parse_qsl(urlsplit(self.path).query))
            status, obj = route(self.store, data, query)
        except (ValueError, TypeError, KeyError) as e:
            status, obj = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        self.send_json(status, obj)


# ---------------------------------------------------------------------------
# Admin API (JSON, unauthenticated, for tests only)
# ---------------------------------------------------------------------------

def public_instance(store, inst):
    out = {k: v for k, v in inst.items() if k not in ("seq", "hidden_calls")}
    out["visible_after_calls"] = inst["hidden_calls"]
    out["private_dns_name"] = store.private_dns(inst)
    return out


def admin_list_instances(store, data, query):
    with store.lock:
        insts = sorted(store.instances.values(), key=lambda i: i["seq"])
        return 200, {"instances": [public_instance(store, i) for i in insts]}


def admin_create_instances(store, data, query):
    """{"instances": [spec...]} and/or {"count": N, <spec fields>}: with count,
    N instances are made from the top-level fields merged with instances[0]."""
    template_keys = ("private_ip", "state", "tags", "visible_after_calls",
                     "instance_type", "image_id", "availability_zone")
    template = {k: data[k] for k in template_keys if k in data}
    specs = data.get("instances", [])
    if not isinstance(specs, list):
        raise ValueError("instances must be a list")
    if "count" in data:
        if len(specs) > 1:
            raise ValueError("count takes at most one instance spec as its template")
        one = dict(template, **(specs[0] if specs else {}))
        if "id" in one and int(data["count"]) != 1:
            raise ValueError("an explicit id cannot be bulk-created")
        specs = [one] * int(data["count"])
    else:
        specs = [dict(template, **s) for s in specs]
    if not specs:
        raise ValueError("nothing to create: give instances or count")
    with store.lock:
        created = []
        try:
            for spec in specs:
                created.append(store.new_instance(spec))
        except ValueError:
            for inst in created:           # all or nothing, like the API itself
                del store.instances[inst["id"]]
            raise
        out = [public_instance(store, i) for i in created]
    store.save()
    return 200, {"ids": [i["id"] for i in out], "instances": out}


def _ids(store, data):
    ids = data.get("ids")
    if not isinstance(ids, list) or not ids:
        raise ValueError("ids must be a non-empty list")
    unknown = [i for i in ids if i not in store.instances]
    if unknown:
        raise ValueError("unknown instance ids: %s" % ", ".join(map(str, unknown)))
    return ids


def admin_set_state(store, data, query, state=None):
    state = state or data.get("state")
    if state not in STATE_CODES:
        raise ValueError("state must be one of %s" % ", ".join(STATE_CODES))
    with store.lock:
        ids = _ids(store, data)
        for i in ids:
            store.instances[i]["state"] = state
    store.save()
    return 200, {"ids": ids, "state": state}


def admin_terminate(store, data, query):
    return admin_set_state(store, data, query, "terminated")


def admin_remove(store, data, query):
    with store.lock:
        ids = _ids(store, data)
        for i in ids:
            del store.instances[i]
    store.save()
    return 200, {"removed": ids}


def admin_remove_all(store, data, query):
    with store.lock:
        n = len(store.instances)
        store.instances.clear()
    store.save()
    return 200, {"removed": n}


def admin_tags(store, data, query):
    """Change tags behind the client's back (to simulate drift)."""
    set_tags, delete = data.get("set", {}), data.get("delete", [])
    if not isinstance(set_tags, dict) or not isinstance(delete, list):
        raise ValueError("set must be an object and delete a list")
    with store.lock:
        ids = _ids(store, data)
        for i in ids:
            tags = store.instances[i]["tags"]
            tags.update({str(k): str(v) for k, v in set_tags.items()})
            for k in delete:
                tags.pop(k, None)
    store.save()
    return admin_list_instances(store, {}, {})


def admin_calls(store, data, query):
    with store.lock:
        calls = [c for c in store.calls
                 if all(str(c.get(k)) == v for k, v in query.items())]
        return 200, {"calls": calls, "count": len(calls)}


def admin_reset_calls(store, data, query):
    with store.lock:
        store.calls, store.imds_calls = [], []
    return 200, {"ok": True}


def admin_list_faults(store, data, query):
    with store.lock:
        return 200, {"faults": [dict(r) for r in store.faults]}


def admin_add_fault(store, data, query):
    kind = data.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError("kind must be one of %s" % ", ".join(sorted(FAULT_KINDS)))
    rule = {"action": data.get("action", "*"), "kind": kind,
            "count": int(data.get("count", 1)), "skip": int(data.get("skip", 0)),
            "fired": 0}
    if rule["count"] == 0 or rule["count"] < -1:
        raise ValueError("count must be a positive number, or -1 for until cleared")
    if kind == "slow":
        rule["delay_ms"] = int(data.get("delay_ms", 1000))
    if kind == "error":
        rule.update(status=int(data["status"]), code=str(data["code"]),
                    message=str(data.get("message", data["code"])))
    with store.lock:
        store.faults.append(rule)
    return admin_list_faults(store, {}, {})


def admin_clear_faults(store, data, query):
    with store.lock:
        store.faults = []
    return 200, {"faults": []}


def admin_list_credentials(store, data, query):
    with store.lock:
        return 200, {"credentials": [dict(c, access_key=ak)
                                     for ak, c in store.credentials.items()]}


def admin_add_credential(store, data, query):
    ak, sk = data.get("access_key"), data.get("secret_key")
    if not ak or not sk:
        raise ValueError("access_key and secret_key are required")
    expires = time.time() + float(data["expires_in_s"]) if "expires_in_s" in data else None
    store.add_credential(str(ak), str(sk), data.get("token"), expires)
    return 200, {"access_key": ak}


def admin_revoke_credential(store, data, query):
    with store.lock:
        if store.credentials.pop(data.get("access_key"), None) is None:
            raise ValueError("unknown access_key")
    store.save()
    return 200, {"revoked": data["access_key"]}


def admin_get_imds(store, data, query):
    with store.lock:
        return 200, dict(store.imds, calls=list(store.imds_calls),
                         issued=sum(c["source"] == "imds" for c in store.credentials.values()))


def admin_set_imds(store, data, query):
    with store.lock:
        if "expire_in_s" in data:
            store.imds["expire_in_s"] = float(data["expire_in_s"])
        if "role" in data:
            store.imds["role"] = str(data["role"])
        if data.get("expire_issued"):
            # Make every IMDS credential handed out so far expire right now.
            for c in store.credentials.values():
                if c["source"] == "imds":
                    c["expires"] = min(c["expires"], time.time())
    store.save()
    return admin_get_imds(store, {}, {})


def admin_reset(store, data, query):
    store.reset()
    store.save()
    return 200, {"ok": True}


def admin_health(store, data, query):
    return 200, {"ok": True, "region": store.region, "pid": os.getpid()}


ADMIN_ROUTES = {
    ("GET", "/_admin/health"): admin_health,
    ("GET", "/_admin/instances"): admin_list_instances,
    ("POST", "/_admin/instances"): admin_create_instances,
    ("DELETE", "/_admin/instances"): admin_remove_all,
    ("POST", "/_admin/terminate"): admin_terminate,
    ("POST", "/_admin/state"): admin_set_state,
    ("POST", "/_admin/remove"): admin_remove,
    ("POST", "/_admin/tags"): admin_tags,
    ("GET", "/_admin/calls"): admin_calls,
    ("POST", "/_admin/reset_calls"): admin_reset_calls,
    ("GET", "/_admin/faults"): admin_list_faults,
    ("POST", "/_admin/faults"): admin_add_fault,
    ("DELETE", "/_admin/faults"): admin_clear_faults,
    ("POST", "/_admin/faults/clear"): admin_clear_faults,
    ("GET", "/_admin/credentials"): admin_list_credentials,
    ("POST", "/_admin/credentials"): admin_add_credential,
    ("POST", "/_admin/credentials/revoke"): admin_revoke_credential,
    ("GET", "/_admin/imds"): admin_get_imds,
    ("POST", "/_admin/imds"): admin_set_imds,
    ("POST", "/_admin/reset"): admin_reset,
}


# ---------------------------------------------------------------------------

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--state", help="JSON file the state is kept in across restarts")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--pidfile")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args()

    Handler.store = Store(args.state, args.region)
    Handler.verbose = args.verbose
    server = Server(("127.0.0.1", args.port), Handler)
    Handler.store.save()
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return: not from its own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("PORT=%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        Handler.store.save()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
