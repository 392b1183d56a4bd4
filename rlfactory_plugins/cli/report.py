"""``rlfactory report RUN_DIR``: the report of a training run, curves and sample trajectories as
``report.png`` + ``report.html`` (drawn by :mod:`rlfactory_plugins.cli.report_plots`).

A run directory (``runs/<name>/``) holds ``metrics.jsonl`` (verl's ``file`` logger: one
``{"step": n, "data": {...}}`` line per step; flat ``{"step": n, ...}`` lines work too,
and every other ``*metrics*.jsonl`` in the directory is merged in) and ``trajectories/``
(``*.jsonl`` dumps of :class:`~rlfactory_plugins.trajectory.Trajectory`, with ``step``).

:func:`load_run` reads both; per-step tool counts come from the trajectories, so the
tool panel does not depend on which counters the logger kept. With ``+plugins=rlfactory`` verl's
logger gets each reward part's batch mean (``reward/<part>/mean``,
:mod:`rlfactory_plugins.verl.training_metrics`) and those are used as they are; a run whose
metrics carry no ``reward/<part>`` keys (verl's own only: ``critic/score/mean``, e.g. a run
from before they were logged) has its parts re-scored from the dumped trajectories with the
run's own ``rlfactory.rewards`` (read from Hydra's saved ``.hydra/config.yaml``). :func:`write_report`
draws reward (total and each ``reward/<part>``), tool calls and tool errors, response
length, and three sample trajectories with their tool calls. matplotlib is imported only when
the report is drawn.

Images tool calls returned are dumped as references (size, format, SHA-256) with their bytes in
``trajectories/images/<sha256>.<format>`` (:mod:`rlfactory_plugins.rollout.dump`):
:meth:`RunData.sample_images` finds each sample's images there, checked against their SHA-256,
and the page shows them under the sample, or says which file is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from rlfactory_plugins.errors import RLFactoryError
from rlfactory_plugins.rewards.composite import SUMMARY_KEYS
from rlfactory_plugins.tools.base import ImageRef
from rlfactory_plugins.trajectory import Trajectory

__all__ = ["RunData", "ReportError", "SampleImage", "load_run", "summarize", "write_report"]

#: keys that hold the mean total reward of a step, most specific first
TOTAL_KEYS = ("critic/score/mean", "reward/total/mean", "reward/total")
RESPONSE_LENGTH_KEYS = ("response_length/mean", "response/length/mean")
_PART = re.compile(r"^reward/(?P<part>[^/]+)(?:/mean)?$")
_NOT_PARTS = set(SUMMARY_KEYS)
#: reward fields a trajectory dump may carry (the dump's own, not the Trajectory model's)
_TRAJ_REWARD_KEYS = ("reward", "score", "reward/total")


class ReportError(RLFactoryError):
    """A run directory without the files a report needs."""


@dataclass
class SampleTrajectory:
    step: int | None
    reward: float | None
    trajectory: Trajectory


@dataclass(frozen=True)
class SampleImage:
    """An image one of a sample's tool calls returned, and its bytes in the run's ``images/`` folder."""

    turn: int
    call: str
    ref: ImageRef
    path: Path | None
    """The file holding the bytes; None when there is none that matches the reference."""
    problem: str | None = None
    """Why :attr:`path` is None: the file is missing, or holds other bytes."""


@dataclass
class RunData:
    run_dir: Path
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    samples: list[SampleTrajectory] = field(default_factory=list)
    trajectory_dir: Path | None = None
    """Where the dumps are (``trajectories/``): its ``images/`` folders hold the images' bytes."""

    def sample_images(self, sample: SampleTrajectory) -> list[SampleImage]:
        """Every image ``sample``'s tool calls returned, in order, each with its file or why it has none."""
        refs = [(c.turn, c.name or "?", ref) for c in sample.trajectory.tool_calls
                for ref in (c.result.images if c.result is not None else ())]
        if not refs:
            return []
        root = self.trajectory_dir
        folders = [f for f in sorted(root.rglob("images")) if f.is_dir()] if root is not None and root.is_dir() else []
        return [self._image(turn, call, ref, folders) for turn, call, ref in refs]

    def _image(self, turn: int, call: str, ref: ImageRef, folders: list[Path]) -> SampleImage:
        for path in (folder / ref.filename for folder in folders):
            if path.is_file():  # content-addressed: the same name in any dump folder holds the same bytes
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                if digest == ref.sha256:
                    return SampleImage(turn, call, ref, path)
                return SampleImage(turn, call, ref, None, f"{path} holds other bytes (sha256 {digest[:12]}...)")
        where = self.trajectory_dir / "images" / ref.filename if self.trajectory_dir else Path("images", ref.filename)
        return SampleImage(turn, call, ref, None, f"bytes missing: {where} not found")

    @property
    def steps(self) -> list[int]:
        return sorted(self.metrics)

    def series(self, key: str) -> list[float]:
        """Values of ``key`` per step (NaN where a step lacks it)."""
        return [self.metrics[s].get(key, math.nan) for s in self.steps]

    def first_key(self, keys: tuple[str, ...]) -> str | None:
        present = {k for row in self.metrics.values() for k in row}
        return next((k for k in keys if k in present), None)

    def reward_parts(self) -> list[str]:
        """``reward/<part>`` keys (or their ``/mean``), one per part."""
        present = sorted({k for row in self.metrics.values() for k in row})
        parts: dict[str, str] = {}
        for key in present:
            m = _PART.match(key)
            if m and m["part"] not in _NOT_PARTS:
                parts.setdefault(m["part"], key)
        return [parts[p] for p in sorted(parts)]


