# projkey: build the nginx dynamic module against Debian's nginx-dev, the
# operator CLI and the unit tests; run the demo and the test suite.
#
#   make          build build/ngx_http_projkey_module.so and build/projkey
#   make run      install what is missing, build, start the demo
#   make test     install what is missing, build, run every test
#   make bench    build, run bench/run (projkey against map, lua, auth_request)

NGINX_SRC   ?= /usr/share/nginx/src
BUILD       := $(CURDIR)/build
NGX_BUILD   := $(BUILD)/nginx
MODULE      := $(BUILD)/ngx_http_projkey_module.so
CLI         := $(BUILD)/projkey
SRC         := ngx_http_projkey_module

CC          ?= cc

# Debian's build flags (hardening included) unless given: the CLI and the
# unit tests build as the package builds them
# (asked once, not on every compile line)
ifneq ($(shell command -v dpkg-buildflags 2> /dev/null),)
ifeq ($(origin CFLAGS),undefined)
CFLAGS      := $(shell dpkg-buildflags --get CFLAGS)
endif
ifeq ($(origin CPPFLAGS),undefined)
CPPFLAGS    := $(shell dpkg-buildflags --get CPPFLAGS)
endif
ifeq ($(origin LDFLAGS),undefined)
LDFLAGS     := $(shell dpkg-buildflags --get LDFLAGS)
endif
else
CFLAGS      ?= -O2 -g
endif
# libpq-fe.h: Debian puts it in /usr/include/postgresql
PQ_CFLAGS   := $(shell pkg-config --cflags libpq 2> /dev/null)
CORE_CFLAGS := -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror \
               -Wno-unused-parameter -I$(SRC) $(PQ_CFLAGS)
CORE_LIBS   := -lsodium -lsqlite3 -lpq

CORE_SRCS   := $(SRC)/projkey_key.c $(SRC)/projkey_text.c \
               $(SRC)/projkey_json.c $(SRC)/projkey_api.c \
               $(SRC)/projkey_store.c \
               $(SRC)/projkey_store_sqlite.c $(SRC)/projkey_store_pg.c \
               $(SRC)/projkey_snapshot.c
CORE_HDRS   := $(SRC)/projkey_key.h $(SRC)/projkey_crc32.h \
               $(SRC)/projkey_text.h $(SRC)/projkey_json.h \
               $(SRC)/projkey_api.h \
               $(SRC)/projkey_store.h $(SRC)/projkey_store_engine.h \
               $(SRC)/projkey_snapshot.h
MODULE_SRCS := $(wildcard $(SRC)/*.c $(SRC)/*.h) config

# The C flags Debian's nginx was built with, so the module is ABI-compatible.
NGX_CC_OPT  := $(shell nginx -V 2>&1 | sed -n "s/.*--with-cc-opt='\([^']*\)'.*/\1/p")
NGX_LD_OPT  := $(shell nginx -V 2>&1 | sed -n "s/.*--with-ld-opt='\([^']*\)'.*/\1/p")
MODULE_CC_OPT ?= $(NGX_CC_OPT) -Werror
MODULE_LD_OPT ?= $(NGX_LD_OPT)

.PHONY: all module cli unit deps test test-unit test-nginx test-page run \
        bench clean fuzz fuzz-smoke fuzz-build fuzz-deps test-asan test-pg \
        test-valgrind

all: module cli

module: $(MODULE)
cli: $(CLI)

# configure once per flag set in a private copy of nginx-dev's tree, then
# rebuild only the module objects on source changes.
$(NGX_BUILD)/Makefile: config
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(MODULE_CC_OPT)" \
	        --with-ld-opt="$(MODULE_LD_OPT)" \
	        --add-dynamic-module=$(CURDIR) > $(BUILD)/configure.log 2>&1 \
	    || { tail -30 $(BUILD)/configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	# a new inode: a running nginx keeps the .so it has mapped
	cp $(NGX_BUILD)/objs/ngx_http_projkey_module.so $@.tmp
	mv -f $@.tmp $@

$(CLI): admin/projkey.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CORE_CFLAGS) -o $@ admin/projkey.c \
	    $(CORE_SRCS) $(LDFLAGS) $(CORE_LIBS)

$(BUILD)/test_%: t/unit/test_%.c t/unit/tap.h t/unit/jx.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CORE_CFLAGS) -It/unit -o $@ $< \
	    $(CORE_SRCS) $(LDFLAGS) $(CORE_LIBS)

# the word-at-a-time alphabet check too, where the build runs the SSE2 one
$(BUILD)/test_key_portable: t/unit/test_key.c t/unit/tap.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CORE_CFLAGS) -DPROJKEY_PORTABLE -It/unit \
	    -o $@ $< $(CORE_SRCS) $(LDFLAGS) $(CORE_LIBS)

unit: $(BUILD)/test_key $(BUILD)/test_key_portable $(BUILD)/test_text \
      $(BUILD)/test_store

SHELL := /bin/bash

deps:
	./scripts/deps

test: deps
	$(MAKE) all unit
	prove -r t/
	$(MAKE) test-pg
	npm run --silent test:page
	$(MAKE) fuzz-smoke
	$(MAKE) test-asan

