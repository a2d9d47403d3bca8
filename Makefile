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

bench: setup
	$(BIN)/evfleet bench --sizes 100,1000,5000 --json build/bench.json

soak: setup
	$(BIN)/python -m pytest -q -m slow -k soak

chaos: setup
	$(BIN)/python -m pytest -q -m slow -k chaos

clean:
	rm -rf build run .pytest_cache
