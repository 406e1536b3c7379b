# sluice build. `make` builds build/sluice; `make test` runs every suite; `make run`
# starts the quickstart. SAN=1 builds with AddressSanitizer + UBSan (into build/asan).
# `make install` / `make uninstall` / `make man` / `make deb` / `make package-check`: see
# docs/packaging.md. The caller's CFLAGS, CPPFLAGS and LDFLAGS (e.g. dpkg-buildflags) come
# first on every command line; the project's flags are appended, never replacing them.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build/asan
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
# Link-time optimisation: the data path spans small files (proxy/sock.c, pump.c, tunnel.c,
# upstream/connect.c) whose calls LTO inlines again (instructions per proxied connection,
# docs/benchmarks.md). LTO= turns it off.
LTO ?= -flto=auto
OPT := -O2 -g $(LTO)
endif

CC ?= gcc
PKGS := openssl yaml-0.1 libcares libnghttp2 libsystemd jansson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?=
CPPFLAGS ?=
LDFLAGS ?=
SLUICE_CFLAGS := $(CPPFLAGS) $(CFLAGS) -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Isrc -pthread \
	$(OPT) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
SLUICE_LDFLAGS := $(CFLAGS) $(LDFLAGS) -pthread $(OPT) $(EXTRA_LDFLAGS)
LDLIBS = $(PKG_LIBS) -lm

# Installation layout (GNU style; all overridable). DESTDIR is prepended at install time.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/sluice
ifeq ($(PREFIX),/usr)
SYSCONFDIR ?= /etc
UNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
else
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
endif
DESTDIR ?=
INSTALL ?= install
DOCS := README.md docs/configuration.md docs/operations.md docs/tls.md docs/packaging.md \
	docs/scale-out.md
MAN_PAGES := $(BUILD)/man/sluice.8 $(BUILD)/man/sluice.yaml.5

