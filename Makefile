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
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
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

.PHONY: all deps asan test unit integration bench demo demo-stop install clean lint fuzz

# The release binaries are also copied beside their sources, where the
# README, the demo and the man pages' examples find them.
all: switchd/switchd switchd/switchctl

switchd/switchd: build/release/switchd
	@cp $< $@.tmp && mv -f $@.tmp $@
switchd/switchctl: build/release/switchctl
	@cp $< $@.tmp && mv -f $@.tmp $@

$(B)/%.o: switchd/%.c $(HDRS)
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
asan:
	@$(MAKE) --no-print-directory B=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)" \
	    build/asan/switchd build/asan/switchctl unit-bins

deps:
	@scripts/deps test

# make test: install what is missing, build both variants warning-free, run
# the unit and integration tests against the ASan/UBSan binaries.
test: deps all asan
	@tests/run.sh build/asan

bench: all
	@scripts/deps bench
	@tests/bench/run.sh

# libFuzzer over the request path (tests/fuzz/): replay the regressions,
# then fuzz for FUZZ_SECONDS (default 600).  Needs clang, libclang-rt-14-dev.
fuzz:
	@tests/fuzz/run.sh $${FUZZ_SECONDS:-600}

demo: all
	@scripts/deps demo
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