# -- loading -----------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def read_metrics_file(path: Path) -> dict[int, dict[str, float]]:
    """Numeric metrics per step from one JSONL file (verl file-logger rows or flat rows)."""
    out: dict[int, dict[str, float]] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReportError(f"{path}:{n} is not JSON ({e}); metrics files hold one JSON object per line") from None
        if "step" not in row:
            raise ReportError(f"{path}:{n} has no 'step' key; expected {{'step': n, 'data': {{...}}}} or flat rows")
        data = row["data"] if isinstance(row.get("data"), dict) else row
        values = {k: v for k, v in ((k, _number(v)) for k, v in data.items() if k != "step") if v is not None}
        out.setdefault(int(row["step"]), {}).update(values)
    return out


def read_trajectories(folder: Path) -> list[tuple[dict[str, Any], Trajectory]]:
    """Every dumped trajectory under ``folder`` (``*.jsonl``), with its raw row."""
    rows = []
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                raw = json.loads(line)
                rows.append((raw, Trajectory.model_validate(raw.get("trajectory", raw))))
    return rows


def _dump_reward(raw: dict[str, Any]) -> float | None:
    for key in _TRAJ_REWARD_KEYS:
        value = raw.get(key)
        if isinstance(value, dict):
            value = value.get("total", value.get("score"))
        if _number(value) is not None:
            return float(value)
    return None


def trajectory_metrics(rows: list[tuple[dict[str, Any], Trajectory]]) -> dict[int, dict[str, float]]:
    """Per-step means over dumped trajectories: ``traj/tool_calls``, ``traj/tool_errors``, ..."""
    by_step: dict[int, list[tuple[dict[str, Any], Trajectory]]] = {}
    for raw, traj in rows:
        if traj.step is not None:
            by_step.setdefault(int(traj.step), []).append((raw, traj))
    out: dict[int, dict[str, float]] = {}
    for step, group in by_step.items():
        calls = [len(t.tool_calls) for _, t in group]
        errors = [sum(not c.ok for c in t.tool_calls) for _, t in group]
        n_calls = sum(calls)
        row = {
            "traj/count": float(len(group)),
            "traj/tool_calls": statistics.fmean(calls),
            "traj/tool_errors": statistics.fmean(errors),
            "traj/tool_success_rate": (n_calls - sum(errors)) / n_calls if n_calls else math.nan,
            "traj/answered": statistics.fmean(float(t.final_answer is not None) for _, t in group),
        }
        rewards = [r for r in (_dump_reward(raw) for raw, _ in group) if r is not None]
        if rewards:
            row["traj/reward"] = statistics.fmean(rewards)
        out[step] = row
    return out


def run_reward_entries(root: Path) -> list[Any]:
    """The ``rlfactory.rewards`` of the run, from the Hydra config it saved (empty if none found)."""
    from rlfactory_plugins.cli.config_file import load_yaml
    from rlfactory_plugins.config.section import SECTION_KEY, read_section

    for path in sorted(root.rglob(".hydra/config.yaml")):
        document = load_yaml(path, resolve=False)  # as saved: interpolations are kept as written
        section = document.get(SECTION_KEY) if isinstance(document, dict) else None
        if section is not None:
            return read_section(section).rewards
    return []


def rescored_metrics(rows: list[tuple[dict[str, Any], Trajectory]], entries: list[Any]) -> dict[int, dict[str, float]]:
    """Per-step means of every reward part (``reward/<part>/mean``) re-scored from the trajectories."""
    from rlfactory_plugins.rewards.composite import CompositeReward

    stepped = [(raw, t) for raw, t in rows if t.step is not None]
    scores = asyncio.run(CompositeReward(entries).score_many([t for _, t in stepped]))
    sums: dict[int, dict[str, list[float]]] = {}
    for (raw, traj), score in zip(stepped, scores, strict=True):
        raw.setdefault("reward", score.total)
        parts = sums.setdefault(int(traj.step or 0), {})
        for part in score.parts:
            parts.setdefault(f"reward/{part.key}/mean", []).append(part.score)
    return {step: {k: statistics.fmean(v) for k, v in parts.items()} for step, parts in sums.items()}


