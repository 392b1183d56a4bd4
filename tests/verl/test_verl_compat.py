"""rlfactory_plugins.verl.compat: the supported verl range and every verl name the adapter uses."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from rlfactory_plugins.errors import RLFactoryError, VerlCompatError
from rlfactory_plugins.verl import compat

pytestmark = pytest.mark.timeout(120)


def test_every_listed_name_exists_in_the_installed_verl():
    assert compat.version_supported(), compat.installed_version()
    assert compat.missing() == []


def test_a_missing_private_name_names_the_version_the_name_and_the_range(monkeypatch):
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    monkeypatch.delattr(AgentLoopWorker, "_run_agent_loop")
    with pytest.raises(VerlCompatError) as info:
        compat.require("rlfactory_plugins.verl.worker")
    message = str(info.value)
    assert f"verl {compat.installed_version()} lacks" in message
    assert "verl.experimental.agent_loop.agent_loop.AgentLoopWorker._run_agent_loop" in message
    assert "rlfactory_plugins.verl.worker" in message and compat.SUPPORTED in message
    assert isinstance(info.value, RLFactoryError) and isinstance(info.value, ImportError)


def test_a_missing_module_level_name_and_a_moved_module_are_reported(monkeypatch):
    import verl.experimental.agent_loop.agent_loop as agent_loop

    monkeypatch.delattr(agent_loop, "_agent_loop_registry")
    assert [n.attr for n in compat.missing(compat.PRIVATE_NAMES)] == ["_agent_loop_registry"]
    moved = compat.VerlName("verl.no_such_module", "thing", "rlfactory_plugins.verl.worker", "test")
    assert compat.missing([moved]) == [moved]


@pytest.mark.parametrize(
    ("version", "supported"),
    [("0.9.0", True), ("0.9.1", True), ("0.9.2.dev0", True), ("0.9.1+cu128", True), ("0.8.5", False),
     ("0.10.0", False), ("not installed", False)],
)
def test_supported_range(version, supported):
    assert compat.version_supported(version) is supported


def test_names_belong_to_adapter_modules_and_cpu_mode_uses_the_same_range():
    from rlfactory_plugins.verl.cpu import patches

    assert patches.SUPPORTED_VERL == compat.SUPPORTED
    for name in (*compat.PRIVATE_NAMES, *compat.PUBLIC_NAMES):
        assert name.used_by.startswith("rlfactory_plugins.verl."), name
        assert importlib.util.find_spec(name.used_by) is not None, name.used_by


def test_command_line_checks_every_name():
    proc = subprocess.run(
        [sys.executable, "-m", "rlfactory_plugins.verl.compat"], capture_output=True, text=True, timeout=100
    )
    assert proc.returncode == 0, proc.stderr
    assert "in the supported range" in proc.stdout and "MISSING" not in proc.stdout
    assert "AgentLoopWorkerTQ.__ray_actor_class__" in proc.stdout


def test_the_boundary_doc_lists_every_name_compat_checks():
    from rlfactory_plugins.verl import compat_doc

    _, inside, _ = compat_doc.split(compat_doc.DOC.read_text())
    assert inside == compat_doc.tables(), "run: python -m rlfactory_plugins.verl.compat_doc --write"