# The files whose keys.db may as well be PostgreSQL (t/lib/Projkey/Test.pm
# gives each a private one): the rest read or damage the SQLite file
# itself, or count on sync= being the only way in for the CLI's changes.
PG_SUITE := t/10-enforce.t t/11-optional.t t/12-hide-key.t t/13-spoof.t \
            t/16-workers.t t/19-satisfy.t t/20-admin-api.t \
            t/22-admin-concurrency.t t/24-admin-audit.t t/25-last-used.t \
            t/26-log-level.t t/29-kill-writer.t t/30-attacks.t \
            t/31-spoof-h2.t t/32-redirects.t t/37-kill-reload.t \
            t/38-reload-admin.t t/39-hide-key-push.t t/44-metrics.t \
            t/45-expiry.t t/47-list-paged.t t/49-thread-pool.t \
            t/51-hide-key-list.t t/52-last-used-reload.t t/53-wait-alone.t

test-pg: all
	PROJKEY_TEST_ENGINE=pg prove -j2 $(PG_SUITE)

run: deps
	$(MAKE) all
	./scripts/run-demo

bench: all
	./bench/run

# libFuzzer targets of the nginx-free core (fuzz/README.md): make fuzz runs
# each FUZZ_SECONDS, make fuzz-smoke 10 s (part of make test)
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -D_GNU_SOURCE -Wall -Wextra \
                -Wno-unused-parameter -Wno-unused-function -I$(SRC) \
                $(PQ_CFLAGS)
FUZZ_BINS    := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard fuzz/fuzz_*.c))

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRCS) $(CORE_LIBS)

fuzz-deps:
	./scripts/deps fuzz

fuzz-build: fuzz-deps
	$(MAKE) $(FUZZ_BINS)

fuzz: fuzz-build
	fuzz/run $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	fuzz/run 10

# the module and the CLI with AddressSanitizer and UBSan, the whole suite
# on them: the sanitizer runtime is preloaded into (Debian's) nginx only;
# a report lands in error.log, which every test file checks
ASAN_BUILD  := $(BUILD)/asan
ASAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_MODULE := $(ASAN_BUILD)/ngx_http_projkey_module.so
ASAN_CLI    := $(ASAN_BUILD)/projkey

$(ASAN_BUILD)/nginx/Makefile: config
	rm -rf $(ASAN_BUILD)/nginx
	mkdir -p $(ASAN_BUILD)
	cp -a $(NGINX_SRC) $(ASAN_BUILD)/nginx
	cd $(ASAN_BUILD)/nginx && . ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(NGX_CC_OPT) $(ASAN_FLAGS)" \
	        --with-ld-opt="$(NGX_LD_OPT) $(ASAN_FLAGS)" \
	        --add-dynamic-module=$(CURDIR) > $(ASAN_BUILD)/configure.log 2>&1 \
	    || { tail -30 $(ASAN_BUILD)/configure.log; exit 1; }

$(ASAN_MODULE): $(ASAN_BUILD)/nginx/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(ASAN_BUILD)/nginx -f objs/Makefile modules
	cp $(ASAN_BUILD)/nginx/objs/ngx_http_projkey_module.so $@.tmp
	mv -f $@.tmp $@

$(ASAN_CLI): admin/projkey.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $(ASAN_BUILD)
	$(CC) -O1 -g $(ASAN_FLAGS) $(CORE_CFLAGS) -o $@ admin/projkey.c \
	    $(CORE_SRCS) $(CORE_LIBS)

test-asan: deps
	$(MAKE) all unit $(ASAN_MODULE) $(ASAN_CLI)
	PROJKEY_TEST_MODULE=$(ASAN_MODULE) PROJKEY_TEST_CLI=$(ASAN_CLI) \
	PROJKEY_TEST_PRELOAD="$$(gcc -print-file-name=libasan.so) \
	                      $$(gcc -print-file-name=libubsan.so)" \
	UBSAN_OPTIONS=print_stacktrace=1 \
	    prove -r t/

# nginx under valgrind (one process, master_process off) on a scripted set
# of requests: no memory error, no leak of the module's own
test-valgrind: deps
	$(MAKE) all
	t/valgrind/run

# nginx built from each release tarball of ../shared/nginx, with the module
# dynamic and static (-Werror), the whole suite on each build; cached in
# build/matrix; MATRIX="1.26 1.31" picks versions (scripts/test-matrix)
.PHONY: test-matrix
test-matrix: deps
	$(MAKE) cli unit
	./scripts/test-matrix $(MATRIX)

clean:
	rm -rf $(BUILD)

# make deb: the Debian packages of debian/ (docs/deployment.md), in build/deb/
.PHONY: deb
deb:
	./scripts/deps deb
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb
# the .changes and every file it lists, from .. to build/deb/
	dcmd mv ../$$(dpkg-parsechangelog -S Source)_$$(dpkg-parsechangelog \
	    -S Version)_$$(dpkg-architecture -qDEB_HOST_ARCH).changes $(BUILD)/deb/
	ls -l $(BUILD)/deb

