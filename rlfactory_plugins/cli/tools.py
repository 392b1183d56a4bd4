"""``rlfactory tools``: list tools and call one outside training."""

from __future__ import annotations

import asyncio
import json

import typer

from rlfactory_plugins.errors import RLFactoryError

app = typer.Typer(help="List tools and run one outside training.", no_args_is_help=True)


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json")) -> None:
    """List registered tools with their JSON schemas."""
    from rlfactory_plugins.plugins import get_registry

    registry = get_registry()
    schemas = [r.obj.spec.openai_schema() for r in registry.tools.values()]
    if as_json:
        typer.echo(json.dumps(schemas, indent=2))
        return
    for name, entry in sorted(registry.tools.items()):
        typer.echo(f"{name}  ({entry.plugin.distribution or entry.plugin.name})")
        typer.echo(f"    {entry.obj.spec.description.splitlines()[0] if entry.obj.spec.description else ''}")
        typer.echo(f"    parameters: {json.dumps(entry.obj.spec.parameters)}")


@app.command("call")
def call_cmd(
    name: str = typer.Argument(..., help="tool name"),
    args: str = typer.Argument("{}", help="JSON object of arguments"),
    options: str = typer.Option("{}", "--options", help="JSON object of tool options (as in rlfactory.tools[].options)"),
) -> None:
    """Run one tool and print the observation the model would see."""
    from rlfactory_plugins.plugins import get_registry
    from rlfactory_plugins.tools.base import render_output

    try:
        arguments = json.loads(args)
        if not isinstance(arguments, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as e:
        typer.secho(f"bad arguments {args!r}: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    try:
        t = get_registry().tool(name).configure(json.loads(options))
        out = asyncio.run(t.acall(arguments))
    except RLFactoryError as e:
        typer.secho(str(e), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(render_output(out))
