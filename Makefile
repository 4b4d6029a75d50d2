# postino - GNU Makefile.
#
#   make            build build/postino, build/postino-admin, build/sendmail
#   make run        install what is missing, build, start the embedded default
#   make test       unit tests, then end-to-end tests (SAN=1: ASan + UBSan),
#                   the store's again on PostgreSQL (make e2e-pg)
#   make fuzz       run every libFuzzer target FUZZ_SECONDS seconds
#   make bench-tools  build build/loadgen (SMTP load client)
#   make crashtest  SIGKILL postino under load CRASH_ROUNDS times, check the mail
#   make bench      postino against a private Postfix (QUICK=1: about a minute)
#   make fresh-check  a bare Debian 12 root: make run, swaks, make test
#   make install    build, then install under DESTDIR/PREFIX (README "Installing")

SAN ?= 0
ifeq ($(SAN),1)
B	:= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined
else
B	:= build
SANFLAGS :=
endif

CC	?= cc
PKGS	:= libevent libevent_openssl libevent_pthreads openssl sqlite3 libcrypt libcares \
	   libpq
CFLAGS	?= -O2 -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wshadow \
	   -Wpointer-arith -Wmissing-prototypes -Wstrict-prototypes \
	   -D_GNU_SOURCE -pthread $(SANFLAGS) \
	   -Isrc/lib -Isrc/mail -Isrc/postino -Isrc/postino/store \
	   -Isrc/postino/net
# The package flags are read when this file is parsed.  Every target a
# user types first runs "deps" and then builds in a sub-make, which
# parses this file again once the packages exist.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
PKG_OK     := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
need_pkgs = $(if $(PKG_OK),,$(error pkg-config does not find every one \
	of: $(PKGS). Run "sh scripts/install-deps.sh" as root, or "make" \
	as root, which runs it))
LDFLAGS	+= $(SANFLAGS) -pthread

