"""A pack built in a temp dir and pip-installed shows up without any change to the core."""

from __future__ import annotations

import json
import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.0.1"

[project.entry-points.rlfactory]
{ep} = "{module}"
"""


def make_pack(root, dist: str, module: str, ep: str, body: str):
    pack = root / dist
    pack.mkdir()
    (pack / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, module=module, ep=ep))
    (pack / f"{module}.py").write_text(textwrap.dedent(body))
    return pack


@pytest.fixture
def installed_pack(tmp_path, venv_run):
    installed: list[str] = []

    def install(dist: str, module: str, ep: str, body: str):
        pack = make_pack(tmp_path, dist, module, ep, body)
        venv_run("python", "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(pack), check=True)
        installed.append(dist)

    yield install
    if installed:
        venv_run("python", "-m", "pip", "uninstall", "-y", "-q", *installed, check=True)


def test_installed_pack_lists_its_tool_with_distribution(installed_pack, venv_run):
    installed_pack(
        "rlfactory-tool-throwaway",
        "rlfactory_tool_throwaway",
        "throwaway",
        """
        from rlfactory_plugins import hookimpl

        def reverse(text: str) -> str:
            "Reverse a string."
            return text[::-1]

        @hookimpl
        def register_tools(register):
            register(reverse)
        """,
    )
    doc = json.loads(venv_run("rlfactory", "plugins", "--json").stdout)
    assert set(doc) == {"plugins", "errors"}
    (row,) = [p for p in doc["plugins"] if p["name"] == "throwaway"]
    assert row == {
        "name": "throwaway",
        "distribution": "rlfactory-tool-throwaway",
        "version": "0.0.1",
        "tools": ["reverse"],
        "rewards": [],
        "parsers": [],
    }
    out = venv_run("rlfactory", "tools", "call", "reverse", '{"text": "abc"}', check=True)
    assert out.stdout.strip() == "cba"


def test_misspelt_hookimpl_is_reported_by_plugin_and_hook(installed_pack, venv_run):
    installed_pack(
        "rlfactory-tool-typo",
        "rlfactory_tool_typo",
        "typo",
        """
        from rlfactory_plugins import hookimpl

        @hookimpl
        def register_tool(register):
            pass
        """,
    )
    proc = venv_run("rlfactory", "plugins")
    assert proc.returncode != 0
    assert "typo" in proc.stderr and "register_tool" in proc.stderr
    doc = json.loads(venv_run("rlfactory", "plugins", "--json").stdout)
    (err,) = [e for e in doc["errors"] if e["plugin"] == "typo"]
    assert "register_tool" in err["error"]


def test_pack_that_fails_to_import_is_reported(installed_pack, venv_run):
    installed_pack("rlfactory-tool-broken", "rlfactory_tool_broken", "broken", "import no_such_module_xyz\n")
    doc = json.loads(venv_run("rlfactory", "plugins", "--json").stdout)
    (err,) = [e for e in doc["errors"] if e["plugin"] == "broken"]
    assert "no_such_module_xyz" in err["error"]
