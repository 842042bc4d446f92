# dhcpfo: two commands do everything on a fresh Debian machine.
#   make run    two emulated boards, built and flashed, fail over and back (no hardware, no root);
#               DEMO_SECONDS=N stops it N s after the start, once that story is over (default: Ctrl-C)
#   make test   installs what tests need, then runs every test
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
N ?= 2000

.PHONY: run test venv npm sysdeps fwcheck test-py test-mp bench soak fuzz faults clean

.venv/.stamp: requirements.txt pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
	.venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

venv: .venv/.stamp

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

npm: node_modules/.package-lock.json

sysdeps:
	@sh tools/sysdeps.sh

fwcheck: venv
	$(PY) -m dhcpfo_host.fwcheck firmware

test-py: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-mp: npm
	node tests/mp/mprun.mjs firmware tests/core

test: sysdeps venv npm
	$(MAKE) --no-print-directory fwcheck
	$(MAKE) --no-print-directory test-py
	$(MAKE) --no-print-directory test-mp

run: venv
	$(PY) -m dhcpfo_host.cli demo $(if $(DEMO_SECONDS),--seconds $(DEMO_SECONDS))

bench: sysdeps venv
	mkdir -p build
	$(PY) bench/run.py --json build/bench.json --markdown

soak: venv
	PYTHONPATH=firmware:tests $(PY) -m sim.soak $(N)

# Fuzz every target (tests/fuzz/targets.py) for FUZZ_SECONDS each (capped at
# 3600): atheris when installed, else random mutation. Failing inputs land in
# tests/fuzz/regressions/<target>/, which plain pytest replays.
FUZZ_SECONDS ?= 60
fuzz: venv
	FUZZ_SECONDS=$(FUZZ_SECONDS) PYTHONPATH=firmware:host_tools:tests $(PY) -m fuzz.run $(FUZZ_TARGETS)

# The real fault suite (tests/faults/, docs/faults.md): a dhcpfo pair in
# network namespaces under load, each fault on a fresh pair; root only (a
# skip with the reason otherwise). Prints the table, writes it to FAULTS_JSON.
FAULTS_JSON ?= build/faults.json
faults: sysdeps venv
	PYTHONPATH=firmware:host_tools:tests $(PY) -m faults.run --json $(FAULTS_JSON) $(FAULTS)

clean:
	rm -rf .venv node_modules build .pytest_cache
