# The two commands of the README:
#   make demo   set up .venv and train a tiny search agent end to end (CPU is fine)
#   make test   set up .venv and run the whole test suite
# Setup is idempotent: it reinstalls only when a pyproject changes.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
PACKS   := $(sort $(dir $(wildcard tool_plugins/*/pyproject.toml reward_plugins/*/pyproject.toml)))
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
STAMP   := $(VENV)/.rlfactory-installed
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt $(addsuffix pyproject.toml,$(PACKS))
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(HAS_GPU),1)
	$(PIP) install -q -e '.[test,vllm]' $(addprefix -e ,$(PACKS))
else
	@echo "no CUDA device: installing the CPU build of torch first (torch==2.13.0)"
	$(PIP) install -q -c constraints-cpu.txt torch==2.13.0
	$(PIP) install -q -c constraints-cpu.txt -e '.[test]' $(addprefix -e ,$(PACKS))
endif
	@touch $@

test: setup
	@status=0; \
	echo "== tests/ (core, rollout, tools, rewards, e2e)"; \
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests || status=1; \
	for pack in $(PACKS); do \
	  echo "== $$pack"; \
	  (cd $$pack && $(abspath $(PY)) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests) || status=1; \
	done; \
	exit $$status

demo: setup
	$(PY) examples/quickstart/run_demo.py

bench: setup
	$(PY) benchmarks/rollout.py

clean-venv:
	rm -rf $(VENV)
