# dhcpfo: two commands do everything on a fresh Debian machine.
#   make run    a working failover pair on this machine (no hardware, no root)
#   make test   installs what tests need, then runs every test
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
N ?= 2000

.PHONY: run test venv npm sysdeps fwcheck test-py test-mp bench soak fuzz clean

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

clean:
	rm -rf .venv node_modules build .pytest_cache
