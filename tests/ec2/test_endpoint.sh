#!/bin/bash
# Checks tests/ec2/ec2_endpoint.py against the real AWS CLI and botocore, so the
# test endpoint is known to behave like EC2 to an independent client before
# switchd's own EC2 client is tested against it.
#
# Usage: tests/ec2/test_endpoint.sh     (needs /usr/bin/aws, /usr/bin/python3
# with botocore, curl and jq; no network beyond 127.0.0.1)
# Last line of output: "N passed, N failed"; exit status 1 if any failed.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
AWS=/usr/bin/aws
AKID=AKIDEXAMPLE
SECRET=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY

TMP=$(mktemp -d)
PID=
PASS=0
FAIL=0

cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# Start the endpoint on a free port and learn the port from its first line.
start_endpoint() {
    "$PY" "$HERE/ec2_endpoint.py" --port 0 --state "$TMP/state.json" \
        --pidfile "$TMP/pid" >"$TMP/endpoint.out" 2>>"$TMP/endpoint.err" &
    PID=$!
    PORT=
    for _ in $(seq 100); do
        PORT=$(sed -n '1s/^PORT=\([0-9]*\)$/\1/p' "$TMP/endpoint.out")
        [ -n "$PORT" ] && break
        sleep 0.05
    done
    if [ -z "$PORT" ]; then
        echo "endpoint did not start:"; cat "$TMP/endpoint.err"
        exit 1
    fi
    EP=http://127.0.0.1:$PORT
}

stop_endpoint() {
    kill "$PID"
    wait "$PID" 2>/dev/null
    PID=
}

