#!/bin/bash
# t-man: the man pages are mandoc-clean and describe what the code has.
#
# Names are taken from the sources, so this stays true as commands, options,
# config keys and error codes are added:
#   switchd/cmd-table.c       commands          -> ".It Cm NAME" (or ".It Xo Cm NAME") in switchctl.1
#                        their options     -> "Fl -LONG" / "Fl X" in switchctl.1
#   switchd/switchctl.c  global options    -> "Fl -LONG" / "Fl X" in switchctl.1
#   switchd/switchd.c    getopt letters    -> ".It Fl X" in switchd.8
#   switchd/config.c     key tables        -> ".It ... Ic KEY" inside ".Ss GROUP" of
#                                             switchd.conf.5 (top-level scalars anywhere)
#   switchd/protocol.h   E_* codes         -> ".It Li CODE" in switchctl.1 or switchd.8
#                        PS_* states       -> ".It Cm STATE" in switchd.8
#                        EV_* events       -> "Li EVENT" in switchd.8
#   switchd/*.c          SWITCHD_* env     -> ".It Ev NAME" in a page
#   switchd/ec2*.c       AWS_* env         -> ".It Ev NAME" in switchd.8
# The example configurations of switchd.conf.5 and README.md (```conf
# blocks) must pass "switchd -n".  Then the same checks are run on pages
# with an entry removed, to prove they can fail.
. "$(dirname "$0")/../lib.sh"
t_setup

SRC=$REPO_DIR/switchd
MAN=$REPO_DIR/man

command -v mandoc >/dev/null || die "mandoc is missing (scripts/deps test installs it)"

# ------------------------------------------------------------ from the code

# The command table of cmd-table.c: one "{ "name", "usage", ..." a command.
src_commands() {
	sed -n '/cmd_infos\[\] = {/,/^};/p' "$SRC/cmd-table.c" |
	    sed -nE 's/^[[:space:]]*\{ "([a-z][a-z0-9-]*)", ".*/\1/p'
}

# Long options: cmd-table.c ({ 'm', "message", ...} and { 0, "force", ...}) and
# switchctl.c's getopt_long table ({ "json", no_argument, ...}).
src_long_opts() {
	grep -ohE "\{ ('.'|0), \"[a-z][a-z0-9-]*\"" "$SRC/cmd-table.c" |
	    sed -E 's/.*"(.*)"/\1/'
	grep -ohE '\{ "[a-z][a-z0-9-]*", (no|required|optional)_argument' "$SRC/switchctl.c" |
	    sed -E 's/\{ "([^"]*)".*/\1/'
}

# Short options: cmd-table.c ({ 'v', ...}) and switchctl.c's getopt string.
src_short_opts() {
	grep -ohE "\{ '[a-zA-Z]', " "$SRC/cmd-table.c" | sed -E "s/\{ '(.)'.*/\1/"
	sed -nE 's/.*getopt_long\([^"]*"\+?([a-zA-Z:]*)".*/\1/p' "$SRC/switchctl.c" |
	    tr -d ':' | fold -w1
}

src_switchd_opts() {
	sed -nE 's/.*[^_]getopt\([^"]*"([a-zA-Z:]*)".*/\1/p' "$SRC/switchd.c" | tr -d ':' | fold -w1
}

# protocol.h: #define PREFIX_NAME "value" (names may have digits: E_EC2)
src_defines() {
	sed -nE "s/^#define $1[A-Z0-9_]*[[:space:]]+\"([^\"]+)\".*/\\1/p" "$SRC/protocol.h"
}

