"""``pip install`` of the pack alone makes ``search`` appear and work from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def installed(tmp_path_factory, venv_run):
    """The pack pip-installed (a built wheel, not the editable checkout) into its own prefix.

    It goes first on PYTHONPATH, so the distribution and module the commands see are
    this copy; the shared venv is left untouched.
    """
    target = tmp_path_factory.mktemp("site")
    _can_build_offline()
    proc = venv_run("python", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(PACK), timeout=240)
    assert proc.returncode == 0, proc.stderr
    return {"PYTHONPATH": str(target), "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg"))}, target


def _can_build_offline() -> None:
    """``--no-build-isolation`` (no download) builds with this venv's setuptools, which needs ``bdist_wheel``:
    built into setuptools >= 70.1, else the ``wheel`` package (a fresh ``python -m venv`` has neither)."""
    import importlib.util

    from packaging.version import Version
    import setuptools

    if Version(setuptools.__version__) < Version("70.1") and importlib.util.find_spec("wheel") is None:
        pytest.skip(f"setuptools {setuptools.__version__} without the wheel package cannot build the pack "
                    "offline; pip install wheel (or setuptools>=70.1)")


def test_plugins_lists_search_from_its_distribution(installed, venv_run):
    env, target = installed
    proc = venv_run("python", "-c", "import rlfactory_tool_search as m; print(m.__file__)", env=env, cwd=target)
    assert proc.stdout.strip().startswith(str(target)), proc.stdout + proc.stderr
    doc = json.loads(venv_run("rlfactory", "plugins", "--json", env=env).stdout)
    (row,) = [p for p in doc["plugins"] if p["name"] == "search"]
    assert row["distribution"] == "rlfactory-tool-search" and row["tools"] == ["search"]
    assert not [e for e in doc["errors"] if e["plugin"] == "search"]


def test_tools_call_search_returns_ranked_shipped_passages(installed, venv_run):
    env, target = installed
    question = "In which year was the city of Rogan founded?"
    proc = venv_run("rlfactory", "tools", "call", "search", json.dumps({"query": question}), env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and [line[:6] for line in lines] == ["Doc 1(", "Doc 2(", "Doc 3("]
    assert lines[0].startswith('Doc 1(Title: "Rogan") Rogan is a city') and "founded in 1865" in lines[0]
    # the index was built in the cache the environment points at
    assert list((Path(env["XDG_CACHE_HOME"]) / "rlfactory" / "bm25").glob("corpus-*/offsets.npy"))
