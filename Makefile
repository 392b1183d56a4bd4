# The two commands of the README:
#   make demo   set up .venv and train a tiny search agent end to end (CPU is fine)
#   make test   set up .venv and run the whole test suite
# Setup is idempotent: it reinstalls only when a pyproject changes.
# Others: make bench, make compat (the verl compatibility matrix, docs/install.md),
#         make lint-imports (the light-core import contract).
# `pip install rlfactory` alone is the light core (what a pack needs); .venv gets the training
# stack through the extras: [verl] (verl, torch, Ray, Hydra...), [report], [test], and [vllm] on GPU.

VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
PACKS   := $(sort $(dir $(wildcard tool_plugins/*/pyproject.toml reward_plugins/*/pyproject.toml)))
# a pack's requirements-nodeps.txt: packages installed without their dependencies (bfcl-eval pins
# old numpy and model SDKs that would downgrade the venv; the pack lists what it really imports)
NODEPS  := $(sort $(wildcard tool_plugins/*/requirements-nodeps.txt reward_plugins/*/requirements-nodeps.txt))
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
STAMP   := $(VENV)/.rlfactory-installed
PYTEST_ARGS ?=
EXTRAS  := verl,report,test
NOX_ARGS ?=
VERL    ?=

.PHONY: setup demo test bench compat lint-imports clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt $(addsuffix pyproject.toml,$(PACKS)) $(NODEPS)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(HAS_GPU),1)
	$(PIP) install -q -e '.[$(EXTRAS),vllm]' $(addprefix -e ,$(PACKS))
else
	@echo "no CUDA device: installing the CPU build of torch first (torch==2.13.0)"
	$(PIP) install -q -c constraints-cpu.txt torch==2.13.0
	$(PIP) install -q -c constraints-cpu.txt -e '.[$(EXTRAS)]' $(addprefix -e ,$(PACKS))
endif
	$(if $(NODEPS),$(PIP) install -q --no-deps $(addprefix -r ,$(NODEPS)))
	@touch $@

test: setup
	@status=0; \
	echo "== tests/ (one folder per rlfactory_plugins subpackage, plus core, e2e, bench: CONTRIBUTING.md)"; \
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

# The verl compatibility matrix (noxfile.py): fast suite + CPU GRPO e2e against each supported
# verl, one venv each outside the tree. `make compat VERL=0.9.1` runs one version;
# NOX_ARGS=-r reuses the venvs.
compat: setup
	@$(PY) -m nox --version >/dev/null 2>&1 || $(PIP) install -q -c constraints-cpu.txt 'nox>=2024.4'
	$(PY) -m nox $(NOX_ARGS) -s $(if $(VERL),"compat(verl='$(VERL)')",compat)

lint-imports: setup
	$(VENV)/bin/lint-imports --no-cache

clean-venv:
	rm -rf $(VENV)
