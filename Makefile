# quipu - offline-first signed field-record sync.
# Plain GNU make with pkg-config.  Targets: all check asan valgrind fuzz bench
# demo install deb deps clean.

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
BUILD   ?= build
BIN     ?= bin
SAN     ?=
OPT     ?= -O2 -g

# msgpack-c is "msgpack" on Debian 12 and "msgpack-c" on newer systems.
MSGPACK_PC := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS    := lmdb libsodium $(MSGPACK_PC) libuv jansson libzstd geos proj
TESTPKGS := check

# When pkg-config cannot find a dependency, install them first.
DEPS_OK := $(shell pkg-config --exists $(PKGS) $(TESTPKGS) 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter deps clean,$(MAKECMDGOALS)),)
$(info quipu: dependencies missing, running packaging/install-deps.sh)
DEPS_RUN := $(shell ./packaging/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_RUN),0)
$(error packaging/install-deps.sh failed; run it as root)
endif
MSGPACK_PC := $(shell pkg-config --exists msgpack-c 2>/dev/null && echo msgpack-c || echo msgpack)
PKGS    := lmdb libsodium $(MSGPACK_PC) libuv jansson libzstd geos proj
endif
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS  ?= $(OPT)
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
           -Iproto -Idaemon -Iclient $(PKG_CFLAGS) $(SAN)
LDFLAGS += $(SAN)

PROTO_SRC  := $(wildcard proto/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
CLIENT_SRC := $(wildcard client/*.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC  := $(wildcard tests/bench/*.c)
TOOL_SRC   := $(wildcard tests/tools/*.c)

PROTO_OBJ  := $(PROTO_SRC:%.c=$(BUILD)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)

LIBQUIPU   := $(BUILD)/libquipu.a
LIBQUIPUD  := $(BUILD)/libquipud.a
FUZZ_BINS  := $(FUZZ_SRC:tests/fuzz/%.c=$(BIN)/%)
BENCH_BINS := $(BENCH_SRC:tests/bench/%.c=$(BIN)/%)
TOOL_BINS  := $(TOOL_SRC:tests/tools/%.c=$(BIN)/%)

.SECONDARY:

.PHONY: all check unit integration fuzz-replay asan valgrind fuzz bench demo install deb deps clean

all: $(BIN)/quipud $(BIN)/quipu

deps:
	./packaging/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CHECK_CFLAGS) -MMD -MP -c $< -o $@

$(LIBQUIPU): $(PROTO_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LIBQUIPUD): $(DAEMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/quipud: $(BUILD)/daemon/main.o $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/quipu: $(CLIENT_OBJ) $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/check_unit: $(UNIT_OBJ) $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS)

# Fuzz targets build with gcc as replay drivers (tests/fuzz/replay.c feeds
# every corpus file to LLVMFuzzerTestOneInput); `make fuzz` builds them with
# clang's libFuzzer instead.
$(BIN)/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

# Test tools (a hostile sync peer) used by the integration tests.
$(BIN)/qp_%: $(BUILD)/tests/tools/qp_%.o $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BIN)/bench_%: $(BUILD)/tests/bench/bench_%.o $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

unit: $(BIN)/check_unit
	$(BIN)/check_unit

fuzz-replay: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f#$(BIN)/fuzz_}; \
	  $$f tests/fuzz/corpus/$$n; done

integration: all $(TOOL_BINS)
	@tests/integration/run.sh $(BIN)

check: all $(BIN)/check_unit $(FUZZ_BINS) $(TOOL_BINS)
	$(BIN)/check_unit
	@$(MAKE) --no-print-directory fuzz-replay
	@tests/integration/run.sh $(BIN)

asan:
	$(MAKE) BUILD=build-asan BIN=bin-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" check

valgrind: $(BIN)/check_unit
	CK_FORK=no valgrind --error-exitcode=1 --leak-check=full $(BIN)/check_unit

# libFuzzer builds (clang): bin-fuzz/lf_fuzz_X, run e.g.
#   bin-fuzz/lf_fuzz_delta -max_total_time=60 tests/fuzz/corpus/delta
# (needs clang and libclang-rt-14-dev: apt-get install clang libclang-rt-14-dev)
fuzz:
	$(MAKE) CC=clang BUILD=build-fuzz BIN=bin-fuzz OPT="-O1 -g" \
	  SAN="-fsanitize=fuzzer-no-link,address,undefined" fuzz-libfuzzer

FUZZ_LF_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BIN)/lf_%)
fuzz-libfuzzer: $(FUZZ_LF_BINS)
	@for f in $(FUZZ_LF_BINS); do echo "built $$f"; done

$(BIN)/lf_fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(LIBQUIPUD) $(LIBQUIPU)
	@mkdir -p $(BIN)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

bench: all $(BENCH_BINS)
	@tests/bench/run.sh $(BIN)

demo: all
	@tests/demo.sh $(BIN)

# Binaries, manual pages, the systemd unit (pointing at this PREFIX) and
# the example configuration.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/lib/systemd/system \
	  $(DESTDIR)$(PREFIX)/share/doc/quipu
	install -m 0755 $(BIN)/quipud $(BIN)/quipu $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 packaging/man/quipu.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 packaging/man/quipud.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' packaging/quipud.service \
	  >$(DESTDIR)$(PREFIX)/lib/systemd/system/quipud.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/quipud.service
	install -m 0644 packaging/node.json.example README.md \
	  $(DESTDIR)$(PREFIX)/share/doc/quipu/

# A Debian package of this tree in dist/ (needs debhelper).
deb:
	packaging/build-deb.sh

clean:
	rm -rf build build-asan build-fuzz bin bin-asan bin-fuzz demo-data dist

-include $(wildcard $(BUILD)/*/*.d $(BUILD)/*/*/*.d)
