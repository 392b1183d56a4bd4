"""The light core works without the training stack (issue 20).

A pack author installs ``rlfactory`` alone (no verl, torch, Ray, Hydra, transformers,
matplotlib): ``pip install ./ ./tool_plugins/rlfactory-tool-search`` must give a core that
imports, a pack whose tests (conformance suite included) pass, and a CLI that lists it.
The real install needs a package index, so it was done by hand (docs/install.md); here the
same is checked in this venv, where the stack *is* installed, by refusing it at import time:
a ``sitecustomize`` on ``PYTHONPATH`` puts a ``sys.meta_path`` finder first that raises
``ModuleNotFoundError`` for every forbidden package, in the test's subprocess and every
process it starts. The static side (lazy imports included) is tests/core/test_import_contract.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
SEARCH_PACK = REPO / "tool_plugins" / "rlfactory-tool-search"
VENV_BIN = Path(sys.executable).parent


def _contract_forbidden() -> tuple[str, ...]:
    (core,) = [c for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
               if c["id"] == "light-core"]  # fmt: skip
    return tuple(core["forbidden_modules"])


#: what the core must not import: the import contract's list (the training stack and the adapter)
FORBIDDEN = _contract_forbidden()
#: the same, less the adapter (rlfactory_plugins.verl): for commands that may import it lazily
EXTERNAL = tuple(m for m in FORBIDDEN if not m.startswith("rlfactory_plugins"))
#: not core: the verl adapter, the app layer (imports the adapter inside commands), the pack
#: template (its own distribution once rendered) and the commented exceptions of the contract
NOT_CORE_PREFIXES = ("rlfactory_plugins.verl", "rlfactory_plugins.cli", "rlfactory_plugins.pack_template")
EXCEPTIONS = {
    "rlfactory_plugins.verl_plugin": "deprecated shim: re-exports rlfactory_plugins.verl.entry",
    "rlfactory_plugins.rollout.worker": "deprecated shim: re-exports rlfactory_plugins.verl.worker",
    "rlfactory_plugins.rollout.oversample": "deprecated shim: re-exports rlfactory_plugins.verl.oversample",
    "rlfactory_plugins.tools.ray_actor": "optional: imports Ray when a tool sets ray_actor: true",
    "rlfactory_plugins.testing.tiny_model": "CPU e2e helper: builds a torch/transformers model",
}

SITECUSTOMIZE = '''\
"""Test-only: refuse the packages in $RLF_BLOCK as if they were not installed."""
import os
import sys

_BLOCKED = frozenset(filter(None, os.environ.get("RLF_BLOCK", "").split(",")))
_LOG = os.environ.get("RLF_BLOCK_LOG")


def _importer():
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
        frame = frame.f_back
    return frame.f_globals.get("__name__", "?") if frame is not None else "?"


class RefuseForbidden:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if not any(name == b or name.startswith(b + ".") for b in _BLOCKED):
            return None
        who = _importer()
        if _LOG:
            with open(_LOG, "a") as f:
                f.write(f"{who} -> {name}\\n")
        raise ModuleNotFoundError(f"No module named {name!r} (refused by the light-core test; imported by {who})",
                                  name=name)

    @staticmethod
    def invalidate_caches():
        pass


_already = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in _BLOCKED))
if _already:
    raise SystemExit(f"light-core block: already imported before sitecustomize: {_already}")
sys.meta_path.insert(0, RefuseForbidden)
'''


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """``blocked(cmd, block=FORBIDDEN, **kw)``: run ``cmd`` with the forbidden packages refused.

    Returns ``(CompletedProcess, attempts)``; ``attempts`` lists ``"importer -> module"`` for
    every refused import, from every process the command started.
    """
    site = tmp_path_factory.mktemp("block")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)

    def run(cmd, block=FORBIDDEN, timeout=300, cwd=REPO, env=None):
        log = site / f"attempts-{os.getpid()}-{len(list(site.iterdir()))}.log"
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
            "RLF_BLOCK": ",".join(block),
            "RLF_BLOCK_LOG": str(log),
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        }
        full_env.pop("RLFACTORY_STRICT", None)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=full_env)
        attempts = log.read_text().splitlines() if log.exists() else []
        return proc, attempts

    return run


def core_modules() -> list[str]:
    """Every core module, from the files (``pkgutil.walk_packages`` would import the skipped packages)."""
    package = REPO / "rlfactory_plugins"
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if any(name == p or name.startswith(p + ".") for p in NOT_CORE_PREFIXES) or name in EXCEPTIONS:
            continue
        names.append(name)
    return names


def _core_module_walk() -> str:
    return textwrap.dedent(
        f"""
        import importlib, json, sys
        done = []
        for name in {core_modules()!r}:
            importlib.import_module(name)
            done.append(name)
        forbidden = {list(FORBIDDEN)!r}
        loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
        print(json.dumps({{"imported": done, "forbidden_loaded": loaded}}))
        """
    )


def test_the_block_refuses_what_it_should(blocked):
    """The finder works: torch and hydra (installed in this venv) cannot be imported under it."""
    for module in ("torch", "hydra.core", "verl", "rlfactory_plugins.verl.entry"):
        proc, attempts = blocked([sys.executable, "-c", f"import {module}"])
        assert proc.returncode != 0 and "refused by the light-core test" in proc.stderr, (module, proc.stderr[-2000:])
        assert len(attempts) == 1 and attempts[0].startswith("__main__ -> "), attempts
        refused = attempts[0].split(" -> ")[1]
        assert module == refused or module.startswith(refused + "."), attempts


def test_every_core_module_imports_without_the_training_stack(blocked):
    proc, attempts = blocked([sys.executable, "-c", _core_module_walk()])
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["forbidden_loaded"] == []
    imported = set(doc["imported"])
    # the walk really covered the core (a walk that found nothing would pass trivially)
    for module in ("rlfactory_plugins", "rlfactory_plugins.tools.manager", "rlfactory_plugins.tools.mcp",
                   "rlfactory_plugins.rewards.composite", "rlfactory_plugins.rollout.episode",
                   "rlfactory_plugins.rollout.parsers.hermes", "rlfactory_plugins.rollout.tokens",
                   "rlfactory_plugins.config", "rlfactory_plugins.plugins", "rlfactory_plugins.testing.conformance"):
        assert module in imported or module == "rlfactory_plugins", (module, sorted(imported))
    assert len(imported) >= 40, sorted(imported)
    # nor did a core module *try* (an optional import in a try/except would hide it)
    assert not [a for a in attempts if a.startswith("rlfactory_plugins")], attempts


def test_plugins_cli_lists_the_packs_without_the_training_stack(blocked):
    proc, attempts = blocked([str(VENV_BIN / "rlfactory"), "plugins", "--json"], block=EXTERNAL, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    names = {p["name"] for p in doc["plugins"]}
    assert {"rlfactory_plugins.builtin.parsers", "search", "qa", "calculator"} <= names, names
    assert not doc["errors"], doc["errors"]
    assert not [a for a in attempts if a.startswith("rlfactory_plugins")], attempts


def test_verl_entry_point_is_harmless_without_verl(blocked):
    """``verl.plugins`` stays in the core distribution; loading it where verl is absent does no harm."""
    code = textwrap.dedent(
        """
        from importlib.metadata import entry_points
        (ep,) = [e for e in entry_points(group="verl.plugins") if e.name == "rlfactory"]
        ep.load()
        import rlfactory_plugins, rlfactory_plugins.tools.manager  # the core still imports afterwards
        print("ok", ep.value)
        """
    )
    proc, _ = blocked([sys.executable, "-c", code], block=EXTERNAL, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stdout + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_search_pack_suite_passes_without_the_training_stack(blocked, tmp_path):
    """The search pack's own tests, the conformance suite included, in a process with no training stack.

    pandas stays importable here: it is in the pack's ``[test]`` extra (its
    ``test_search_r1_example.py`` reads the examples' parquet files), not a core need.
    hydra-core's pytest plugin is switched off, since hydra (refused) is not in a light venv.
    """
    block = tuple(m for m in FORBIDDEN if m != "pandas")
    report = tmp_path / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hydra_pytest",
           f"--junitxml={report}", "tests"]  # fmt: skip
    proc, attempts = blocked(cmd, block=block, timeout=880, cwd=SEARCH_PACK)
    tail = proc.stdout[-6000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    cases = ElementTree.parse(report).getroot().iter("testcase")
    conformance = [c for c in cases if "test_conformance" in c.get("classname", "")]
    assert len(conformance) >= 5, tail  # the conformance suite ran, and (rc 0) passed
    assert not [a for a in attempts if a.startswith(("rlfactory_plugins", "rlfactory_tool_search"))], attempts


def test_packaging_keeps_the_core_light_and_the_verl_range_in_one_place():
    """pyproject: no training stack in the core's or a pack's dependencies; one verl range everywhere."""
    import ast

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    heavy = {"verl", "torch", "ray", "hydra-core", "omegaconf", "transformers", "tokenizers", "matplotlib",
             "pandas", "transferqueue", "vllm", "pyarrow"}  # fmt: skip

    def names(reqs):
        return {Requirement(r).name.lower() for r in reqs}

    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not names(root["dependencies"]) & heavy, names(root["dependencies"]) & heavy
    for pyproject in sorted([*REPO.glob("tool_plugins/*/pyproject.toml"), *REPO.glob("reward_plugins/*/pyproject.toml"),
                             REPO / "rlfactory_plugins" / "pack_template" / "pyproject.toml"]):  # fmt: skip
        deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
        assert "rlfactory" in names(deps) and not names(deps) & heavy, (pyproject, deps)

    (verl,) = [Requirement(r) for r in root["optional-dependencies"]["verl"] if Requirement(r).name == "verl"]
    assert verl.specifier == SpecifierSet(">=0.9.0,<0.10")
    # the adapter's own check of the installed verl (rlfactory_plugins/verl/compat.py) says the same
    tree = ast.parse((REPO / "rlfactory_plugins" / "verl" / "compat.py").read_text())
    (supported,) = [n.value.value for n in tree.body if isinstance(n, ast.Assign)
                    and any(getattr(t, "id", None) == "SUPPORTED" for t in n.targets)]  # fmt: skip
    assert SpecifierSet(supported) == verl.specifier
    # and the compatibility matrix (noxfile.py) tests versions inside it, both ends that exist
    tree = ast.parse((REPO / "noxfile.py").read_text())
    (versions,) = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", None) == "VERL_VERSIONS" for t in n.targets)]  # fmt: skip
    assert versions == ["0.9.0", "0.9.1"] and all(v in verl.specifier for v in versions)