def _samples(rows: list[tuple[dict[str, Any], Trajectory]], k: int = 3) -> list[SampleTrajectory]:
    """``k`` trajectories to show: one from the first step, the rest from the last (best first)."""
    stepped = [(raw, t) for raw, t in rows if t.step is not None] or rows
    if not stepped:
        return []
    first_step = min((t.step or 0) for _, t in stepped)
    last_step = max((t.step or 0) for _, t in stepped)

    def sample(raw: dict[str, Any], t: Trajectory) -> SampleTrajectory:
        return SampleTrajectory(t.step, _dump_reward(raw), t)

    picked = [sample(*next((r, t) for r, t in stepped if (t.step or 0) == first_step))]
    last = [sample(r, t) for r, t in stepped if (t.step or 0) == last_step and t is not picked[0].trajectory]
    last.sort(key=lambda s: (s.reward is None, -(s.reward or 0.0), -len(s.trajectory.tool_calls)))
    seen = {_question(picked[0].trajectory)}
    for s in last:  # GRPO samples a prompt n times: show different prompts
        if len(picked) < k and _question(s.trajectory) not in seen:
            seen.add(_question(s.trajectory))
            picked.append(s)
    picked += [s for s in last if s not in picked][: k - len(picked)]  # too few distinct prompts
    return picked


def _question(t: Trajectory) -> str:
    return json.dumps(t.prompt, sort_keys=True, default=str)


def load_run(run_dir: str | Path, rescore: bool = True) -> RunData:
    """Metrics (all ``*metrics*.jsonl``) and trajectories (``trajectories/``) of a run directory;
    ``rescore``: re-score reward parts from the trajectories when the metrics lack them."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ReportError(f"run directory {str(root)!r} does not exist; pass the folder a run wrote (e.g. runs/demo)")
    run = RunData(root, trajectory_dir=root / "trajectories")
    files = sorted(root.glob("*metrics*.jsonl"))
    for path in files:
        for step, values in read_metrics_file(path).items():
            run.metrics.setdefault(step, {}).update(values)
    traj_dir = root / "trajectories"
    rows = read_trajectories(traj_dir) if traj_dir.is_dir() else []
    entries = run_reward_entries(root) if rescore and rows and not run.reward_parts() else []
    if entries:
        for step, values in rescored_metrics(rows, entries).items():
            run.metrics.setdefault(step, {}).update(values)
    for step, values in trajectory_metrics(rows).items():
        run.metrics.setdefault(step, {}).update(values)
    run.samples = _samples(rows)
    if not run.metrics:
        raise ReportError(
            f"no metrics in {root}: expected metrics.jsonl (verl's file logger, trainer.logger=[console,file] "
            f"with VERL_FILE_LOGGER_PATH={root}/metrics.jsonl) or trajectory dumps in {traj_dir}"
        )
    return run


# -- summary -----------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return statistics.fmean(finite) if finite else math.nan


def summarize(run: RunData, window: int = 5) -> dict[str, Any]:
    """Headline figures: steps, mean total reward over the first/last ``window`` steps, tool success."""
    total_key = run.first_key(TOTAL_KEYS)
    total = run.series(total_key) if total_key else []
    success = run.series("traj/tool_success_rate")
    calls = run.series("traj/tool_calls")
    out: dict[str, Any] = {
        "steps": len(run.steps),
        "reward_key": total_key,
        "reward_first": _mean(total[:window]),
        "reward_last": _mean(total[-window:]),
        "tool_calls_last": _mean(calls[-window:]),
        "tool_success_last": _mean(success[-window:]),
    }
    for key in run.reward_parts():
        values = run.series(key)
        out[f"{key}_first"], out[f"{key}_last"] = _mean(values[:window]), _mean(values[-window:])
    out["reward_gain"] = out["reward_last"] - out["reward_first"]
    return out


@dataclass
class ReportPaths:
    png: Path
    html: Path
    summary: dict[str, Any]
    images: list[SampleImage] = field(default_factory=list)
    """The sample trajectories' images (the page shows each, or says why it cannot)."""


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, rescore: bool = True) -> ReportPaths:
    """Write ``report.png`` and ``report.html`` (default: into the run directory)."""
    from rlfactory_plugins.cli.report_plots import render_html, render_png

    run = load_run(run_dir, rescore)
    out = Path(out_dir) if out_dir is not None else run.run_dir
    out.mkdir(parents=True, exist_ok=True)
    png = render_png(run, out / "report.png")
    page = render_html(run, png, out / "report.html")
    return ReportPaths(png, page, summarize(run), [i for sample in run.samples for i in run.sample_images(sample)])


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
    try:
        paths = write_report(run_dir, out, rescore)
    except RLFactoryError as e:
        typer.secho(str(e), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    summary = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in paths.summary.items()}
    missing = [i for i in paths.images if i.path is None]
    for image in missing:
        typer.secho(f"sample image (turn {image.turn}, {image.call}): {image.problem}", fg=typer.colors.YELLOW,
                    err=True)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {paths.png} and {paths.html}")
    if paths.images:
        typer.echo(f"sample trajectories: {len(paths.images)} tool image(s), {len(missing)} without their bytes")
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    typer.echo(
        f"steps {summary['steps']}: reward {fmt(summary['reward_first'])} (first 5) -> "
        f"{fmt(summary['reward_last'])} (last 5); tool success (last 5) {fmt(summary['tool_success_last'])}"
    )
