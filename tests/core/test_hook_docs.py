"""docs/publishing-a-tool-pack.md documents every hook with its exact signature, and every hook has a docstring."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from rlfactory_plugins import hookspecs
from rlfactory_plugins.plugins import new_plugin_manager

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "publishing-a-tool-pack.md"
HOOKS = sorted(name for name in dir(new_plugin_manager().hook) if not name.startswith("_"))


def _documented() -> dict[str, str]:
    """``### `name(args)` `` headings of the guide's hook reference: name -> signature."""
    reference = GUIDE.read_text().split("## Hook reference", 1)[1]
    return {m.group(1): m.group(0).strip("#` ") for m in re.finditer(r"^### `(\w+)\(([^)]*)\)`", reference, re.M)}


def test_there_are_hooks_to_check():
    assert {"register_tools", "register_rewards", "on_trajectory_finished"} <= set(HOOKS)


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_docstring(name):
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc and len(doc) > 40, f"hook {name!r} in hookspecs.py needs a docstring (it is the reference)"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented_with_its_signature(name):
    args = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
    documented = _documented()
    assert name in documented, f"add a '### `{name}({args})`' section to {GUIDE.name}'s hook reference"
    assert documented[name] == f"{name}({args})", f"{GUIDE.name} documents {documented[name]!r}; the spec is {name}({args})"


def test_guide_documents_no_unknown_hook():
    stale = sorted(set(_documented()) - set(HOOKS))
    assert not stale, f"{GUIDE.name} documents hooks that hookspecs.py does not define: {stale}"


@pytest.mark.parametrize("name", [h for h in HOOKS if h.startswith("register_")])
def test_register_hooks_take_a_typed_register_the_guide_names(name):
    annotation = inspect.signature(getattr(hookspecs, name)).parameters["register"].annotation
    protocol = getattr(hookspecs, str(annotation), None)  # a string: hookspecs uses postponed annotations
    assert isinstance(protocol, type) and "__call__" in vars(protocol), (
        f"{name}'s register must be annotated with its protocol in hookspecs.py, got {annotation!r}"
    )
    assert str(annotation) in GUIDE.read_text(), f"{GUIDE.name} should name {annotation} (the type of {name}'s register)"
