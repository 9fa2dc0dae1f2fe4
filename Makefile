# switchd — build, test, install.  See README.md.
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
SBINDIR  = $(PREFIX)/sbin
MANDIR   = $(PREFIX)/share/man
DOCDIR   = $(PREFIX)/share/doc/switchd
DATADIR  = $(PREFIX)/share/switchd

PKGS    = libevent jansson libconfig libcurl expat
CC     ?= cc
WARN    = -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wwrite-strings -Werror
CFLAGS ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE
# Evaluated when a compile or a link first needs them, never when the
# Makefile is read: "make test" and "make demo" install the packages first
# (scripts/deps), then build in a sub-make that sees them.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)
ALL_CFLAGS  = -std=c11 $(WARN) $(CFLAGS) $(PKG_CFLAGS)
LDLIBS     += $(PKG_LIBS)

# Every switchd/*.c but the two mains is library code shared by the daemon,
# the client and the unit tests.
MAINS   = switchd/switchd.c switchd/switchctl.c
LIBSRC  = $(filter-out $(MAINS),$(wildcard switchd/*.c))
HDRS    = $(wildcard switchd/*.h)
UNITSRC = $(wildcard tests/unit/test-*.c)

# B is the build directory of a variant: build/release or build/asan.
B ?= build/release
LIBOBJ  = $(LIBSRC:switchd/%.c=$(B)/%.o)
UNITBIN = $(UNITSRC:tests/unit/%.c=$(B)/%)

.PHONY: all deps asan test unit integration bench demo demo-stop install clean lint fuzz \
	check-build-deps check-fresh check-slow

# The release binaries are also copied beside their sources, where the
# README, the demo and the man pages' examples find them.
all: check-build-deps switchd/switchd switchd/switchctl

# Say what is missing, and how to get it, instead of a compiler's "not
# found" or a linker's dozens of undefined references.
check-build-deps:
	@command -v $(CC) >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 && \
	    pkg-config --exists $(PKGS) || { \
	    echo "switchd: the build needs a C compiler, pkg-config and the -dev packages of $(PKGS)."; \
	    echo "  make deps   (as root) installs them; or make demo / make test, which do it first."; \
	    scripts/deps build; exit 1; }

switchd/switchd: build/release/switchd
	@cp $< $@.tmp && mv -f $@.tmp $@
switchd/switchctl: build/release/switchctl
	@cp $< $@.tmp && mv -f $@.tmp $@

$(B)/%.o: switchd/%.c $(HDRS) | check-build-deps
	@mkdir -p $(B)
	@echo "  CC    $(B)/$*.o"
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Iswitchd -c -o $@ $<

# The status page is embedded by page.c (.incbin).
$(B)/page.o: switchd/page.html

$(B)/libswitchd.a: $(LIBOBJ)
	@rm -f $@
	@$(AR) rcs $@ $^

build/release/switchd build/release/switchctl: B = build/release
$(B)/switchd: $(B)/switchd.o $(B)/libswitchd.a
	@echo "  LD    $@"
	@$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/switchctl: $(B)/switchctl.o $(B)/libswitchd.a
	@echo "  LD    $@"
	@$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/test-%: tests/unit/test-%.c tests/unit/unit.h $(B)/libswitchd.a
	@echo "  CC    $@"
	@$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -Iswitchd -Itests/unit $(LDFLAGS) -o $@ $< $(B)/libswitchd.a $(LDLIBS)

unit-bins: $(UNITBIN)

# The sanitizer build the test suite runs.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: check-build-deps
	@$(MAKE) --no-print-directory B=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)" \
	    build/asan/switchd build/asan/switchctl unit-bins

deps:
	@scripts/deps test

# make test: install what is missing, then (in a sub-make, which reads the
# installed packages' pkg-config) build both variants warning-free, then run
# the unit and integration tests against the ASan/UBSan binaries.
# TESTS=REGEX runs a selection (tests/run.sh).
test:
	@scripts/deps test
	@$(MAKE) --no-print-directory all asan
	@tests/run.sh build/asan

bench:
	@scripts/deps bench
	@$(MAKE) --no-print-directory all
	@tests/bench/run.sh
	@tests/bench/metrics.sh
	@tests/bench/guard.sh
	@tests/bench/nodes.sh

# make check-fresh: the two README commands on a brand-new Debian 12 —
# debootstrap a throwaway chroot, clone this repository's HEAD into it, run
# make demo, make demo-stop and make test (a small TESTS selection) there.
# Slow (minutes: it installs every package); run before changing set-up.
check-fresh:
	@tests/fresh/run.sh

# make check-slow: the whole suite twice under stress-ng --cpu 2, with a
# python3 on the PATH that takes 0.5 s to start (tests/fresh/slow.sh).
check-slow:
	@scripts/deps check
	@$(MAKE) --no-print-directory all asan
	@tests/fresh/slow.sh

# libFuzzer over the request path (tests/fuzz/): replay the regressions,
# then fuzz for FUZZ_SECONDS (default 600).  Needs clang, libclang-rt-14-dev.
fuzz:
	@tests/fuzz/run.sh $${FUZZ_SECONDS:-600}

demo:
	@scripts/deps demo
	@$(MAKE) --no-print-directory all
	@scripts/demo start

demo-stop:
	@scripts/demo stop

lint:
	mandoc -Tlint -W warning man/*.[0-9]

UNITDIR  = $(PREFIX)/lib/systemd/system
COMPDIR  = $(PREFIX)/share/bash-completion/completions

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)/examples \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(COMPDIR)
	install -m 0755 switchd/switchd $(DESTDIR)$(SBINDIR)/switchd
	install -m 0755 switchd/switchctl $(DESTDIR)$(BINDIR)/switchctl
	install -m 0644 man/switchctl.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/switchd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/switchd.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 haproxy/* $(DESTDIR)$(DOCDIR)/examples/
	for f in nginx/*; do [ ! -f "$$f" ] || install -m 0644 "$$f" $(DESTDIR)$(DOCDIR)/examples/; done
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	sed 's|/usr/local/sbin/switchd|$(SBINDIR)/switchd|g' scripts/switchd.service \
	    >$(DESTDIR)$(UNITDIR)/switchd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/switchd.service
	install -m 0644 scripts/switchctl.bash-completion $(DESTDIR)$(COMPDIR)/switchctl
	for d in capistrano rake; do for f in scripts/$$d/*; do [ ! -f "$$f" ] || \
	    install -D -m 0644 "$$f" $(DESTDIR)$(DATADIR)/$$d/$$(basename "$$f"); done; done

clean:
	rm -rf build switchd/switchd switchd/switchctl
