#!/bin/bash
# t-layers: switchd's layers (switchd/ARCHITECTURE.md) hold in the binaries
# under test: no object file uses a symbol of a higher layer (scripts/layers),
# and scripts/layers does catch one; every header compiles on its own.
. "$(dirname "$0")/../lib.sh"
t_setup
BUILD=$(dirname "$SWITCHD")

run /usr/bin/python3 "$REPO_DIR/scripts/layers" "$BUILD"
expect_eq "scripts/layers: exit 0 on $BUILD" "$RC" 0
expect_match "scripts/layers: no use of a higher layer" "$OUT" "0 uses of a higher layer \("

# The checker can fail: a base-layer object (state.o) that calls into the
# front layer (control.o).
mkdir -p "$T/objs"
printf 'int control_thing(void);\nint control_thing(void) { return 1; }\n' >"$T/control.c"
printf 'int control_thing(void);\nint state_thing(void);\nint state_thing(void) { return control_thing(); }\n' >"$T/state.c"
ok "compile the two objects" cc -c -o "$T/objs/control.o" "$T/control.c"
ok "compile the two objects (state.o)" cc -c -o "$T/objs/state.o" "$T/state.c"
run /usr/bin/python3 "$REPO_DIR/scripts/layers" "$T/objs"
expect_eq "scripts/layers: exit 1 on a call up" "$RC" 1
expect_match "scripts/layers names it" "$OUT" "state.c \(base\) -> control.c \(front\): control_thing"

# Every header is self-contained (it includes or declares what it uses).
CFL=$(pkg-config --cflags libevent jansson libconfig libcurl expat)
for h in "$REPO_DIR"/switchd/*.h; do
	printf '#include "%s"\n' "$(basename "$h")" >"$T/h.c"
	# shellcheck disable=SC2086
	run cc -D_GNU_SOURCE -std=c11 -Wall -Wextra -Werror -fsyntax-only \
	    -I"$REPO_DIR/switchd" $CFL "$T/h.c"
	expect_eq "$(basename "$h") compiles on its own" "$RC$ERR" 0
done
t_done
