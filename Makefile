# Thin wrappers around CMake. `make demo` and `make test` install missing
# Debian packages first (apt-get, as root or through sudo).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# UQ_WERROR=1 in the environment turns warnings into errors (CI sets it).
ifneq ($(UQ_WERROR),)
CMAKE_ARGS += -DUQ_WERROR=ON
endif
UQ ?= $(BUILD)/tools/uquant
DEMO_OUT ?= $(BUILD)/demo

.PHONY: all deps build demo test test-asan fuzz bench install clean

all: build

deps:
	@scripts/install-deps.sh

build:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The main job on the bundled model.
# The main job on the bundled model: quantize to 4 bits, show what was done,
# measure it against the original, and let it tell a story.
demo: deps build
	@mkdir -p $(DEMO_OUT)
	$(UQ) quantize models/stories260K -o $(DEMO_OUT)/stories260K-4bit --bits 4 --group-size 32 --force
	$(UQ) info $(DEMO_OUT)/stories260K-4bit
	$(UQ) eval $(DEMO_OUT)/stories260K-4bit --reference models/stories260K --data data/demo-story.txt --ctx 128
	$(UQ) run $(DEMO_OUT)/stories260K-4bit --prompt "Once upon a time" -n 80

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# All tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DUQ_SANITIZE=ON -DUQ_BUILD_BENCH=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -LE slow

# libFuzzer targets (clang); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/install-deps.sh --fuzz
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DUQ_FUZZ=ON -DUQ_BUILD_TESTS=OFF -DUQ_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzzers
	scripts/run-fuzz.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

bench: deps build
	@echo "benchmarks are in $(BUILD)/bench/ (see docs/benchmarks.md)"

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