ok()  { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() {
    FAIL=$((FAIL + 1)); echo "FAIL - $1"
    [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/       /'
    return 0
}
expect_eq() {   # name expected actual
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "expected: $2"$'\n'"got:      $3"; fi
}

# The AWS CLI, isolated from any real configuration. Sets OUT, ERR and RC.
run_aws() {
    OUT=$(timeout 30 "$AWS" --endpoint-url "$EP" --region us-east-1 --no-cli-pager \
          --output text "$@" 2>"$TMP/aws.err")
    RC=$?
    ERR=$(cat "$TMP/aws.err")
}
expect_aws_ok() {
    if [ "$RC" = 0 ]; then ok "$1"; else bad "$1" "exit $RC: $ERR"; fi
}
expect_aws_error() {   # name error-code
    if [ "$RC" != 0 ] && grep -q "($2)" <<<"$ERR"; then ok "$1"
    else bad "$1" "exit $RC, wanted ($2): $ERR $OUT"; fi
}

admin() {   # METHOD path [json]
    if [ $# -ge 3 ]; then
        curl -sS -X "$1" -H 'Content-Type: application/json' -d "$3" "$EP/_admin/$2"
    else
        curl -sS -X "$1" "$EP/_admin/$2"
    fi
}

export HOME=$TMP/home
mkdir -p "$HOME"
: >"$TMP/credentials"
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=$TMP/credentials
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=$AKID
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_MAX_ATTEMPTS=1      # no retries unless a test asks for them
export AWS_PAGER=
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_REGION AWS_ENDPOINT_URL \
      AWS_ENDPOINT_URL_EC2 AWS_RETRY_MODE AWS_EC2_METADATA_SERVICE_ENDPOINT

start_endpoint
echo "# endpoint pid $PID on port $PORT"

# --- DescribeInstances filters ------------------------------------------------
BLUE=$(admin POST instances '{"count": 2, "tags": {"switchd:pool": "blue"}, "private_ip": "127.0.0.1"}' |
       jq -r '.ids | sort | join(" ")')
admin POST instances '{"instances": [
    {"tags": {"switchd:pool": "green"}},
    {"tags": {"switchd:pool": "blue"}, "state": "stopped"},
    {"tags": {"other": "x"}}]}' >/dev/null

run_aws ec2 describe-instances \
    --filters Name=tag:switchd:pool,Values=blue Name=instance-state-name,Values=running \
    --query 'Reservations[].Instances[].InstanceId'
expect_aws_ok "describe-instances with tag and state filters"
expect_eq "filters select the running blue instances" "$BLUE" "$(tr -s '\t ' '\n' <<<"$OUT" | sort | xargs)"

run_aws ec2 describe-instances --filters Name=tag-key,Values=switchd:pool \
    --query 'length(Reservations[].Instances[])'
expect_eq "tag-key filter" "4" "$OUT"

run_aws ec2 describe-instances --filters 'Name=tag:switchd:pool,Values=gr*' \
    --query 'Reservations[].Instances[].[State.Name,PrivateDnsName]'
expect_eq "wildcard filter value, instance fields" "running	ip-10-0-0-7.ec2.internal" "$OUT"

ONE=${BLUE%% *}
run_aws ec2 describe-instances --instance-ids "$ONE" \
    --query 'Reservations[0].Instances[0].[InstanceId,PrivateIpAddress,State.Code,Placement.AvailabilityZone,Tags[0].Value]'
expect_eq "describe by InstanceId" "$ONE	127.0.0.1	16	us-east-1a	blue" "$OUT"

run_aws ec2 describe-instances --instance-ids i-0123456789abcdef0
expect_aws_error "unknown instance id" InvalidInstanceID.NotFound
run_aws ec2 describe-instances --instance-ids i-nothex
expect_aws_error "malformed instance id" InvalidInstanceID.Malformed
run_aws ec2 describe-instances --instance-ids "$ONE" --max-results 5 --no-paginate
expect_aws_error "MaxResults with InstanceId" InvalidParameterCombination
run_aws ec2 describe-instances --max-results 4 --no-paginate
expect_aws_error "MaxResults below 5" InvalidParameterValue
run_aws ec2 describe-instances --filters Name=no-such-filter,Values=x
expect_aws_error "unknown filter name" InvalidParameterValue

# --- pagination -----------------------------------------------------------------
admin DELETE instances >/dev/null
admin POST instances '{"count": 23, "tags": {"batch": "p"}}' >/dev/null
admin POST reset_calls >/dev/null
# (with text output the CLI applies --query page by page, so count the ids)
run_aws ec2 describe-instances --page-size 5 --query 'Reservations[].Instances[].InstanceId'
expect_eq "CLI pagination (page size 5) returns all 23, once each" "23" \
    "$(tr -s '\t ' '\n' <<<"$OUT" | sort -u | grep -c .)"
PAGES=$(admin GET 'calls?action=DescribeInstances' |
        jq '[.calls[] | select(.params.MaxResults == "5")] | length')
expect_eq "23 instances took 5 pages of 5" "5" "$PAGES"
run_aws ec2 describe-instances --page-size 5 --max-items 12 \
    --query 'Reservations[].Instances[].InstanceId'
expect_eq "--max-items 12 across pages" "12" "$(grep -o 'i-[0-9a-f]*' <<<"$OUT" | sort -u | grep -c .)"
run_aws ec2 describe-instances --max-results 5 --no-paginate \
    --query '[length(Reservations[]), NextToken]'
N=$(cut -f1 <<<"$OUT"); TOKEN=$(cut -f2 <<<"$OUT")
if [ "$N" = 5 ] && [ -n "$TOKEN" ] && [ "$TOKEN" != None ]; then
    ok "raw MaxResults=5 gives 5 and a NextToken"
else bad "raw MaxResults=5 gives 5 and a NextToken" "$OUT $ERR"; fi
run_aws ec2 describe-instances --max-results 20 --no-paginate --next-token "$TOKEN" \
    --query '[length(Reservations[]), NextToken]'
expect_eq "NextToken resumes, last page has no NextToken" "18	None" "$OUT"
run_aws ec2 describe-instances --max-results 5 --no-paginate --next-token 'garbage!'
expect_aws_error "bad NextToken" InvalidPaginationToken

# --- CreateTags -----------------------------------------------------------------
IDS=$(admin GET instances | jq -r '[.instances[].id][0:3] | join(" ")')
set -- $IDS
run_aws ec2 create-tags --resources "$1" "$2" --tags Key=group,Value=hot Key=empty
expect_aws_ok "create-tags"
run_aws ec2 describe-instances --instance-ids "$1" "$2" \
    --query 'Reservations[].Instances[].Tags[?Key==`group`].Value[]'
expect_eq "describe shows the new tag" "hot	hot" "$OUT"
run_aws ec2 create-tags --resources "$3" i-0123456789abcdef0 --tags Key=group,Value=cold
expect_aws_error "create-tags with an unknown id" InvalidInstanceID.NotFound
TAGGED=$(admin GET instances | jq -r --arg id "$3" '.instances[] | select(.id == $id) | .tags.group // "none"')
expect_eq "failed create-tags tagged nothing" "none" "$TAGGED"
run_aws ec2 delete-tags --resources "$1" --tags Key=group,Value=cold
run_aws ec2 describe-instances --instance-ids "$1" --query 'Reservations[].Instances[].Tags[?Key==`group`].Value[]'
expect_eq "delete-tags with a non-matching value keeps the tag" "hot" "$OUT"
run_aws ec2 delete-tags --resources "$1" --tags Key=group
run_aws ec2 describe-instances --instance-ids "$1" --query 'Reservations[].Instances[].Tags[?Key==`group`].Value[]'
expect_eq "delete-tags by key" "" "$OUT"

# --- authentication -------------------------------------------------------------
AWS_SECRET_ACCESS_KEY=wrong-secret run_aws ec2 describe-instances
expect_aws_error "wrong secret key" AuthFailure
AWS_ACCESS_KEY_ID=AKIDUNKNOWN run_aws ec2 describe-instances
expect_aws_error "unknown access key" AuthFailure
STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' -d 'Action=DescribeInstances&Version=2016-11-15' "$EP/")
expect_eq "unsigned request" "400 MissingParameter" "$STATUS $(sed -n 's:.*<Code>\(.*\)</Code>.*:\1:p' "$TMP/body")"

# libcurl's own SigV4 (what switchd uses) as a third independent signer.
# (Query strings must be sorted and fully encoded: curl 7.88 signs them as is.)
curl_sigv4() { curl -sS --aws-sigv4 aws:amz:us-east-1:ec2 --user "$AKID:$SECRET" "$@"; }
expect_eq "curl --aws-sigv4 POST form body" "200" "$(curl_sigv4 -o /dev/null -w '%{http_code}' \
    -d 'Action=DescribeInstances&Version=2016-11-15' "$EP/")"
expect_eq "curl --aws-sigv4 GET query string" "$1" "$(curl_sigv4 \
    "$EP/?Action=DescribeInstances&Filter.1.Name=instance-id&Filter.1.Value.1=$1&Version=2016-11-15" |
    sed -n 's:.*<instanceId>\([^<]*\)</instanceId>.*:\1:p')"

