"""``rlfactory new-pack NAME``: copy the pack template and rename it to a new, installable pack.

The template (``rlfactory_plugins/pack_template``, also ``examples/tool-pack-template``)
is a working pack whose only placeholder is the token ``template``: distribution
``rlfactory-tool-template``, module ``rlfactory_tool_template``, tool ``template``.
"""

from __future__ import annotations

import ast
import keyword
import re
import shutil
from functools import cache
from pathlib import Path

import typer

from rlfactory_plugins.errors import RLFactoryError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "pack_template"
TOKEN = "template"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".pytest_cache")


@cache
def template_names() -> frozenset[str]:
    """Every name the template's Python code binds or reads, but the placeholder.

    The pack's tool is a function named NAME in that code, so a NAME from this set would
    shadow an import, a builtin or a hook the code uses (``tool``, ``range``, ``register_tools``).
    """
    names: set[str] = set()
    for source in TEMPLATE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).split(".")[0])
    return frozenset(names - {TOKEN})


def check_name(name: str) -> None:
    """Refuse a NAME whose pack would not import or would misbehave, saying which names work."""
    if not NAME_RE.match(name):
        raise RLFactoryError(
            f"pack name {name!r} must be a Python identifier in lower case (letters, digits, '_'), e.g. 'weather'"
        )
    if keyword.iskeyword(name):
        raise RLFactoryError(
            f"pack name {name!r} is a Python keyword, so the generated tool function would not parse; "
            f"use another lower-case identifier, e.g. {name + '_tool'!r}"
        )
    if name in template_names():
        raise RLFactoryError(
            f"pack name {name!r} is a name the template's own code uses, so the generated tool would shadow it; "
            f"use another lower-case identifier, e.g. {name + '_tool'!r} "
            f"(the template uses: {', '.join(sorted(template_names()))})"
        )


def render_pack(name: str, dest: Path) -> list[Path]:
    """Copy the template to ``dest`` with ``template`` renamed to ``name``; return the files written."""
    check_name(name)
    if dest.exists():
        raise RLFactoryError(f"{dest} already exists; choose another --dest or remove it")
    shutil.copytree(TEMPLATE_DIR, dest, ignore=SKIP)
    written = []
    for path in sorted(dest.rglob("*"), key=lambda p: len(p.parts), reverse=True):  # deepest first
        if path.is_file():
            path.write_text(path.read_text().replace(TOKEN, name))
        if TOKEN in path.name:
            path = path.rename(path.with_name(path.name.replace(TOKEN, name)))
        if path.is_file():
            written.append(path)
    return sorted(written)


def new_pack_cmd(
    name: str = typer.Argument(..., help="the tool's name, e.g. 'weather' -> rlfactory-tool-weather"),
    dest: Path = typer.Option(None, "--dest", help="folder to create (default: ./rlfactory-tool-NAME)"),
) -> None:
    """Create a new tool pack from the template: pyproject, module, README, conformance tests."""
    dest = dest or Path.cwd() / f"rlfactory-tool-{name}"
    try:
        files = render_pack(name, dest)
    except RLFactoryError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {dest} ({len(files)} files)")
    typer.echo(f"next: cd {dest} && pip install -e '.[test]' && pytest   (see docs/publishing-a-tool-pack.md)")
