# nasflat — build, test, bench, install.
#
# Knobs (set on the command line, e.g. `make OPT=-O0 DEBUG=1`):
#   LUA_VERSION=5.4            Lua ABI to build against
#   LUA_INCDIR=/usr/include/lua5.4
#   LUA=lua5.4                 interpreter used by tests, bench and the CLI wrapper
#   BLAS_LIBS=-lopenblas       BLAS to link (must provide cblas_sgemm and openblas_set_num_threads)
#   OPT=-O2 -march=x86-64-v2   optimisation flags (NATIVE=1 adds -march=native)
#   DEBUG=1                    -g -O0
#   PREFIX=/usr/local          install root (DESTDIR honoured)
#   NASFLAT_DATA=../shared/data real data for the specs that need it (absent: those specs are pending)

LUA_VERSION ?= 5.4
LUA_INCDIR  ?= /usr/include/lua$(LUA_VERSION)
LUA         ?= lua$(LUA_VERSION)
BLAS_LIBS   ?= -lopenblas
PREFIX      ?= /usr/local
BUSTED      ?= $(shell command -v busted)
OPT         ?= -O2
ifeq ($(NATIVE),1)
OPT += -march=native
endif
ifeq ($(DEBUG),1)
OPT = -O0 -g
endif

BUILD ?= build
WARN   = -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -fPIC $(OPT) $(WARN) $(SAN) -I$(LUA_INCDIR) -Icsrc $(CFLAGS)
LDLIBS_ALL = $(BLAS_LIBS) -lm $(LDLIBS)

CORE_SRC = $(sort $(wildcard csrc/nf_*.c))
BIND_SRC = $(sort $(wildcard csrc/lua_*.c))
CTEST_SRC = $(sort $(wildcard ctest/test_*.c))
CORE_OBJ = $(CORE_SRC:csrc/%.c=$(BUILD)/obj/%.o)
BIND_OBJ = $(BIND_SRC:csrc/%.c=$(BUILD)/obj/%.o)
CTEST_BIN = $(CTEST_SRC:ctest/%.c=$(BUILD)/ctest/%)
MODULE = $(BUILD)/lua/nasflat/core.so
CORELIB = $(BUILD)/libnfcore.a

LUA_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(BUILD)/lua/?.so;;"

.PHONY: lint all test test-c test-lua test-asan bench install uninstall clean valgrind check-rockspec

all: $(MODULE)

$(BUILD)/obj/%.o: csrc/%.c $(wildcard csrc/*.h) | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(BUILD)/obj $(BUILD)/ctest $(BUILD)/lua/nasflat:
	mkdir -p $@

$(CORELIB): $(CORE_OBJ)
	rm -f $@ && $(AR) rcs $@ $^

$(MODULE): $(BIND_OBJ) $(CORELIB) | $(BUILD)/lua/nasflat
	$(CC) -shared $(SAN) -o $@ $(BIND_OBJ) $(CORELIB) $(LDLIBS_ALL)

$(BUILD)/ctest/%: ctest/%.c ctest/ctest.h $(CORELIB) | $(BUILD)/ctest
	$(CC) $(CFLAGS_ALL) -Ictest $< -o $@ $(CORELIB) $(LDLIBS_ALL)

test: lint test-c test-lua

# luacheck: strict globals (no accidental global reads or writes), unused values, line length.
lint:
	luacheck -q lua bin/nasflat spec bench examples

test-c: $(CTEST_BIN)
	@set -e; for t in $(CTEST_BIN); do echo "== $$t"; $(RUNNER) $$t; done

test-lua: $(MODULE)
	$(LUA_ENV) $(SAN_ENV) $(LUA) $(BUSTED) --output=utfTerminal spec

# AddressSanitizer + UndefinedBehaviorSanitizer: the same C tests and specs.
# The stock lua5.4 is not instrumented, so the ASan runtime is preloaded.
ASAN_LIB := $(shell $(CC) -print-file-name=libasan.so)
UBSAN_LIB := $(shell $(CC) -print-file-name=libubsan.so)
test-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  SAN_ENV='LD_PRELOAD="$(ASAN_LIB) $(UBSAN_LIB)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1' \
	  test

# A small run under valgrind's memcheck: the quick C unit tests and a short Lua workload (tensors, RNG,
# graphs, a predictor fit, save and load). test_nn's thousands of finite-difference passes take over
# 15 minutes under memcheck; AddressSanitizer (make test-asan) covers them instead. "Possibly lost" blocks
# are hidden: OpenBLAS starts its thread pool at load time and never joins it (not our memory).
VALGRIND_CTESTS = $(filter-out $(BUILD)/ctest/test_nn,$(CTEST_BIN))
valgrind: $(MODULE) $(CTEST_BIN)
	@set -e; for t in $(VALGRIND_CTESTS); do echo "== valgrind $$t"; \
	  valgrind -q --error-exitcode=1 --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite $$t >/dev/null; done
	$(LUA_ENV) valgrind -q --error-exitcode=1 --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite \
	  $(LUA) bench/valgrind_run.lua
	@echo "valgrind: clean"

bench: $(MODULE)
	$(LUA_ENV) $(LUA) bench/bench.lua

# Lint the rockspec, build it with `luarocks make` into a throw-away tree, and load the module from there.
# Debian keeps cblas.h under the multiarch include dir, which luarocks does not search by itself.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
ROCK_TREE ?= $(BUILD)/rocktree
check-rockspec:
	luarocks lint rockspec/nasflat-scm-1.rockspec
	rm -rf $(ROCK_TREE)
	luarocks --lua-version $(LUA_VERSION) --tree $(ROCK_TREE) make --deps-mode none rockspec/nasflat-scm-1.rockspec \
	  OPENBLAS_INCDIR=/usr/include/$(MULTIARCH) OPENBLAS_LIBDIR=/usr/lib/$(MULTIARCH)
	cd /tmp && LUA_PATH="$(abspath $(ROCK_TREE))/share/lua/$(LUA_VERSION)/?.lua;$(abspath $(ROCK_TREE))/share/lua/$(LUA_VERSION)/?/init.lua;;" \
	  LUA_CPATH="$(abspath $(ROCK_TREE))/lib/lua/$(LUA_VERSION)/?.so;;" \
	  $(LUA) -e 'local nf = require "nasflat"; assert(nf.space.get("nb201"):size() == 15625); print("rockspec build: ok")'


LUA_LMOD = $(DESTDIR)$(PREFIX)/share/lua/$(LUA_VERSION)
LUA_CMOD = $(DESTDIR)$(PREFIX)/lib/lua/$(LUA_VERSION)
install: $(MODULE)
	install -d $(LUA_CMOD)/nasflat $(LUA_LMOD)/nasflat $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(MODULE) $(LUA_CMOD)/nasflat/core.so
	install -m 644 lua/nasflat/*.lua $(LUA_LMOD)/nasflat/
	sed '1s|.*|#!/usr/bin/env $(LUA)|' bin/nasflat > $(DESTDIR)$(PREFIX)/bin/nasflat
	chmod 755 $(DESTDIR)$(PREFIX)/bin/nasflat

uninstall:
	rm -rf $(LUA_CMOD)/nasflat $(LUA_LMOD)/nasflat $(DESTDIR)$(PREFIX)/bin/nasflat

clean:
	rm -rf build build-asan