# botocore signs a request dated 20 (and 14) minutes in the past.
OLD=$("$PY" - "$EP" "$AKID" "$SECRET" <<'EOF'
import datetime, sys, urllib.error, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

class PastSigV4(SigV4Auth):
    """SigV4Auth.add_auth with a chosen date instead of now."""
    minutes = 0
    def add_auth(self, request):
        when = datetime.datetime.utcnow() - datetime.timedelta(minutes=self.minutes)
        request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        sig = self.signature(self.string_to_sign(request, canonical), request)
        self._inject_signature_to_request(request, sig)

endpoint, akid, secret = sys.argv[1:]
for minutes in (20, 14):
    req = AWSRequest(method="POST", url=endpoint + "/",
                     data=b"Action=DescribeInstances&Version=2016-11-15",
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    signer = PastSigV4(Credentials(akid, secret), "ec2", "us-east-1")
    signer.minutes = minutes
    signer.add_auth(req)
    prepared = req.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(
                prepared.url, data=prepared.body, headers=dict(prepared.headers))) as r:
            print(r.status, "OK")
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        print(e.code, body.split("<Code>")[1].split("</Code>")[0])
EOF
)
expect_eq "request dated 20 min ago is expired, 14 min is fine" "400 RequestExpired 200 OK" "$(xargs <<<"$OLD")"

# --- faults and retries ----------------------------------------------------------
admin POST reset_calls >/dev/null
admin POST faults '{"action": "DescribeInstances", "kind": "throttle", "count": 1}' >/dev/null
AWS_MAX_ATTEMPTS=3 AWS_RETRY_MODE=standard run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_ok "throttled once, the CLI retries and succeeds"
CALLS=$(admin GET 'calls?action=DescribeInstances' | jq -c '[.calls[] | [.status, .code]]')
expect_eq "call log shows the throttle then the retry" '[[503,"RequestLimitExceeded"],[200,null]]' "$CALLS"

admin POST reset_calls >/dev/null
admin POST faults '{"action": "*", "kind": "drop", "count": 1}' >/dev/null
AWS_MAX_ATTEMPTS=3 AWS_RETRY_MODE=standard run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_ok "dropped connection is retried"
expect_eq "drop is logged with status 0" '[0,200]' \
    "$(admin GET calls | jq -c '[.calls[].status]')"

admin POST reset_calls >/dev/null
admin POST faults '{"action": "CreateTags", "kind": "auth", "count": 1}' >/dev/null
AWS_MAX_ATTEMPTS=3 AWS_RETRY_MODE=standard run_aws ec2 create-tags --resources "$1" --tags Key=a,Value=b
expect_aws_error "auth fault" AuthFailure
expect_eq "auth errors are not retried" "1" "$(admin GET calls | jq '.count')"

admin POST faults '{"kind": "slow", "delay_ms": 700}' >/dev/null
SECS=$(curl_sigv4 -o /dev/null -w '%{time_total}' -d 'Action=DescribeInstances&Version=2016-11-15' "$EP/")
SECS2=$(curl_sigv4 -o /dev/null -w '%{time_total}' -d 'Action=DescribeInstances&Version=2016-11-15' "$EP/")
if awk -v a="$SECS" -v b="$SECS2" 'BEGIN { exit !(a >= 0.7 && b < 0.5) }'; then
    ok "slow fault delays exactly one call"
else bad "slow fault delays exactly one call" "took $SECS s then $SECS2 s"; fi

