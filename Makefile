# Headroom: `make run` measures and reports the default scenario; `make test` runs the test suite.
# Both install what is missing first (Debian, as root or through sudo).

SWIFT     ?= swift
SCENARIO  ?= Scenarios/default.yaml
APT_PKGS  := libopenblas-dev libsqlite3-dev gnuplot-nox pkg-config
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN       := .build/release/headroom

.PHONY: all deps build run test bench fuzz test-sanitize clean

all: build

# Installs the Debian packages that are missing (apt-get update once, only when something is).
deps:
	@missing=""; \
	for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing$$missing" >&2; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "make: Swift 6 is required (swift not on PATH)" >&2; exit 1; }

build: deps
	$(SWIFT) build -c release --product headroom

# The main job: probe, measure, store, report on the default scenario.
run: build
	$(BIN) run $(SCENARIO)

test: deps
	$(SWIFT) test

# The inference benchmark of issue 3 on `small`, 2 threads: decode at batch 1 in every precision and prefill
# of 512 tokens (one run each), batch 16 against batch 1 in q4_0; then every figure against its bar.
BENCH_DIR := .headroom/bench
BENCH_RUN := $(BIN) bench infer --model small --threads 2 --repetitions 3 --json
bench: build
	@mkdir -p $(BENCH_DIR)
	$(BIN) probe --threads 2
	for p in f32 f16 q8_0 q4_0; do \
	  $(BENCH_RUN) --precision $$p --prompt-tokens 512 --generate-tokens 32 --batch 1 > $(BENCH_DIR)/small-$$p-p512-b1.json || exit 1; \
	done
	for b in 1 16; do \
	  $(BENCH_RUN) --precision q4_0 --prompt-tokens 16 --generate-tokens 32 --batch $$b > $(BENCH_DIR)/small-q4_0-p16-b$$b.json || exit 1; \
	done
	@# Every benchmark runs; the target fails at the end if a bar was missed or a run failed.
	@status=0; \
	$(BIN) bench summary $(BENCH_DIR)/small-*.json || status=1; \
	for args in "--precision f32" "--precision f32 --checkpointing" "--precision q4_0"; do \
	  echo "$(BIN) bench finetune --model tiny --method lora --rank 8 --alpha 16 --targets q,v --seq-len 256 --batch 4 --threads 2 --steps 5 $$args"; \
	  $(BIN) bench finetune --model tiny --method lora --rank 8 --alpha 16 --targets q,v --seq-len 256 --batch 4 --threads 2 --steps 5 $$args || status=1; \
	done; \
	exit $$status

# Fuzzes each reader of user files (FUZZ_TARGETS: all, or some of gguf scenario catalog-models catalog-hardware
# catalog-prices) for FUZZ_SECONDS each, by seeded mutation of Tests/Fuzz/corpus/TARGET and the built-in seeds.
# A crash, a hang or an error that does not name the file is saved under .build/fuzz/findings/TARGET with the
# command that reproduces it, and fails the target once every reader has had its time.
FUZZ_SECONDS ?= 30
FUZZ_SEED    ?= 1
FUZZ_TARGETS ?= all
fuzz: deps
	$(SWIFT) build -c release --product headroom-fuzz
	.build/release/headroom-fuzz $(FUZZ_TARGETS) --seconds $(FUZZ_SECONDS) --seed $(FUZZ_SEED)

# The C kernels' tests, the GGUF reader's and the fuzz corpus replay, once under AddressSanitizer (Swift and C)
# and UndefinedBehaviorSanitizer (C only: swiftc has no UBSan on Linux, and Swift traps on overflow and bounds
# itself), built in .build-sanitize. Any report fails the run. Leak checking is off: the Swift runtime and XCTest
# keep allocations until exit, which LeakSanitizer reports by the hundred.
SANITIZE := --scratch-path .build-sanitize --sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
test-sanitize: deps
	$(SWIFT) build --build-tests $(SANITIZE)
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build $(SANITIZE) \
	  --filter 'HeadroomKernelsTests|HeadroomEngineTests.GGUF|HeadroomFuzzTests'

clean:
	rm -rf .build .headroom
