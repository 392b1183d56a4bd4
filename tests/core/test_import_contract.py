"""The import contract (issue 20): the core imports no training stack.

The contract is ``[tool.importlinter]`` in pyproject.toml: the core packages (tools, rewards,
rollout, config, plugins, testing, ...) may not import verl, torch, Ray, Hydra, OmegaConf,
transformers, tokenizers, matplotlib, pandas, TransferQueue or vLLM, nor the verl adapter
(``rlfactory_plugins.verl``) that does, directly or through other modules, and function-level
(lazy) imports count. Three checks:

- ``lint-imports`` passes on the tree;
- it fails, naming each one, on a copy of the package with core modules importing verl, torch
  (lazily) and Hydra added, so the first check can fail;
- every module of ``rlfactory_plugins`` is either covered by the contract or deliberately
  outside it (the adapter, the app layer, a commented exception), so a new module cannot slip
  past it unnoticed.

The runtime side (the core imports and a pack's suite passes with the stack refused at import
time) is tests/core/test_light_core.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "rlfactory_plugins"
PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: outside the contract on purpose: the verl adapter, the app layer (imports the adapter inside
#: its commands), the pack template (its own distribution once `rlfactory new-pack` renders it)
OUTSIDE_PREFIXES = ("rlfactory_plugins.verl", "rlfactory_plugins.cli", "rlfactory_plugins.pack_template")
#: top-level modules outside the contract, with the reason
OUTSIDE_MODULES = {
    "rlfactory_plugins.verl_plugin": "deprecated shim of rlfactory_plugins.verl.entry (old verl.plugins value)",
}

pytestmark = pytest.mark.timeout(300)


def contracts() -> list[dict]:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]


def lint(root: Path) -> subprocess.CompletedProcess:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]', or make setup)")
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"}
    # the config is root/pyproject.toml, found in the working directory
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=240
    )


def module_names(package: Path) -> list[str]:
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_core_keeps_the_import_contract():
    proc = lint(REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert re.search(rf"Contracts: {len(contracts())} kept, 0 broken", out), out[-3000:]


def test_the_contract_forbids_the_whole_training_stack():
    wanted = {"verl", "torch", "ray", "hydra", "omegaconf", "transformers", "tokenizers", "matplotlib",
              "pandas", "transfer_queue", "vllm", "rlfactory_plugins.verl"}  # fmt: skip
    for contract in contracts():
        assert contract["type"] == "forbidden"
        missing = wanted - set(contract["forbidden_modules"])
        assert not missing, (contract["name"], missing)
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert config["include_external_packages"] is True


def test_every_module_is_covered_or_deliberately_outside():
    (core,) = [c for c in contracts() if c["id"] == "light-core"]
    sources = tuple(core["source_modules"])
    uncovered = [
        name
        for name in module_names(PACKAGE)
        if name != "rlfactory_plugins"  # the root: its own contract (as_packages = false)
        and not any(name == s or name.startswith(s + ".") for s in sources)
        and not any(name == p or name.startswith(p + ".") for p in OUTSIDE_PREFIXES)
        and name not in OUTSIDE_MODULES
    ]
    assert not uncovered, (
        f"{uncovered}: add each to source_modules of the light-core contract in pyproject.toml "
        "(or, if it needs the training stack, move it into rlfactory_plugins/verl/)"
    )
    missing = [s for s in sources if s not in module_names(PACKAGE)]
    assert not missing, f"source_modules that no longer exist: {missing}"


def test_a_core_module_importing_verl_torch_or_hydra_breaks_the_contract(tmp_path):
    """The same contract on a copy of the package with forbidden imports added must fail, naming them."""
    copy = tmp_path / "rlfactory_plugins"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    probes = {
        "rlfactory_plugins.tools._probe_verl": ("tools/_probe_verl.py", "import verl\n", "verl"),
        # a lazy import, inside a function, counts too
        "rlfactory_plugins.rollout.parsers._probe_torch": (
            "rollout/parsers/_probe_torch.py", "def load():\n    import torch\n\n    return torch\n", "torch"),
        "rlfactory_plugins.config._probe_hydra": ("config/_probe_hydra.py", "from hydra import compose\n", "hydra"),
    }  # fmt: skip
    for relpath, source, _ in probes.values():
        (copy / relpath).write_text(source)
    with (copy / "__init__.py").open("a") as f:  # the root has a contract of its own
        f.write("\n\ndef _probe():\n    import omegaconf\n\n    return omegaconf\n")
    if (copy / "verl").is_dir():  # reaching the adapter counts, even without naming verl
        (copy / "rewards" / "_probe_adapter.py").write_text("import rlfactory_plugins.verl\n")
        probes["rlfactory_plugins.rewards._probe_adapter"] = ("", "", "rlfactory_plugins.verl")

    proc = lint(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-6000:]
    assert re.search(r"Contracts: 0 kept, 2 broken", out), out[-3000:]
    for module, (_, _, forbidden) in probes.items():
        assert re.search(rf"{re.escape(module)} -> {re.escape(forbidden)}\b", out), (module, out[-6000:])
    assert re.search(r"rlfactory_plugins -> omegaconf\b", out), out[-6000:]
    # and nothing else broke it: the copy minus the probes is the tree the first test passes
    forbidden_names = "|".join(re.escape(m) for m in contracts()[0]["forbidden_modules"])
    final_hops = re.findall(rf"^\W*([\w.]+) -> (?:{forbidden_names})(?:\.[\w.]+)? \(l\.\d+\)", out, re.M)
    assert final_hops and set(final_hops) <= {*probes, "rlfactory_plugins"}, (set(final_hops), out[-6000:])