admin POST faults '{"kind": "unavailable", "count": -1}' >/dev/null
AWS_MAX_ATTEMPTS=2 AWS_RETRY_MODE=standard run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_error "unavailable until cleared" Unavailable
admin POST faults/clear >/dev/null
expect_eq "faults cleared" "[]" "$(admin GET faults | jq -c .faults)"

# Eventual consistency: a new instance is NotFound for its first 2 calls.
NEW=$(admin POST instances '{"instances": [{"visible_after_calls": 2}]}' | jq -r '.ids[0]')
SEEN=
for _ in 1 2 3; do
    run_aws ec2 describe-instances --instance-ids "$NEW" --query 'Reservations[0].Instances[0].InstanceId'
    if [ "$RC" = 0 ]; then SEEN="$SEEN $OUT"; else SEEN="$SEEN $(grep -o 'InvalidInstanceID.NotFound' <<<"$ERR")"; fi
done
expect_eq "visible_after_calls" "InvalidInstanceID.NotFound InvalidInstanceID.NotFound $NEW" "$(xargs <<<"$SEEN")"

# --- IMDSv2 ---------------------------------------------------------------------
TOKEN=$(curl -sS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$EP/latest/api/token")
[ -n "$TOKEN" ] && ok "IMDS token" || bad "IMDS token"
expect_eq "IMDS token TTL out of range" "400 400" "$(for t in 0 21601; do
    curl -s -o /dev/null -w '%{http_code} ' -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: $t" "$EP/latest/api/token"
    done | xargs)"
ROLE=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" "$EP/latest/meta-data/iam/security-credentials/")
expect_eq "IMDS role name" "switchd-test-role" "$ROLE"
expect_eq "IMDS without a token" "401" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$EP/latest/meta-data/iam/security-credentials/")"
expect_eq "IMDS with a bogus token" "401" \
    "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-aws-ec2-metadata-token: bogus' "$EP/latest/meta-data/iam/security-credentials/")"
expect_eq "IMDS region" "us-east-1" \
    "$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" "$EP/latest/meta-data/placement/region")"
CREDS=$(curl -sS -H "X-aws-ec2-metadata-token: $TOKEN" "$EP/latest/meta-data/iam/security-credentials/$ROLE")
expect_eq "IMDS credentials document" "Success AWS-HMAC" "$(jq -r '"\(.Code) \(.Type)"' <<<"$CREDS")"
IAK=$(jq -r .AccessKeyId <<<"$CREDS"); ISK=$(jq -r .SecretAccessKey <<<"$CREDS"); ITOK=$(jq -r .Token <<<"$CREDS")
AWS_ACCESS_KEY_ID=$IAK AWS_SECRET_ACCESS_KEY=$ISK AWS_SESSION_TOKEN=$ITOK run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_ok "IMDS credentials work at the EC2 API"
AWS_ACCESS_KEY_ID=$IAK AWS_SECRET_ACCESS_KEY=$ISK run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_error "IMDS credentials without their session token" AuthFailure
admin POST imds '{"expire_issued": true}' >/dev/null
AWS_ACCESS_KEY_ID=$IAK AWS_SECRET_ACCESS_KEY=$ISK AWS_SESSION_TOKEN=$ITOK run_aws ec2 describe-instances --instance-ids "$1"
expect_aws_error "expired IMDS credentials" RequestExpired

# The CLI's own IMDSv2 credential provider, pointed at us.
admin POST reset_calls >/dev/null
(
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED
    export AWS_EC2_METADATA_SERVICE_ENDPOINT="$EP/"
    run_aws ec2 describe-instances --instance-ids "$1" --query 'Reservations[0].Instances[0].InstanceId'
    printf '%s\n' "$RC $OUT" >"$TMP/imds_cli"
)
expect_eq "AWS CLI gets credentials from our IMDSv2 and uses them" "0 $1" "$(cat "$TMP/imds_cli")"
expect_eq "...via token PUT then the credential GETs" "PUT /latest/api/token" \
    "$(admin GET imds | jq -r '.calls[0] | "\(.method) \(.path)"')"
KEY=$(admin GET calls | jq -r '.calls[-1].access_key')
[[ "$KEY" == ASIA* ]] && ok "...and the EC2 call was signed with the IMDS key" ||
    bad "...and the EC2 call was signed with the IMDS key" "$KEY"

# --- persistence ------------------------------------------------------------------
BEFORE=$(admin GET instances | jq -c '[.instances[] | [.id, .tags, .private_ip, .state]]')
stop_endpoint
start_endpoint
expect_eq "state survives a restart" "$BEFORE" \
    "$(admin GET instances | jq -c '[.instances[] | [.id, .tags, .private_ip, .state]]')"
run_aws ec2 describe-instances --instance-ids "$2" --query 'Reservations[].Instances[].Tags[?Key==`group`].Value[]'
expect_eq "tags written over the API survive a restart" "hot" "$OUT"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
