#!/bin/bash
# t-tls: the shipped nginx/tls-front.conf terminating TLS in front of
# HAProxy, end to end: a CA and certificate made by openssl now, curl
# verifying it by name, the smoke checks of cold-deploy going through TLS by
# address with the cold host as Host header, then switch and back — each
# seen through TLS.  A stray host name gets 421, not a pool; nginx keeps its
# connections to HAProxy alive.
. "$(dirname "$0")/../lib.sh"
t_setup
STD_NO_SWITCHD=1 std_setup

make_certs "$T/tls"
TLS_PORT=$(free_port)
NG=$T/nginx
nginx_conf "$NG" "$(tls_front_conf "$TLS_PORT" "$FE_PORT" "$T/tls")"
start_nginx "$NG"

# through_tls HOST [PATH]: the body, verified against the test CA by name.
through_tls() {
	curl -sS --max-time 5 --cacert "$T/tls/ca.pem" \
		--resolve "$1:$TLS_PORT:127.0.0.1" "https://$1:$TLS_PORT${2:-/}"
}

expect_eq "live host through TLS answers blue" "$(through_tls "$LIVE_HOST")" blue
expect_eq "cold host through TLS answers green" "$(through_tls "$COLD_HOST")" green
ok "the certificate verifies for the cold name too" through_tls "$COLD_HOST" /health
run curl -sk -o /dev/null -w '%{http_code}' --max-time 5 \
	--resolve "other.example.com:$TLS_PORT:127.0.0.1" "https://other.example.com:$TLS_PORT/"
expect_eq "an unknown host name gets 421 from the default server" "$OUT" 421
run curl -s --max-time 5 --resolve "$LIVE_HOST:$TLS_PORT:127.0.0.1" "http://$LIVE_HOST:$TLS_PORT/"
expect_nogrep '^blue$' - "plain HTTP on the TLS port does not reach a pool"
# By address, as the smoke checks do: no SNI, the Host header picks the site.
run curl -sk --max-time 5 -H "Host: $COLD_HOST" "https://127.0.0.1:$TLS_PORT/"
expect_eq "by address with Host: cold host -> green" "$OUT" green

# smoke_conf BODY [TLS-KEYS]: TLS-KEYS default to the test CA (smoke.ca_file).
smoke_conf() {
	printf 'smoke = {\n  url = "https://127.0.0.1:%s";\n  timeout_ms = 30000;\n' "$TLS_PORT"
	printf '  %s\n' "${2-ca_file = \"$T/tls/ca.pem\";}"
	printf '  checks = ( { name = "home"; path = "/"; status = 200; body = "%s"; },\n' "$1"
	printf '             { name = "health"; path = "/health"; status = 200; } );\n};\n'
}

# ---- smoke.verify_tls is on by default for https: a certificate nobody
# vouches for fails the checks; verify_tls = false is the explicit way out
write_config "$(smoke_conf green "")"
start_switchd
run ctlj smoke
expect_eq "without smoke.ca_file the test CA is not trusted: smoke fails" "$(jv "$OUT" '["passed"]')" false
expect_match "the check says why" "$(jv "$OUT" '[c.get("why", "") for c in d["checks"]][0]')" "[Cc]ertificate|SSL|issuer"
write_config "$(smoke_conf green "verify_tls = false;")"
expect_ok reload
run ctlj smoke
expect_eq "verify_tls = false: smoke passes unverified" "$(jv "$OUT" '["passed"]')" true
write_config "$(smoke_conf green "ca_file = \"$T/tls/ca.pem\"; verify_tls = true;")"
expect_ok reload
run ctlj smoke
expect_eq "with smoke.ca_file the certificate verifies for the cold host name" "$(jv "$OUT" '["passed"]')" true
write_config "$(smoke_conf green)"
expect_ok reload

# ---- cold-deploy: the smoke checks reach green through nginx and TLS
expect_ok cold-deploy --no-deploy -v v2 -m "through TLS"
expect_eq "green verified through TLS" "$(status_get '["pools"]["green"]["state"]')" verified
run ctlj smoke
expect_eq "smoke reply passed" "$(jv "$OUT" '["passed"]')" true
expect_match "the smoke check went to the https URL" "$(jv "$OUT" '[c["url"] for c in d["checks"]][0]')" "^https://127\.0\.0\.1:$TLS_PORT/"

# ---- a check only the hot pool passes fails on the cold pool through TLS
write_config "$(smoke_conf blue)"
expect_ok reload
run ctlj smoke
expect_eq "a check expecting blue on the cold (green) pool fails through TLS" "$(jv "$OUT" '["passed"]')" false
write_config "$(smoke_conf green)"
expect_ok reload
expect_ok cold-deploy --no-deploy -v v2 -m "again"

# ---- switch and back, seen through TLS
expect_ok switch -m "TLS switch"
expect_eq "after switch: live host through TLS answers green" "$(through_tls "$LIVE_HOST")" green
expect_eq "after switch: cold host through TLS answers blue" "$(through_tls "$COLD_HOST")" blue
expect_ok back -m "TLS back"
expect_eq "after back: live host through TLS answers blue" "$(through_tls "$LIVE_HOST")" blue
expect_eq "after back: cold host through TLS answers green" "$(through_tls "$COLD_HOST")" green

# ---- nginx keeps its connections to HAProxy open (upstream keepalive)
fe_counts() {
	hap_stat h1 stot req_tot | awk -F'\t' '$1 == "fe_http" && $2 == "FRONTEND" { print $3, $4 }'
}
read -r c0 r0 <<<"$(fe_counts)"
for i in $(seq 20); do through_tls "$LIVE_HOST" >/dev/null; done
read -r c1 r1 <<<"$(fe_counts)"
log "HAProxy's frontend: $((c1 - c0)) new connections for $((r1 - r0)) requests from nginx"
expect_eq "20 requests reached HAProxy" "$((r1 - r0))" 20
ok "nginx reused its connections to HAProxy (keep-alive: at most one per worker)" test "$((c1 - c0))" -le 2

expect_nogrep '\[(emerg|alert|crit)\]' "$NG/logs/error.log" "nginx error log has no emerg/alert/crit"
t_done
