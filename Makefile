# Headroom: `make run` measures and reports the default scenario; `make test` runs the test suite.
# Both install what is missing first (Debian, as root or through sudo).

SWIFT     ?= swift
SCENARIO  ?= Scenarios/default.yaml
APT_PKGS  := libopenblas-dev libsqlite3-dev gnuplot-nox pkg-config
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN       := .build/release/headroom

.PHONY: all deps build run test bench clean

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

bench: build
	$(BIN) probe
	$(BIN) finetune --model tiny --method lora --rank 8 --alpha 16 --targets q,v --precision f32 --seq-len 256 --batch 4 --threads 2 --steps 5
	$(BIN) finetune --model tiny --method lora --rank 8 --alpha 16 --targets q,v --precision f32 --seq-len 256 --batch 4 --threads 2 --steps 5 --checkpointing

clean:
	rm -rf .build .headroom
