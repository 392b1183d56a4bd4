"""Acceptance of the third-party kit: `rlfactory new-pack weather`, install it, its tests pass,
`rlfactory plugins` lists it. Installed with `pip --target` into a private folder put on
PYTHONPATH, so the shared environment never sees the new pack and nothing needs uninstalling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlfactory_plugins.cli.new_pack import TEMPLATE_DIR, TOKEN

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.timeout(300)
def test_new_pack_installs_tests_green_and_is_listed(tmp_path):
    _run([str(BIN / "rlfactory"), "new-pack", "weather"], cwd=tmp_path)
    pack = tmp_path / "rlfactory-tool-weather"
    files = sorted(p.relative_to(pack).as_posix() for p in pack.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "rlfactory_tool_weather/__init__.py", "tests/test_standard.py"]
    assert not [f for f in files if TOKEN in (pack / f).read_text()], "placeholder left in the new pack"

    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--target", str(site), str(pack)],
         cwd=tmp_path, timeout=240)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(site)}

    doc = json.loads(_run([str(BIN / "rlfactory"), "plugins", "--json"], cwd=tmp_path, env=env))
    row = next(r for r in doc["plugins"] if r["name"] == "weather")
    assert row["distribution"] == "rlfactory-tool-weather" and row["tools"] == ["weather"]

    out = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=pack, env=env, timeout=240)
    assert "8 passed" in out and "failed" not in out and "skipped" not in out, out


def test_new_pack_refuses_bad_names_and_existing_folders(tmp_path):
    cli = [str(BIN / "rlfactory"), "new-pack"]
    bad = subprocess.run([*cli, "Weather-App"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "must be a Python identifier in lower case" in bad.stderr
    (tmp_path / "rlfactory-tool-x").mkdir()
    exists = subprocess.run([*cli, "x"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert exists.returncode != 0 and "already exists" in exists.stderr


def test_examples_folder_is_the_packaged_template():
    """One source of truth: examples/tool-pack-template is a link to the template in the wheel."""
    example = REPO / "examples" / "tool-pack-template"
    assert example.resolve() == TEMPLATE_DIR.resolve()
    assert (TEMPLATE_DIR / "pyproject.toml").is_file() and (TEMPLATE_DIR / "tests" / "test_standard.py").is_file()


@pytest.mark.parametrize("name", ["class", "import", "tool", "register_tools", "range", "hookimpl"])
def test_new_pack_refuses_names_whose_pack_would_not_work(tmp_path, name):
    proc = subprocess.run([str(BIN / "rlfactory"), "new-pack", name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and f"pack name {name!r} is a" in proc.stderr, proc.stderr
    assert f"e.g. '{name}_tool'" in proc.stderr and not (tmp_path / f"rlfactory-tool-{name}").exists()


@pytest.mark.parametrize("name", ["class_tool", "match", "type", "print", "weather2"])
def test_generated_pack_imports_and_its_tool_runs(tmp_path, name, monkeypatch):
    """Soft keywords and builtins the template does not use are fine: the pack imports and its tool runs."""
    import asyncio
    import importlib

    from rlfactory_plugins.cli.new_pack import render_pack
    from rlfactory_plugins.testing import call_tool

    pack = tmp_path / "pack"
    render_pack(name, pack)
    for source in pack.rglob("*.py"):
        compile(source.read_text(), str(source), "exec")
    monkeypatch.syspath_prepend(str(pack))
    module = importlib.import_module(f"rlfactory_tool_{name}")
    registered = []
    module.register_tools(lambda obj, name=None: registered.append(obj))
    (tool,) = registered
    assert tool.name == name
    result = asyncio.run(call_tool(tool, {"query": "Paris", "limit": 2}))
    assert result.ok and "2. Paris" in result.output
