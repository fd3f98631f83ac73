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

LUA_ENV = LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(abspath $(BUILD))/lua/?.so;;" \
  NASFLAT_BUILD="$(BUILD)"

.PHONY: lint all test test-c test-lua test-asan bench install uninstall clean valgrind check-rockspec \
        fuzz fuzz-build fuzz-coverage test-slurm

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
	$(LUA_ENV) $(SAN_ENV) $(LUA) $(BUSTED) --cpath="$(BUILD)/lua/?.so" --output=utfTerminal spec

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


# Fuzzing: libFuzzer harnesses (fuzz/fuzz_*.c) for the parsers of untrusted input (latency and table CSVs,
# model files, arch strings of both spaces), built with clang, AddressSanitizer and UBSan over a sanitised
# copy of the core. `make fuzz` runs each for FUZZ_SECONDS (`make fuzz FUZZ_SECONDS=600`: 10 minutes each)
# from its seed corpus fuzz/corpus/<name>/; inputs it finds are kept in $(BUILD)/fuzz/corpus/<name>/, and a
# crash stops make with its input in $(BUILD)/fuzz/<name>-crash-*. `make fuzz-coverage`: source coverage of
# the parser files on those corpora (clang -fprofile-instr-generate, llvm-profdata/llvm-cov).
#   FUZZ_CC=clang  FUZZ_SECONDS=30  FUZZ_FLAGS=  (extra libFuzzer flags)  LLVM_PROFDATA=llvm-profdata-14  LLVM_COV=llvm-cov-14
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 30
FUZZ_FLAGS    ?=
LLVM_PROFDATA ?= $(shell command -v llvm-profdata || command -v llvm-profdata-14)
LLVM_COV      ?= $(shell command -v llvm-cov || command -v llvm-cov-14)
FUZZ_DIR  = $(BUILD)/fuzz
FUZZ_SRC  = $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN  = $(FUZZ_SRC:fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJ  = $(CORE_SRC:csrc/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_CFL  = -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer $(WARN) -Icsrc
FUZZ_SAN  = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_COV_FILES_fuzz_latency   = csrc/nf_csv.c csrc/nf_data.c
FUZZ_COV_FILES_fuzz_table     = csrc/nf_csv.c csrc/nf_data.c
FUZZ_COV_FILES_fuzz_modelfile = csrc/nf_modelfile.c
FUZZ_COV_FILES_fuzz_arch      = csrc/nf_space.c csrc/nf_nb201.c csrc/nf_fbnet.c

$(FUZZ_DIR)/obj $(FUZZ_DIR)/cov:
	mkdir -p $@

$(FUZZ_DIR)/obj/%.o: csrc/%.c $(wildcard csrc/*.h) | $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFL) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_CFL) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_OBJ) -o $@ $(BLAS_LIBS) -lm

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	@set -e; for h in $(FUZZ_BIN); do n=$${h##*/}; mkdir -p $(FUZZ_DIR)/corpus/$$n; \
	  echo "== $$n: $(FUZZ_SECONDS) s"; \
	  $$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/$$n- $(FUZZ_FLAGS) $(FUZZ_DIR)/corpus/$$n fuzz/corpus/$$n 2>$(FUZZ_DIR)/$$n.log \
	    || { tail -n 60 $(FUZZ_DIR)/$$n.log; echo "fuzz: $$n failed (log $(FUZZ_DIR)/$$n.log)"; exit 1; }; \
	  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)|^#[0-9]+ *DONE' $(FUZZ_DIR)/$$n.log || true; done

fuzz-coverage: | $(FUZZ_DIR)/cov
	@set -e; for src in $(FUZZ_SRC); do n=$$(basename $$src .c); b=$(FUZZ_DIR)/cov/$$n; \
	  $(FUZZ_CC) $(FUZZ_CFL) -w -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping $$src $(CORE_SRC) -o $$b \
	    $(BLAS_LIBS) -lm; \
	  mkdir -p $(FUZZ_DIR)/corpus/$$n; rm -f $$b.profraw; \
	  LLVM_PROFILE_FILE=$$b.profraw $$b -runs=0 $(FUZZ_DIR)/corpus/$$n fuzz/corpus/$$n 2>/dev/null; \
	  $(LLVM_PROFDATA) merge -sparse $$b.profraw -o $$b.profdata; \
	  echo "== $$n ($$(ls $(FUZZ_DIR)/corpus/$$n fuzz/corpus/$$n | wc -l) inputs)"; \
	  case $$n in fuzz_latency) f="$(FUZZ_COV_FILES_fuzz_latency)";; fuzz_table) f="$(FUZZ_COV_FILES_fuzz_table)";; \
	    fuzz_modelfile) f="$(FUZZ_COV_FILES_fuzz_modelfile)";; *) f="$(FUZZ_COV_FILES_fuzz_arch)";; esac; \
	  $(LLVM_COV) report $$b -instr-profile=$$b.profdata $$f; done


# A real Slurm on this machine (root; installs Debian's slurm-wlm and munge when missing): munged, slurmctld and
# slurmd with a minimal configuration in a temp dir, a small sweep as job arrays, merged and compared with one
# `nasflat run`, the daemons stopped by their pids. Exit 77 and "PENDING: <reason>" when they cannot start here.
test-slurm: $(MODULE)
	BUILD=$(BUILD) bash spec/slurm/run.sh

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
