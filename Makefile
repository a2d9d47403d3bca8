# evfleet: real-firmware EV charger fleets. `make run` and `make test` set everything up first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COUNT ?= 10

.PHONY: setup run test fw zygote bench soak chaos clean help

help:
	@echo "make run      10 chargers against the embedded CSMS, normal-charging scenario (COUNT=N)"
	@echo "make test     the test suite (long runs excluded)"
	@echo "make bench    scale benchmark (evfleet bench)"
	@echo "make chaos    power/network cuts and CSMS restarts, then every record checked (CHAOS_N, CHAOS_S)"
	@echo "make soak     a long run; memory per instance must stay flat (SOAK_S)"
	@echo "make setup    create .venv, install, build the launcher and the firmware image"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m harness.launcher.build || echo "C launcher not built: falling back to the Python zygote"
	$(BIN)/python -m harness.fwbuild
	touch $(STAMP)

zygote: setup
	$(BIN)/python -m harness.launcher.build

fw: setup
	$(BIN)/python -m harness.fwbuild

run: setup
	$(BIN)/evfleet run scripts/normal_charging.py --count $(COUNT)

test: setup
	$(BIN)/python -m pytest -q

BENCH_SIZES ?= 100,1000,5000

bench: setup
	$(BIN)/python -m tools.bench.heap_floor build/heap_floor.json
	$(BIN)/evfleet bench --sizes $(BENCH_SIZES) --json build/bench.json

SOAK_S ?= 1800
CHAOS_N ?= 50
CHAOS_S ?= 300

soak: setup
	$(BIN)/evfleet soak --count 50 --duration $(SOAK_S) --json build/soak.json

chaos: setup
	$(BIN)/evfleet chaos --count $(CHAOS_N) --duration $(CHAOS_S) --json build/chaos.json

clean:
	rm -rf build run .pytest_cache
