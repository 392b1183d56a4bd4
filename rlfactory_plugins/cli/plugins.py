"""``rlfactory plugins``: what is installed and what each plugin registers."""

from __future__ import annotations

import json

import typer

from rlfactory_plugins.plugins import load_plugins


def plugins_cmd(
    as_json: bool = typer.Option(False, "--json", help="print the machine-readable document"),
) -> None:
    """List installed plugins: distribution, version, and the tools/rewards/parsers/environments each registers.

    Exits 1 when a plugin failed to load (with --json too), like ``rlfactory doctor``.
    """
    _, registry = load_plugins(quiet=True)  # the failures are printed below, once
    doc = registry.summary()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(1 if doc["errors"] else 0)
    for row in doc["plugins"]:
        dist = f"{row['distribution']} {row['version'] or ''}".strip() if row["distribution"] else "(local)"
        typer.echo(f"{row['name']}  [{dist}]")
        for kind in ("tools", "rewards", "parsers", "environments"):
            if row.get(kind):
                typer.echo(f"    {kind}: {', '.join(row[kind])}")
    for err in doc["errors"]:
        typer.secho(f"ERROR {err['plugin']}: {err['error']}", fg=typer.colors.RED, err=True)
    if doc["errors"]:
        raise typer.Exit(1)