LIB_SRCS   := $(wildcard src/lib/*.c)
MAIL_SRCS  := $(wildcard src/mail/*.c)
DB_SRCS	   := src/postino/store/db.c src/postino/store/db_pg.c \
	      src/postino/store/policy.c \
	      src/postino/store/explain.c src/postino/store/intrusion.c \
	      src/postino/store/dnscheck.c
DAEMON_SRCS := $(wildcard src/postino/*.c src/postino/net/*.c \
		src/postino/store/*.c)
ADMIN_SRCS := $(wildcard src/admin/*.c)
SENDMAIL_SRCS := $(wildcard src/sendmail/*.c)
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
CORE_OBJS := $(call obj,$(LIB_SRCS) $(MAIL_SRCS))

BINS	:= $(B)/postino $(B)/postino-admin $(B)/sendmail
UNITS	:= $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))

.PHONY: all bins deps run test unit e2e e2e-pg fuzz fuzz-build clean docs
all: deps
	@$(MAKE) --no-print-directory bins
bins: $(BINS)

deps:
	@sh scripts/install-deps.sh

$(B)/obj/%.o: %.c
	@$(need_pkgs)mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/postino: $(call obj,$(DAEMON_SRCS)) $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/postino-admin: $(call obj,$(ADMIN_SRCS) $(DB_SRCS)) $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/sendmail: $(call obj,$(SENDMAIL_SRCS)) $(CORE_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# A unit test links the generic and mail code and the account store.
TEST_OBJS := $(CORE_OBJS) $(call obj,$(DB_SRCS) src/postino/store/envelope.c \
	     src/postino/store/mailbox.c src/postino/store/maildir.c \
	     src/postino/store/clamd.c src/postino/store/queue.c)
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# The SPF checker against zone data in memory, for the conformance
# suites (tests/e2e/test_spf_suite.py); linked like a unit test.
$(B)/tests/spf_driver: $(B)/obj/tests/spf/spf_driver.o $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

unit: $(UNITS)
	@mkdir -p $(B); sh tests/unit/run.sh $(UNITS) 2>&1 | tee $(B)/unit.log; \
	    exit $${PIPESTATUS[0]}

e2e: $(BINS) $(B)/tests/spf_driver
	@POSTINO_BUILD=$(B) /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	    tests/e2e 2>&1 | tee $(B)/e2e.log; \
	    exit $${PIPESTATUS[0]}

# The end-to-end tests again with every server's account store in
# PostgreSQL (POSTINO_TEST_STORE=postgres: a private cluster, a database
# a server; docs/store.md).  make test runs those whose outcome the store
# decides; "make e2e-pg PG_E2E=tests/e2e" runs them all (6 minutes more).
PG_E2E ?= tests/e2e/test_policy.py tests/e2e/test_pop3.py \
	  tests/e2e/test_auth.py tests/e2e/test_auth_sender.py \
	  tests/e2e/test_intrusion.py tests/e2e/test_explain.py \
	  tests/e2e/test_relay_battery.py
e2e-pg: $(BINS) $(B)/tests/spf_driver
	@POSTINO_TEST_STORE=postgres POSTINO_BUILD=$(B) /usr/bin/python3 -m \
	    pytest -q -p no:cacheprovider $(PG_E2E) 2>&1 | \
	    tee $(B)/e2e-pg.log; exit $${PIPESTATUS[0]}

test: deps
	@rm -f $(B)/unit.log $(B)/e2e.log $(B)/e2e-pg.log
	@$(MAKE) --no-print-directory bins $(UNITS)
	@$(MAKE) --no-print-directory unit || true
	@$(MAKE) --no-print-directory e2e || true
	@$(MAKE) --no-print-directory e2e-pg || true
	@sh tests/total.sh $(B)

run: deps
	@$(MAKE) --no-print-directory bins
	@sh scripts/run.sh $(B)

# libFuzzer: clang only, each target with the parsers it exercises.
FUZZ_SECONDS ?= 10
FUZZ_CFLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	       -Isrc/lib -Isrc/mail -Isrc/postino/store
FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(MAIL_SRCS)
	@$(need_pkgs)mkdir -p build/fuzz
	clang $(FUZZ_CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS)
fuzz-build: $(FUZZERS)
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZERS)

# Measurement tools (docs/benchmarks.md).
.PHONY: bench-tools crashtest bench bench-policy
bench-tools: build/loadgen
build/loadgen: bench/loadgen.c
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

CRASH_ROUNDS ?= 20
crashtest: deps
	@$(MAKE) --no-print-directory bins build/loadgen
	@CRASH_ROUNDS=$(CRASH_ROUNDS) POSTINO_BUILD=$(B) /usr/bin/python3 \
	    tests/crash/crashtest.py

# Benchmarks print numbers and never fail the build (docs/benchmarks.md).
QUICK ?= 0
bench: deps
	@$(MAKE) --no-print-directory bins build/loadgen $(B)/policy_bench
	@QUICK=$(QUICK) POSTINO_BUILD=$(B) /usr/bin/python3 bench/bench.py

# The policy engine's decisions, timed; linked like a unit test.
bench-policy: deps
	@$(MAKE) --no-print-directory $(B)/policy_bench
	@$(B)/policy_bench
$(B)/policy_bench: $(B)/obj/bench/policy_bench.o $(TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# A bare Debian 12 root, a clean clone, make run + swaks + make test in
# it (README "Checking a fresh install").  FRESH_STEPS=build: packages
# and make only.
.PHONY: fresh-check
fresh-check:
	@FRESH_STEPS=$(FRESH_STEPS) FRESH_OPTIONAL=$(FRESH_OPTIONAL) \
	    sh scripts/fresh-check.sh

# make install: the programs, the manual pages, the systemd unit and an
# example configuration under $(DESTDIR)$(PREFIX); /etc is never
# written.  sendmail is installed as postino-sendmail, so that it never
# takes the place of another MTA's /usr/sbin/sendmail.  install-files
# installs what $(B) holds without building (tests/e2e/test_install.py).
PREFIX	?= /usr/local
SBINDIR	 = $(PREFIX)/sbin
MANDIR	 = $(PREFIX)/share/man
DOCDIR	 = $(PREFIX)/share/doc/postino
UNITDIR	 = $(PREFIX)/lib/systemd/system
DOCS	:= README.md $(wildcard docs/*.md)
INSTALLED = $(addprefix $(DESTDIR)$(SBINDIR)/,postino postino-admin \
	    postino-sendmail) \
	    $(DESTDIR)$(MANDIR)/man1/postino-sendmail.1 \
	    $(DESTDIR)$(MANDIR)/man5/postino.conf.5 \
	    $(addprefix $(DESTDIR)$(MANDIR)/man8/,postino.8 postino-admin.8) \
	    $(DESTDIR)$(UNITDIR)/postino.service \
	    $(addprefix $(DESTDIR)$(DOCDIR)/,postino.conf.example \
	    $(notdir $(DOCS)))

.PHONY: install install-files uninstall
install: deps
	@$(MAKE) --no-print-directory bins
	@$(MAKE) --no-print-directory install-files

install-files:
	@for f in $(BINS); do [ -x "$$f" ] || { echo "make install: $$f" \
	    "is missing: run make first" >&2; exit 1; }; done
	install -d -m 0755 $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(B)/postino $(B)/postino-admin $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(B)/sendmail $(DESTDIR)$(SBINDIR)/postino-sendmail
	install -m 0644 man/postino-sendmail.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 man/postino.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/postino.8 man/postino-admin.8 $(DESTDIR)$(MANDIR)/man8/
	sed 's|/usr/local/sbin/|$(SBINDIR)/|g' etc/postino.service \
	    >$(DESTDIR)$(UNITDIR)/postino.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/postino.service
	install -m 0644 etc/postino.conf.example $(DOCS) $(DESTDIR)$(DOCDIR)/
	@echo "postino: installed under $(DESTDIR)$(PREFIX); start from" \
	    "$(DOCDIR)/postino.conf.example as /etc/postino/postino.conf"

uninstall:
	rm -f $(INSTALLED)
	-rmdir $(DESTDIR)$(DOCDIR)

clean:
	rm -rf --one-file-system build

SHELL := /bin/bash
.SECONDARY:
-include $(shell find build -path build/fresh -prune -o -name '*.d' -type f -print 2>/dev/null)
