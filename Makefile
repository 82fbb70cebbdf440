# pinhole - build, run and test. See README.md.
#   make            build build/pinhole
#   make run        install build deps, build, run on ./pinhole.conf
#   make test       install test deps, build, run every test
#   make unit       unit tests only (ASan+UBSan build)
#   make lab        network-namespace lab only (root)
#   make fuzz       run the SIP parser fuzzer for FUZZ_SECONDS (default 600)
#   make bench      micro-benchmarks

CC      ?= cc
BUILD   ?= build
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow
CPPFLAGS += -std=gnu11 -Isrc -D_GNU_SOURCE
LIBS    := -lsqlite3 -linih -ljansson -lmicrohttpd -lcrypto -lpthread

SRC     := $(shell find src -name '*.c' | sort)
LIBSRC  := $(filter-out src/main.c,$(SRC))
OBJ     := $(SRC:%.c=$(BUILD)/obj/%.o)
LIBOBJ  := $(LIBSRC:%.c=$(BUILD)/obj/%.o)

# Unit tests are built with sanitizers, from their own objects.
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer
SANOBJ  := $(LIBSRC:%.c=$(BUILD)/san/%.o)
UNITSRC := $(sort $(wildcard tests/unit/test_*.c))
UNITBIN := $(UNITSRC:tests/unit/%.c=$(BUILD)/tests/%)

FUZZSRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZBIN := $(FUZZSRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZOBJ := $(LIBSRC:%.c=$(BUILD)/fuzzobj/%.o)
FUZZ_SECONDS ?= 600

BENCHSRC := $(sort $(wildcard bench/bench_*.c))
BENCHBIN := $(BENCHSRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all run test unit lab web fuzz fuzz-smoke bench deps deps-test clean check-config

all: $(BUILD)/pinhole

$(BUILD)/pinhole: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SANFLAGS) $(WARN) -MMD -MP -c -o $@ $<

# The daemon with ASan+UBSan, for the daemon-level tests.
$(BUILD)/pinhole-san: $(BUILD)/san/src/main.o $(BUILD)/libpinhole-san.a
	$(CC) $(SANFLAGS) -o $@ $^ $(LIBS)

# Tests link an archive so each pulls in only the modules it uses.
$(BUILD)/libpinhole-san.a: $(SANOBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpinhole-san.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(SANFLAGS) $(WARN) -o $@ $< $(BUILD)/libpinhole-san.a $(LIBS) -lcmocka

$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(BUILD)/libpinhole-fuzz.a: $(FUZZOBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libpinhole-fuzz.a
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(BUILD)/libpinhole-fuzz.a $(LIBS)

$(BUILD)/libpinhole.a: $(LIBOBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bench/%: bench/%.c $(BUILD)/libpinhole.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -O2 -g $(WARN) -o $@ $< $(BUILD)/libpinhole.a $(LIBS)

# The admin web page is compiled into the binary (page.c is committed so a
# plain build needs no generator; it is regenerated when a page file changes).
ADMIN_PAGE := $(sort $(wildcard src/admin/page/*))
src/admin/page.c: src/admin/embed.sh $(ADMIN_PAGE)
	src/admin/embed.sh $@ $(ADMIN_PAGE)

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

run: deps all
	@test -f pinhole.conf || { echo "pinhole.conf missing"; exit 1; }
	$(BUILD)/pinhole -c pinhole.conf run

# The whole suite: unit tests, parser fuzz smoke, the NAT lab. Ends with
# "N passed, M failed".
test: deps-test all $(BUILD)/pinhole-san $(UNITBIN) $(FUZZBIN)
	@scripts/run-tests.sh all

unit: all $(BUILD)/pinhole-san $(UNITBIN)
	@scripts/run-tests.sh unit

lab: all
	@scripts/run-tests.sh lab

web: all
	@scripts/run-tests.sh web

fuzz-smoke: $(FUZZBIN)
	@scripts/run-tests.sh fuzz

fuzz: $(FUZZBIN)
	@for f in $(FUZZBIN); do mkdir -p $(BUILD)/corpus/$$(basename $$f); \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/corpus/$$(basename $$f) \
	     tests/fuzz/corpus; done

bench: $(BENCHBIN)
	@for b in $(BENCHBIN); do $$b; done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
