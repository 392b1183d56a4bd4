"""The CLI items of issue 18: exit codes, plugin failures said once, plain --help."""

from __future__ import annotations

import logging

import pytest
import typer
from typer.testing import CliRunner

from rlfactory_plugins import plugins
from rlfactory_plugins.cli import app

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()
BROKEN_ERROR = "no_such_module_rlf_xyz"


@pytest.fixture
def broken_site(tmp_path):
    """A folder for PYTHONPATH holding an installed pack whose module does not import (no pip needed)."""
    info = tmp_path / "rlfactory_tool_broken-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rlfactory-tool-broken\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[rlfactory]\nbroken = {BROKEN_ERROR}\n")
    return str(tmp_path)


def test_plugins_exits_1_on_a_failed_plugin_with_json_too(venv_run, broken_site):
    env = {"PYTHONPATH": broken_site}
    as_json = venv_run("rlfactory", "plugins", "--json", env=env)
    assert as_json.returncode == 1 and BROKEN_ERROR in as_json.stdout
    text = venv_run("rlfactory", "plugins", env=env)
    assert text.returncode == 1
    assert text.stderr.count("ModuleNotFoundError") == 1, text.stderr  # not the load warning and the ERROR line both


def test_tools_call_says_a_plugin_failure_once(venv_run, broken_site):
    proc = venv_run("rlfactory", "tools", "call", "broken_tool", "{}", env={"PYTHONPATH": broken_site})
    assert proc.returncode == 1 and "unknown tool 'broken_tool'" in proc.stderr
    assert proc.stderr.count("ModuleNotFoundError") == 1, proc.stderr
    assert "Plugins that failed to load, which may be why: broken " in proc.stderr  # named, not repeated


def test_a_reload_does_not_repeat_the_warning(monkeypatch, caplog):
    def broken(pm, registry):
        registry.add_error("broken", f"import failed: {BROKEN_ERROR}")

    monkeypatch.setattr(plugins, "_load_entry_points", broken)
    monkeypatch.setattr(plugins, "_cache", None)
    monkeypatch.setattr(plugins, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="rlfactory"):
        plugins.load_plugins(fresh=True)
        plugins.load_plugins(fresh=True)
        plugins.load_plugins(fresh=True, quiet=True)
    assert [r.getMessage().count(BROKEN_ERROR) for r in caplog.records] == [1]
    monkeypatch.setattr(plugins, "_cache", None)


def _commands(group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):  # a group (typer vendors its own click classes)
            yield from _commands(command, (*prefix, name))


def test_help_never_shows_a_type_after_a_flag():
    root = typer.main.get_command(app)
    paths = [(), *_commands(root)]
    assert ("tools", "call") in paths and ("plugins",) in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, (path, result.output)
        assert "--help" in result.output
    assert "--mcp <str>" in runner.invoke(app, ["tools", "call", "--help"]).output  # options with a value keep it