LIB_SRCS := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
# The dashboard's files, embedded into the library as C arrays by src/admin/embed.sh.
# The folder is a prerequisite too, so adding, removing or renaming a file regenerates.
DASHBOARD := $(sort $(wildcard $(addprefix src/admin/dashboard/*.,html css js)))
DASHBOARD_GEN := $(BUILD)/gen/dashboard_assets
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(DASHBOARD_GEN).o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
PYTEST := /usr/bin/python3 -m pytest

.PHONY: all deps check-build-deps test unit e2e asan fuzz fuzz-smoke run bench clean format \
	man install uninstall deb image package-check systemd-check
all: $(BUILD)/sluice $(BUILD)/sluice-demo

deps:
	@scripts/install-deps.sh test

# One clear line naming the missing Debian packages instead of a compiler error.
check-build-deps:
	@scripts/check-build-deps.sh $(CC)

$(BUILD)/obj/%.o: %.c | check-build-deps
	@mkdir -p $(dir $@)
	$(CC) $(SLUICE_CFLAGS) -MMD -MP -c $< -o $@

$(DASHBOARD_GEN).c: $(DASHBOARD) src/admin/dashboard src/admin/embed.sh
	@mkdir -p $(dir $@)
	sh src/admin/embed.sh $(DASHBOARD) > $@.tmp && mv $@.tmp $@

$(DASHBOARD_GEN).o: $(DASHBOARD_GEN).c
	$(CC) $(SLUICE_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluice: $(BUILD)/obj/src/main.o $(BUILD)/libsluice.a
	$(CC) $(SLUICE_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sluice-demo: $(BUILD)/obj/demo/demo_backend.o
	$(CC) $(SLUICE_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(SLUICE_LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_BINS)
	@failed=""; for t in $(UNIT_BINS); do echo "== $$t"; $$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "unit test failures:$$failed"; exit 1; fi

e2e: all
	SLUICE_BUILD=$(abspath $(BUILD)) $(PYTEST) -q -rs tests/e2e $(PYTEST_ARGS)

# The whole suite again against a sanitizer build.
asan:
	$(MAKE) SAN=1 unit e2e PYTEST_ARGS="$(PYTEST_ARGS)"

# libFuzzer harnesses, one per parser, built with clang, plus the gate's self-test.
FUZZ_BUILD := build/fuzz
FUZZ_SELFTEST := $(FUZZ_BUILD)/crash_on_any_input
fuzz:
	$(MAKE) CC=clang LTO= BUILD=$(FUZZ_BUILD) EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -g -O1" $(FUZZ_BUILD)/libsluice.a
	@set -e; for f in $(FUZZ_SRCS); do n=$$(basename $$f .c); \
	  clang $(filter-out $(LTO),$(SLUICE_CFLAGS)) -fsanitize=fuzzer,address,undefined -O1 -g $$f $(FUZZ_BUILD)/libsluice.a $(LDLIBS) -o $(FUZZ_BUILD)/$$n; done
	clang -fsanitize=fuzzer -O1 tests/fuzz/selftest/crash_on_any_input.c -o $(FUZZ_SELFTEST)

# Runs each harness for a short time (CI smoke run); any crash fails. First proves that
# the gate can fail: a harness that aborts on every input must make it fail.
FUZZ_SECONDS ?= 20
fuzz-smoke: fuzz
	@scripts/fuzz-smoke.sh --expect-crash $(FUZZ_BUILD) 5 $(FUZZ_SELFTEST)
	@scripts/fuzz-smoke.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) package-check
	$(MAKE) asan
	$(MAKE) fuzz-smoke

# Man pages from their scdoc sources (needs scdoc; `make all` does not).
man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@command -v scdoc >/dev/null || { echo "make man: scdoc is missing: apt-get install scdoc (or make deps)" >&2; exit 1; }
	scdoc < $< > $@.tmp && mv $@.tmp $@

$(BUILD)/sluice.service: packaging/sluice.service.in
	@mkdir -p $(dir $@)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@.tmp
	mv $@.tmp $@

# Never needs root with DESTDIR: no user, no chown, nothing enabled or started. The
# configuration is written last (temporary file + rename), and never over an existing
# one outside DESTDIR. The unit is regenerated every time, as its paths depend on the
# variables of this call.
install: $(BUILD)/sluice man
	@rm -f $(BUILD)/sluice.service
	$(MAKE) --no-print-directory $(BUILD)/sluice.service
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSCONFDIR)/sluice
	$(INSTALL) -m 0755 $(BUILD)/sluice $(DESTDIR)$(SBINDIR)/sluice
	$(INSTALL) -m 0644 $(BUILD)/man/sluice.8 $(DESTDIR)$(MANDIR)/man8/sluice.8
	$(INSTALL) -m 0644 $(BUILD)/man/sluice.yaml.5 $(DESTDIR)$(MANDIR)/man5/sluice.yaml.5
	$(INSTALL) -m 0644 $(BUILD)/sluice.service $(DESTDIR)$(UNITDIR)/sluice.service
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 examples/*.yaml $(DESTDIR)$(DOCDIR)/examples/
	@conf=$(DESTDIR)$(SYSCONFDIR)/sluice/sluice.yaml; \
	if [ -z "$(DESTDIR)" ] && [ -e "$$conf" ]; then \
	  echo "keeping the existing $$conf (packaging/sluice.yaml not installed)"; \
	else \
	  echo "$(INSTALL) -m 0640 packaging/sluice.yaml $$conf"; \
	  $(INSTALL) -m 0640 packaging/sluice.yaml "$$conf.tmp" && mv -f "$$conf.tmp" "$$conf"; \
	fi

# The packaging contract on this tree: layout, flags, man pages, unit exposure, manifests.
package-check: all
	scripts/package-check.sh $(BUILD)

# The Debian package (debian/), built as in a clean clone; the .deb lands in ..
deb:
	dpkg-buildpackage -us -uc -b

# The OCI image from the .deb (built first when DEB is not given): offline, with mmdebstrap
# and umoci. Output: build/image/sluice_<version>_<arch>.oci.tar
VERSION = $(shell sed -n 's/^#define SLUICE_VERSION "\(.*\)"/\1/p' src/version.h)
image:
	@deb="$(DEB)"; \
	if [ -z "$$deb" ]; then \
	  $(MAKE) deb && deb=$$(ls ../sluice_$(VERSION)_$$(dpkg --print-architecture).deb); \
	fi; \
	packaging/container/build-image.sh "$$deb" build/image

# The .deb under a real systemd (PID 1 in a podman container): install, enabled and active
# unit, user and capabilities, reload (and a refused broken one), log rotation, stop, purge.
# Opt-in like the image (minutes, the Debian mirror for the cached root file system), not
# part of `make test`. DEB=path skips `make deb`.
systemd-check:
	scripts/systemd-check.sh $(DEB)

# Removes what install put there, never the configuration file.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/sluice $(DESTDIR)$(MANDIR)/man8/sluice.8 \
		$(DESTDIR)$(MANDIR)/man5/sluice.yaml.5 $(DESTDIR)$(UNITDIR)/sluice.service \
		$(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS))) \
		$(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(wildcard examples/*.yaml)))
	-rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/sluice (configuration)"

run: all
	@scripts/install-deps.sh run
	scripts/quickstart.sh

bench: all
	bench/l4.sh

format:
	clang-format -i $$(find src tests/unit tests/fuzz demo -name '*.[ch]')

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
