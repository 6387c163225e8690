# fsdb — build, test, install.
#
#   make            build the core for Lua 5.4 and LuaJIT
#   make test       install missing Debian packages, build, run every suite
#   make demo       the furniture store against a throwaway MariaDB
#   make asan       the Lua 5.4 suites under AddressSanitizer
#   make spec SPEC=spec/integration/x_spec.lua
#                   one spec under Lua 5.4 and LuaJIT, with its own server
#   make lint       luacheck (.luacheckrc) over lua, spec, examples and bin
#   make docs       the LDoc HTML reference of the public modules (build/docs)
#   make install PREFIX=/p   the usual Lua tree under /p
#
# Tool flags are looked up when a recipe runs (not when the Makefile is
# read), so `make test` on a bare machine can install them first.

PREFIX ?= /usr/local
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
# Hidden by default: core.so exports luaopen_fsdb_core and nothing else.
BASE_CFLAGS = -std=gnu99 -fPIC -fvisibility=hidden $(WARN) $(CFLAGS) $$(mariadb_config --cflags)
MARIADB_LIBS = $$(mariadb_config --libs) -lcrypto -lpthread -lm -ldl

SRC := $(sort $(wildcard csrc/*.c))
HDR := $(wildcard csrc/*.h)
LUA_MODULES := $(sort $(wildcard lua/fsdb/*.lua lua/fsdb/*/*.lua))

CORE54 := build/lua5.4/fsdb/core.so
COREJIT := build/luajit/fsdb/core.so
COREASAN := build/asan/fsdb/core.so

.PHONY: all build deps test unit asan demo bench install uninstall clean spec lint docs

all: build

build: $(CORE54) $(COREJIT)

deps:
	@scripts/deps

$(CORE54): $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $$(pkg-config --cflags lua5.4) -shared -o $@ $(SRC) $(MARIADB_LIBS)

$(COREJIT): $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $$(pkg-config --cflags luajit) -shared -o $@ $(SRC) $(MARIADB_LIBS)

$(COREASAN): $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	  $$(pkg-config --cflags lua5.4) -shared -o $@ $(SRC) $(MARIADB_LIBS)

build/tests/%: tests/c/%.c tests/c/check.h $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(WARN) -g -O1 -fsanitize=address,undefined -Icsrc $$(mariadb_config --cflags) \
	  -o $@ $< csrc/uri.c csrc/error.c csrc/sqlscan.c csrc/pool.c csrc/deadline.c csrc/hosts.c \
	  csrc/copies.c -lpthread

# The pool test again under ThreadSanitizer: its bookkeeping is shared
# between threads.
build/tests/tsan_test_pool: tests/c/test_pool.c csrc/pool.c csrc/pool.h csrc/deadline.c csrc/deadline.h csrc/error.c csrc/error.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 $(WARN) -g -O1 -fsanitize=thread -Icsrc -o $@ tests/c/test_pool.c csrc/pool.c csrc/deadline.c csrc/error.c -lpthread

# Test-only Lua module (fork, waitpid, sleep) for the specs; never installed.
HELPER54 := build/lua5.4/fsdb_testhelper.so
HELPERJIT := build/luajit/fsdb_testhelper.so
HELPERASAN := build/asan/fsdb_testhelper.so
$(HELPER54) $(HELPERASAN): spec/support/testhelper.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -fPIC $(WARN) -O2 $$(pkg-config --cflags lua5.4) -shared -o $@ $<
$(HELPERJIT): spec/support/testhelper.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -fPIC $(WARN) -O2 $$(pkg-config --cflags luajit) -shared -o $@ $<

# Test-only loopback TCP proxy (stall, cut, drop) for the fault specs; never
# installed.
PROXY54 := build/lua5.4/fsdb_testproxy.so
PROXYJIT := build/luajit/fsdb_testproxy.so
PROXYASAN := build/asan/fsdb_testproxy.so
$(PROXY54) $(PROXYASAN): spec/support/proxy.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -fPIC $(WARN) -O2 $$(pkg-config --cflags lua5.4) -shared -o $@ $<
$(PROXYJIT): spec/support/proxy.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu99 -fPIC $(WARN) -O2 $$(pkg-config --cflags luajit) -shared -o $@ $<

# Fuzzing with clang's libFuzzer under ASan and UBSan (Debian: clang,
# libclang-rt-14-dev): `make fuzz` runs each target for FUZZ_SECONDS on its
# seed corpus in fuzz/corpus/ (what it finds goes to build/fuzz/corpus-*,
# not into the repo) and fails on the first crash, leaving the input in
# build/fuzz/. `make fuzz-smoke` only replays the seed corpora (seconds).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_FLAGS = -std=gnu99 $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -Icsrc
FUZZ_TARGETS := uri sqlscan codec
FUZZERS := $(patsubst %,build/fuzz/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-smoke

build/fuzz/fuzz_%: fuzz/fuzz_%.c csrc/%.c csrc/%.h csrc/error.c csrc/error.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< csrc/$*.c csrc/error.c

# The codec needs libmariadb's headers (type numbers) and libcrypto (the
# auth scrambles).
build/fuzz/fuzz_codec: fuzz/fuzz_codec.c csrc/codec.c csrc/codec.h csrc/error.c csrc/error.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) $$(mariadb_config --cflags) -o $@ $< csrc/codec.c csrc/error.c -lcrypto

