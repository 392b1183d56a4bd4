"""``rlfactory report RUN_DIR``: draw report.png + report.html from a run's metrics and trajectories."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from rlfactory_plugins.errors import RLFactoryError


def report_cmd(
    run_dir: Path = typer.Argument(..., help="a run directory, e.g. runs/demo (metrics.jsonl + trajectories/)"),
    out: Path | None = typer.Option(None, "--out", help="where to write report.png/html (default: RUN_DIR)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
    rescore: bool = typer.Option(
        True, "--rescore/--no-rescore",
        help="re-score reward parts from the trajectories with the run's rlfactory.rewards when metrics lack them",
    ),
) -> None:
    """Plot reward (total and parts), tool calls/errors, response length and sample trajectories."""
    from rlfactory_plugins.report import write_report

    try:
        paths = write_report(run_dir, out, rescore)
    except RLFactoryError as e:
        typer.secho(str(e), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in paths.summary.items()}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {paths.png} and {paths.html}")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    typer.echo(
        f"steps {summary['steps']}: reward {fmt(summary['reward_first'])} (first 5) -> "
        f"{fmt(summary['reward_last'])} (last 5); tool success (last 5) {fmt(summary['tool_success_last'])}"
    )