src_env() {
	grep -ohE '"SWITCHD_[A-Z0-9_]+(=|")' "$SRC"/*.c | tr -d '"=' | sort -u
}

# The AWS variables the EC2 client reads: env("AWS_...") in ec2.c, ec2-creds.c.
src_aws_env() {
	grep -ohE 'env\("AWS_[A-Z0-9_]+"\)' "$SRC"/ec2*.c | sed -E 's/env\("(.*)"\)/\1/' | sort -u
}

# config.c's key tables, and each driver's (a driver reads its own section:
# its struct lb_driver names the section and its table, .section and .keys),
# as "SECTION KEY": SECTION is the top-level group a table hangs under ("-"
# for top_keys itself); "-" entries with a subtable, and each driver's
# section, are printed as "- KEY group".
src_config_keys() {
	awk '
	/^(static )?const struct (conf_)?key [a-z_0-9]+\[\]/ {
		t = $0; sub(/.*struct (conf_)?key /, "", t); sub(/\[.*/, "", t); next
	}
	/^[ \t]*\.section = "[a-z_0-9]+"/ {
		sec = $0; sub(/^[^"]*"/, "", sec); sub(/".*/, "", sec); next
	}
	/^[ \t]*\.keys = [a-z_0-9]+/ {
		k = $0; sub(/^[^=]*= */, "", k); sub(/[^a-z_0-9].*/, "", k)
		if (!(k in parent)) { parent[k] = "top_keys"; via[k] = sec; drv[++nd] = sec }
		next
	}
	t != "" {
		line = $0
		while (match(line, /\{ *"[a-z_0-9]+", *K_[A-Z_]+, *[A-Za-z_0-9]+ *\}/)) {
			e = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
			gsub(/[{}",]/, " ", e); split(e, f, " ")
			n++; tab[n] = t; key[n] = f[1]; sub_[n] = f[3]
			if (f[3] != "NULL") { parent[f[3]] = t; via[f[3]] = f[1] }
		}
		if ($0 ~ /^};/) t = ""
	}
	function section(x) {
		if (x == "top_keys") return "-"
		if (parent[x] == "top_keys") return via[x]
		if (parent[x] == "") return "?" x
		return section(parent[x])
	}
	END {
		for (i = 1; i <= nd; i++)
			print "- " drv[i] " group"
		for (i = 1; i <= n; i++) {
			s = section(tab[i])
			if (s == "-" && sub_[i] != "NULL") print "- " key[i] " group"
			else print s " " key[i]
		}
	}' "$SRC/config.c" $(grep -lE '^[[:space:]]*\.keys = |^(static )?const struct conf_key ' \
	    "$SRC"/*.c | grep -v '/config\.c$')
}

# ------------------------------------------------------------ the checks
# Each prints what is missing, one a line; nothing when all is there.

# has_line PAGE ERE
has_line() { grep -Eq -- "$2" "$1"; }

missing_commands() {	# PAGE
	local c
	for c in $(src_commands); do
		has_line "$1" "^\\.It (Xo )?Cm $c( |\$)" || echo "command $c"
	done
}

missing_options() {	# PAGE
	local o
	for o in $(src_long_opts | sort -u); do
		has_line "$1" "Fl \\\\?-$o( |\$)" || echo "option --$o"
	done
	for o in $(src_short_opts | sort -u); do
		has_line "$1" "Fl $o( |\$)" || echo "option -$o"
	done
}

missing_switchd_opts() {	# PAGE
	local o
	for o in $(src_switchd_opts); do
		has_line "$1" "^\\.It Fl $o( |\$)" || echo "switchd option -$o"
	done
}

# section_text PAGE NAME: the lines of ".Ss NAME" up to the next .Ss/.Sh.
section_text() {
	awk -v s="$2" '$0 == ".Ss " s { f = 1; next } f && /^\.S[sh] / { f = 0 } f' "$1"
}

missing_config_keys() {	# PAGE
	local sec key kind
	while read -r sec key kind; do
		case $sec in
		'?'*)	echo "config key $key: table ${sec#?} hangs under no top-level group" ;;
		-)	if [ "$kind" = group ]; then
				has_line "$1" "^\\.Ss $key\$" || echo "config group $key (.Ss $key)"
			else
				has_line "$1" "^\\.It.* Ic $key( |\$)" ||
				    has_line "$1" "^\\.Ss $key\$" || echo "config key $key"
			fi ;;
		*)	section_text "$1" "$sec" | grep -Eq -- "^\\.It.* Ic $key( |\$)" ||
			    echo "config key $sec.$key (in .Ss $sec)" ;;
		esac
	done < <(src_config_keys)
}

missing_codes() {	# PAGE...
	local c
	for c in $(src_defines E_); do
		cat "$@" | grep -Eq -- "^\\.It Li $c\$" || echo "error code $c"
	done
}