fuzz: $(FUZZERS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus-$$t; \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -max_len=4096 -dict=fuzz/$$t.dict -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	    build/fuzz/corpus-$$t fuzz/corpus/$$t >build/fuzz/fuzz_$$t.log 2>&1 || { \
	    tail -n 40 build/fuzz/fuzz_$$t.log; \
	    echo "fuzz_$$t: FAILED (the input is in build/fuzz/, the log in build/fuzz/fuzz_$$t.log)"; \
	    exit 1; }; \
	  grep -E '^(Done|stat::(new_units_added|peak_rss_mb))' build/fuzz/fuzz_$$t.log; \
	  echo "fuzz_$$t: 0 crashes"; \
	done

fuzz-smoke: $(FUZZERS)
	@for t in $(FUZZ_TARGETS); do \
	  build/fuzz/fuzz_$$t -runs=0 fuzz/corpus/$$t >build/fuzz/smoke_$$t.log 2>&1 || { \
	    tail -n 40 build/fuzz/smoke_$$t.log; echo "fuzz_$$t: the seed corpus fails"; exit 1; }; \
	  echo "fuzz_$$t: $$(ls fuzz/corpus/$$t | wc -l) seeds, 0 crashes"; \
	done

C_TESTS := $(patsubst tests/c/%.c,build/tests/%,$(wildcard tests/c/test_*.c)) build/tests/tsan_test_pool

test: deps
	@$(MAKE) --no-print-directory build $(C_TESTS) $(HELPER54) $(HELPERJIT) $(PROXY54) $(PROXYJIT) $(FUZZERS)
	@scripts/run-tests

# Unit specs only (no server needed).
unit: deps
	@$(MAKE) --no-print-directory build $(C_TESTS) $(HELPER54) $(HELPERJIT)
	@FSDB_NO_SERVER=1 scripts/run-tests

# One spec (or several) against a throwaway server of its own.
spec: deps
	@test -n "$(SPEC)" || { echo "usage: make spec SPEC=spec/integration/x_spec.lua" >&2; exit 2; }
	@$(MAKE) -s --no-print-directory build $(HELPER54) $(HELPERJIT) $(PROXY54) $(PROXYJIT)
	@scripts/run-spec $(SPEC)

lint: deps
	@luacheck --no-color --formatter plain lua spec examples bin

# The reference of the public modules (config.ld), from their --- comments.
docs: deps
	@ldoc -c config.ld . >/dev/null
	@echo "docs: build/docs/index.html"

asan: deps
	@$(MAKE) --no-print-directory $(COREASAN) $(C_TESTS) $(HELPERASAN) $(PROXYASAN)
	@FSDB_ASAN=1 scripts/run-tests

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo

bench: deps
	@$(MAKE) --no-print-directory build $(HELPER54) $(HELPERJIT)
	@bench/run

install: build
	install -d $(DESTDIR)$(PREFIX)/share/lua/5.4/fsdb $(DESTDIR)$(PREFIX)/lib/lua/5.4/fsdb
	install -d $(DESTDIR)$(PREFIX)/share/lua/5.1/fsdb $(DESTDIR)$(PREFIX)/lib/lua/5.1/fsdb
	install -d $(DESTDIR)$(PREFIX)/bin
	for v in 5.4 5.1; do for f in $(LUA_MODULES); do \
	  install -D -m 644 $$f $(DESTDIR)$(PREFIX)/share/lua/$$v/$${f#lua/}; done; done
	install -m 755 $(CORE54) $(DESTDIR)$(PREFIX)/lib/lua/5.4/fsdb/core.so
	install -m 755 $(COREJIT) $(DESTDIR)$(PREFIX)/lib/lua/5.1/fsdb/core.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' bin/fsdb > $(DESTDIR)$(PREFIX)/bin/fsdb
	chmod 755 $(DESTDIR)$(PREFIX)/bin/fsdb

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/share/lua/5.4/fsdb $(DESTDIR)$(PREFIX)/lib/lua/5.4/fsdb
	rm -rf $(DESTDIR)$(PREFIX)/share/lua/5.1/fsdb $(DESTDIR)$(PREFIX)/lib/lua/5.1/fsdb
	rm -f $(DESTDIR)$(PREFIX)/bin/fsdb

clean:
	rm -rf build
