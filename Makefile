# c10k: the README's commands. `make test` needs only the Rust toolchain.
CARGO ?= cargo
RELEASE_BIN := target/release/c10k
HOST := $(shell hostname -s 2>/dev/null || echo host)
DATE := $(shell date +%Y-%m-%d)
OUT ?= results/$(DATE)-$(HOST)
CMP ?= results/compare-wrk-$(DATE)-$(HOST)
C1M_OUT ?= results/c1m-$(DATE)-$(HOST)
# The newest committed C1M folder, joined to the report (T3's rows past one process's descriptors, T5).
C1M := $(shell ls -d results/c1m-*/ 2>/dev/null | sed 's:/$$::' | sort | tail -n 1)
C1M_ARG := $(if $(C1M),--c1m $(C1M))
BEYOND_OUT ?= results/beyond-$(DATE)-$(HOST)
# The newest committed beyond-profile folder, joined to the report (chat room, heartbeat).
BEYOND := $(shell ls -d results/beyond-*/ 2>/dev/null | sed 's:/$$::' | sort | tail -n 1)
BEYOND_ARG := $(if $(BEYOND),--beyond $(BEYOND))
JOINS = $(C1M_ARG) $(BEYOND_ARG)
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

.PHONY: all build release test lint fmt bench bench-quick bench-full bench-c1m bench-beyond report interop compare-wrk clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --workspace

## The test command: unit tests, the shared scenario table over every model, load generator and bench tests.
test:
	$(CARGO) test --workspace

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## The main job: every model through the standard matrix (~20 min on 2 cores), then REPORT.md.
bench: release
	$(RELEASE_BIN) bench --profile standard --out $(OUT) --report REPORT.md $(JOINS)

## The same in about two minutes (results/quick-*, not committed).
bench-quick: release
	$(RELEASE_BIN) bench --profile quick --out results/quick-$(DATE)-$(HOST)

bench-full: release
	$(RELEASE_BIN) bench --profile full --out $(OUT)-full --report REPORT.md $(JOINS)

## Beyond the documents (~13 min): chat rooms of 1,000 and 3,000 members, heartbeat with and without
## an idle timeout at 10,000 connections; then REPORT.md from the newest standard folder and this one.
bench-beyond: release
	$(RELEASE_BIN) bench --profile beyond --out $(BEYOND_OUT)
	$(RELEASE_BIN) report $$(ls -d results/20*/ | sed 's:/$$::' | sort | tail -n 1) $(C1M_ARG) --beyond $(BEYOND_OUT) --report REPORT.md

## C1M: 100,000 / 300,000 / 1,000,000 connections and T5 in network namespaces (~11 min, at most 15; root for
## cgroups and namespaces; needs ~8 GiB free), then REPORT.md from the newest standard folder and this one.
bench-c1m: release
	$(RELEASE_BIN) c1m --out $(C1M_OUT)
	$(RELEASE_BIN) report $$(ls -d results/20*/ | sed 's:/$$::' | sort | tail -n 1) --c1m $(C1M_OUT) $(BEYOND_ARG) --report REPORT.md

## Regenerate plots and REPORT.md from the newest committed results folder.
report: release
	$(RELEASE_BIN) report $$(ls -d results/20*/ | sed 's:/$$::' | sort | tail -n 1) --report REPORT.md $(JOINS)

## Real outside clients (wrk, h2load, ab) against every model; needs the Debian packages.
interop: release
	scripts/interop.sh $(RELEASE_BIN)

## c10k load against wrk (both driving nginx), with a whole client core each and with half a core each
## (CPU cgroup quota: nginx is then not the limit), the reactor against nginx (both under wrk),
## and 30,000 connections over two load processes; outputs saved in $(CMP) (needs wrk and nginx-light).
compare-wrk: release
	mkdir -p $(CMP)
	C10K_BIN=$(RELEASE_BIN) REPS=5 OUT_DIR=$(CMP)/raw-load scripts/compare-wrk.sh | tee $(CMP)/load-vs-wrk.txt
	C10K_BIN=$(RELEASE_BIN) REPS=5 CLIENT_QUOTA=0.5 OUT_DIR=$(CMP)/raw-capped scripts/compare-wrk.sh | tee $(CMP)/load-vs-wrk-capped.txt
	{ echo "# a whole client core each ($(CMP)/load-vs-wrk.txt)"; OUT_DIR=$(CMP)/raw-load scripts/compare-wrk.sh summary; \
	  echo; echo "# half a client core each ($(CMP)/load-vs-wrk-capped.txt)"; \
	  CLIENT_QUOTA=0.5 OUT_DIR=$(CMP)/raw-capped scripts/compare-wrk.sh summary; } > $(CMP)/summary.txt
	C10K_BIN=$(RELEASE_BIN) PROFILE_CONNS=100 OUT_DIR=$(CMP)/raw-profile scripts/compare-wrk.sh profile | tee $(CMP)/profile.txt
	C10K_BIN=$(RELEASE_BIN) REPS=5 OUT_DIR=$(CMP)/raw-reactor scripts/compare-wrk.sh reactor | tee $(CMP)/reactor-vs-nginx.txt
	C10K_BIN=$(RELEASE_BIN) OUT_DIR=$(CMP)/raw-many scripts/compare-wrk.sh many | tee $(CMP)/many.txt

clean:
	$(CARGO) clean