missing_states() {	# PAGE
	local s
	for s in $(src_defines PS_); do
		has_line "$1" "^\\.It Cm $s( |\$)" || echo "pool state $s"
	done
}

missing_events() {	# PAGE
	local e
	for e in $(src_defines EV_); do
		has_line "$1" "Li $e( |\$)" || echo "progress event $e"
	done
}

missing_env() {	# PAGE...
	local v
	for v in $(src_env); do
		cat "$@" | grep -Eq -- "^\\.It (.* )?Ev $v( |\$)" || echo "environment variable $v"
	done
}

missing_aws_env() {	# PAGE
	local v
	for v in $(src_aws_env); do
		has_line "$1" "^\\.It (.* )?Ev $v( |\$)" || echo "environment variable $v"
	done
}

lint() { mandoc -Tlint -W warning "$@" 2>&1; }

# ------------------------------------------------------------ the sources parse

expect_match "cmd-table.c: commands found" "$(src_commands | wc -l)" '^([5-9]|[1-9][0-9]+)$'
expect_match "cmd-table.c/switchctl.c: long options found" "$(src_long_opts | wc -l)" '^([5-9]|[1-9][0-9]+)$'
expect_match "switchd.c: options found" "$(src_switchd_opts | tr -d '\n')" '^[a-z]{3,}$'
expect_match "config.c: keys found" "$(src_config_keys | wc -l)" '^([2-9][0-9]|[1-9][0-9]{2,})$'
expect_eq "config.c: every key table hangs under a group" \
    "$(src_config_keys | grep -c '^?')" 0
expect_match "protocol.h: error codes found" "$(src_defines E_ | wc -l)" '^([5-9]|[1-9][0-9]+)$'
expect_match "protocol.h: pool states found" "$(src_defines PS_ | wc -l)" '^[3-9]$'
expect_match "SWITCHD_* variables found" "$(src_env | wc -l)" '^([3-9]|[1-9][0-9]+)$'
expect_match "ec2*.c: AWS_* variables found" "$(src_aws_env | wc -l)" '^([5-9]|[1-9][0-9]+)$'
expect_eq "protocol.h: names with digits are found (E_EC2)" \
    "$(src_defines E_ | grep -cx ec2)" 1

# ------------------------------------------------------------ the pages

for page in "$MAN/switchctl.1" "$MAN/switchd.8" "$MAN/switchd.conf.5"; do
	[ -f "$page" ] || die "$page is missing"
	expect_eq "mandoc -Tlint -W warning $(basename "$page") is silent" "$(lint "$page")" ""
	ok "mandoc renders $(basename "$page")" mandoc -Tutf8 "$page"
done

expect_eq "switchctl.1 has every command of cmd-table.c" "$(missing_commands "$MAN/switchctl.1")" ""
expect_eq "switchctl.1 has every option of cmd-table.c and switchctl.c" \
    "$(missing_options "$MAN/switchctl.1")" ""
expect_eq "switchd.8 has every option of switchd.c" "$(missing_switchd_opts "$MAN/switchd.8")" ""
expect_eq "switchd.conf.5 has every key of config.c, in its group's section" \
    "$(missing_config_keys "$MAN/switchd.conf.5")" ""
expect_eq "switchctl.1 or switchd.8 has every error code of protocol.h" \
    "$(missing_codes "$MAN/switchctl.1" "$MAN/switchd.8")" ""
expect_eq "switchd.8 has every pool state of protocol.h" "$(missing_states "$MAN/switchd.8")" ""
expect_eq "switchd.8 has every progress event of protocol.h" "$(missing_events "$MAN/switchd.8")" ""
expect_eq "the pages have every SWITCHD_* variable of the code" \
    "$(missing_env "$MAN"/*.[0-9])" ""
expect_eq "switchd.8 has every AWS_* variable of the EC2 client" \
    "$(missing_aws_env "$MAN/switchd.8")" ""

# The example configurations are valid.
n=0
while IFS= read -r -d '' block; do
	n=$((n + 1))
	printf '%s\n' "$block" >"$T/example-$n.conf"
	run "$SWITCHD" -n -f "$T/example-$n.conf"
	expect_eq "switchd.conf.5 example $n: switchd -n says OK${ERR:+ ($ERR)}" "$OUT" "configuration OK"
