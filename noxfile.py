"""The verl compatibility matrix: ``nox -s compat`` (``make compat``); see docs/install.md.

One session per supported verl version. Each builds its own venv the way ``make setup``
builds ``.venv`` on a machine without CUDA: the CPU build of torch first (``torch==2.13.0``;
any other torch request downloads multi-GB CUDA builds), then ``rlfactory[verl,report,test]`` with
``verl==VERSION`` and every pack, all under ``constraints-cpu.txt``. It then runs the fast
suite (``tests/ -m "not e2e"``) and the CPU GRPO end-to-end test (verl's own
``main_ppo`` for two steps).

    nox -s compat                       # every version (one ~2 GB venv each, ~15 min each on 2 cores)
    nox -s "compat(verl='0.9.1')"       # one version
    nox -r -s "compat(verl='0.9.0')"    # reuse that venv (pip then installs only what changed)
    nox -s compat -- -k oversample      # extra arguments go to both pytest runs

The venvs live outside the tree (``~/.cache/rlfactory/nox``, or ``$RLFACTORY_NOX_ENVDIR``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

#: keep in step with the ``verl`` extra's range in pyproject.toml (tests/core/test_light_core.py checks it)
VERL_VERSIONS = ["0.9.0", "0.9.1"]
CPU_TORCH = "torch==2.13.0"

PACKS = sorted(
    str(p.parent.relative_to(ROOT))
    for pattern in ("tool_plugins/*/pyproject.toml", "reward_plugins/*/pyproject.toml")
    for p in ROOT.glob(pattern)
)

#: installed with --no-deps after the packs (see the Makefile's NODEPS)
NODEPS = sorted(
    str(p.relative_to(ROOT))
    for pattern in ("tool_plugins/*/requirements-nodeps.txt", "reward_plugins/*/requirements-nodeps.txt")
    for p in ROOT.glob(pattern)
)

nox.options.sessions = ["compat"]
nox.options.default_venv_backend = "venv"
nox.options.envdir = os.environ.get("RLFACTORY_NOX_ENVDIR", str(Path.home() / ".cache" / "rlfactory" / "nox"))


@nox.session
@nox.parametrize("verl", VERL_VERSIONS)
def compat(session: nox.Session, verl: str) -> None:
    """Fast suite + CPU GRPO e2e against one verl version."""
    constraints = ("-c", str(ROOT / "constraints-cpu.txt"))
    session.install("--upgrade", "pip")
    session.install(*constraints, CPU_TORCH)
    session.install(*constraints, "-e", f"{ROOT}[verl,report,test]", f"verl=={verl}", *(f"-e{ROOT / p}" for p in PACKS))
    for path in NODEPS:
        session.install("--no-deps", "-r", str(ROOT / path))
    session.run("python", "-c", "import verl, torch; print('verl', verl.__version__, 'torch', torch.__version__)")
    pytest = ("python", "-m", "pytest", "-q", "-p", "no:cacheprovider")
    session.run(*pytest, "-m", "not e2e", "tests", *session.posargs)
    session.run(*pytest, "tests/e2e/test_cpu_grpo.py", *session.posargs)