done < <(awk '/^\.Sh /{ex = ($0 == ".Sh EXAMPLES")} ex && /^\.Bd -literal/{b = 1; t = ""; next}
    ex && b && /^\.Ed/{b = 0; printf "%s%c", t, 0; next} ex && b {t = t $0 "\n"}' "$MAN/switchd.conf.5")
expect_match "switchd.conf.5 has example configurations" "$n" '^[1-9]'
if [ -f "$REPO_DIR/README.md" ]; then
	m=0
	while IFS= read -r -d '' block; do
		m=$((m + 1))
		printf '%s\n' "$block" >"$T/readme-$m.conf"
		run "$SWITCHD" -n -f "$T/readme-$m.conf"
		expect_eq "README.md conf block $m: switchd -n says OK${ERR:+ ($ERR)}" "$OUT" "configuration OK"
	done < <(awk '/^```conf$/{b = 1; t = ""; next} b && /^```$/{b = 0; printf "%s%c", t, 0; next}
	    b {t = t $0 "\n"}' "$REPO_DIR/README.md")
fi

# ------------------------------------------------------------ can it fail?
# Remove one entry of each kind from copies of the pages: the checks must
# name it.

B=$T/broken
mkdir -p "$B"
cp "$MAN"/*.[0-9] "$B"/
c1=$(src_commands | head -n 1)
sed -Ei "/^\\.It (Xo )?Cm $c1( |\$)/d" "$B/switchctl.1"
expect_match "a page without .It Cm $c1 fails" "$(missing_commands "$B/switchctl.1")" "command $c1\$"

sed -Ei 's/Fl \\?-expect/Fl \\-exp/g' "$B/switchctl.1"
if src_long_opts | grep -qx expect; then
	expect_match "a page without --expect fails" "$(missing_options "$B/switchctl.1")" "option --expect"
fi

code=$(src_defines E_ | tail -n 1)
sed -Ei "/^\\.It Li $code\$/d" "$B/switchctl.1" "$B/switchd.8"
expect_match "pages without error code $code fail" \
    "$(missing_codes "$B/switchctl.1" "$B/switchd.8")" "error code $code\$"

canary=""
while read -r sec key _; do
	section_text "$MAN/switchd.conf.5" "$sec" | grep -Eq "^\\.It.* Ic $key( |\$)" &&
	    canary="$sec $key"
done < <(src_config_keys | grep -v '^- ')
[ -n "$canary" ] || die "canary: no documented config key to remove"
read -r sec key <<<"$canary"
awk -v s="$sec" -v k="$key" '$0 == ".Ss " s { f = 1 } f && /^\.Sh / { f = 0 }
    f && $0 ~ ("^\\.It.* Ic " k "( |$)") { next } { print }' "$MAN/switchd.conf.5" >"$B/switchd.conf.5"
expect_match "switchd.conf.5 without $sec.$key fails" \
    "$(missing_config_keys "$B/switchd.conf.5")" "config key $sec\\.$key "

# The same key documented only in another group's section is not enough.
if grep -q "^\\.Ss haproxy\$" "$MAN/switchd.conf.5"; then
	awk '$0 == ".Ss haproxy" { f = 1 } f && /^\.S[sh] / && $0 != ".Ss haproxy" { f = 0 }
	    f && /^\.It Ic timeout_ms / { next } { print }' "$MAN/switchd.conf.5" >"$B/switchd.conf.5"
	expect_match "haproxy.timeout_ms documented only under smoke fails" \
	    "$(missing_config_keys "$B/switchd.conf.5")" "config key haproxy\\.timeout_ms "
fi

v=$(src_aws_env | head -n 1)
sed -Ei "s/^(\\.It .*)Ev $v( |\$)/\\1Ev XX\\2/" "$B/switchd.8"
expect_match "switchd.8 without $v fails" "$(missing_aws_env "$B/switchd.8")" "variable $v\$"

printf '.Zz not a macro\n' >>"$B/switchd.8"
expect_ne "mandoc -Tlint catches a broken page" "$(lint "$B/switchd.8")" ""

t_done
