"""Drawing the report of :mod:`rlfactory_plugins.cli.report`: ``report.png`` (matplotlib, imported
here only when drawn) and ``report.html``, and the plain-text transcript of a sample trajectory.

A sample's tool images are listed in its transcript by reference (size, format, bytes, SHA-256);
the page also shows each one from the run's ``images/`` folder (a relative link, so the page and
the run directory move together), or says that its bytes are missing."""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rlfactory_plugins.cli.report import (
    RESPONSE_LENGTH_KEYS,
    TOTAL_KEYS,
    RunData,
    SampleImage,
    SampleTrajectory,
    summarize,
)
from rlfactory_plugins.tools.base import ImageRef


def render_trajectory(sample: SampleTrajectory, width: int = 100) -> str:
    """Plain-text transcript: question, each turn's text, its tool calls and results, answer."""
    t = sample.trajectory
    question = next((m.get("content", "") for m in reversed(t.prompt) if m.get("role") == "user"), "")
    reward = "n/a" if sample.reward is None else f"{sample.reward:.2f}"
    lines = [f"step {sample.step}  reward {reward}  stop {t.stop_reason}  gold {t.ground_truth}", f"Q: {question}"]
    for turn in t.turns:
        text = re.sub(r"<tool_call>.*?</tool_call>", "", turn.assistant_text, flags=re.DOTALL).strip()
        if text:
            lines.append(f"[{turn.index}] assistant: {text}")
        for call in turn.tool_calls:
            if call.parse_error is not None:
                lines.append(f"[{turn.index}] call (unparsed): {call.raw.strip()}  -> {call.parse_error}")
                continue
            lines.append(f"[{turn.index}] call {call.name}({json.dumps(call.arguments, ensure_ascii=False)})")
            if call.result is not None:
                status = call.result.status.value
                lines.append(f"    -> {status}: {call.result.render().strip()}")
                lines += [f"    {image_label(ref)}" for ref in call.result.images]
    lines.append(f"answer: {t.final_answer}")
    return "\n".join(_wrap(line, width) for line in lines)


def image_label(ref: ImageRef) -> str:
    """One image's reference: ``image 80x60 png, 1234 bytes, sha256 0123456789ab``."""
    return f"image {ref.width}x{ref.height} {ref.format}, {ref.nbytes} bytes, sha256 {ref.sha256[:12]}"


def _image_html(image: SampleImage, page_dir: Path) -> str:
    caption = html.escape(f"turn {image.turn} {image.call}: {image_label(image.ref)}")
    if image.path is None:
        return f"<figure class='missing'><figcaption>{caption}<br><b>{html.escape(image.problem or '')}</b>" \
               "</figcaption></figure>"
    href = html.escape(quote(Path(os.path.relpath(image.path.resolve(), page_dir.resolve())).as_posix()))
    return f"<figure><a href='{href}'><img src='{href}' alt='{caption}'></a><figcaption>{caption}</figcaption></figure>"


def _sample_html(run: RunData, sample: SampleTrajectory, page_dir: Path) -> str:
    images = "".join(_image_html(image, page_dir) for image in run.sample_images(sample))
    text = f"<pre>{html.escape(render_trajectory(sample))}</pre>"
    return text + f"<div class='images'>{images}</div>" if images else text


def _wrap(line: str, width: int) -> str:
    line = " ".join(line.split()) if len(line) > width else line
    return "\n    ".join(line[i : i + width] for i in range(0, max(len(line), 1), width))


def _plot(ax: Any, steps: list[int], values: list[float], label: str, **kw: Any) -> bool:
    if all(math.isnan(v) for v in values):
        return False
    ax.plot(steps, values, marker="o", markersize=3, label=label, **kw)
    return True


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def render_png(run: RunData, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = run.steps
    fig = plt.figure(figsize=(14, 12), dpi=80)
    grid = fig.add_gridspec(3, 3, height_ratios=[1.0, 1.0, 1.35])
    ax_reward = fig.add_subplot(grid[0, :2])
    total_key = run.first_key(TOTAL_KEYS)
    if total_key:
        _plot(ax_reward, steps, run.series(total_key), f"total ({total_key})", linewidth=2.5, color="black")
    for key in run.reward_parts():
        _plot(ax_reward, steps, run.series(key), key)
    ax_reward.set(title="reward per step", xlabel="step", ylabel="mean over trajectories")
    _legend(ax_reward)

    ax_sum = fig.add_subplot(grid[0, 2])
    ax_sum.axis("off")
    s = summarize(run)
    text = [f"run: {run.run_dir.name}", f"steps: {s['steps']}"]
    text += [f"reward first 5: {s['reward_first']:.3f}", f"reward last 5:  {s['reward_last']:.3f}"]
    text += [f"gain: {s['reward_gain']:+.3f}", f"tool calls/traj (last 5): {s['tool_calls_last']:.2f}"]
    text += [f"tool success (last 5): {s['tool_success_last']:.2f}"]
    ax_sum.text(0.0, 1.0, "\n".join(text), va="top", family="monospace", fontsize=11)

    ax_tools = fig.add_subplot(grid[1, 0])
    _plot(ax_tools, steps, run.series("traj/tool_calls"), "calls / trajectory")
    _plot(ax_tools, steps, run.series("traj/tool_errors"), "errors / trajectory", color="tab:red")
    ax_tools.set(title="tool calls", xlabel="step")
    _legend(ax_tools)

    ax_rate = fig.add_subplot(grid[1, 1])
    _plot(ax_rate, steps, run.series("traj/tool_success_rate"), "tool success rate")
    _plot(ax_rate, steps, run.series("traj/answered"), "answered", color="tab:green")
    ax_rate.set(title="tool success / answered", xlabel="step", ylim=(-0.05, 1.05))
    _legend(ax_rate)

    ax_len = fig.add_subplot(grid[1, 2])
    length_key = run.first_key(RESPONSE_LENGTH_KEYS)
    if length_key:
        _plot(ax_len, steps, run.series(length_key), length_key)
    if run.first_key(("num_turns/mean",)):
        ax_turns = ax_len.twinx()
        _plot(ax_turns, steps, run.series("num_turns/mean"), "turns", color="tab:purple")
        ax_turns.set_ylabel("turns (purple)")
    ax_len.set(title="response length (tokens)", xlabel="step")

    for i, sample in enumerate(run.samples[:3]):
        ax = fig.add_subplot(grid[2, i])
        ax.axis("off")
        ax.set_title(f"sample {i + 1}", fontsize=10, loc="left")
        body = render_trajectory(sample, width=46)
        body = "\n".join(body.splitlines()[:22])
        ax.text(0.0, 1.0, body, va="top", family="monospace", fontsize=7.5, wrap=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def render_html(run: RunData, png: Path, path: Path) -> Path:
    s = summarize(run)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" if isinstance(v, float) else
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in s.items()
    )
    samples = "".join(_sample_html(run, sample, path.parent) for sample in run.samples)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>rlfactory report: {html.escape(run.run_dir.name)}"
        "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto}pre{background:#f4f4f4;"
        "padding:8px;white-space:pre-wrap}td{padding:2px 12px}figure{display:inline-block;margin:4px 12px 12px 0;"
        "vertical-align:top}figure img{max-width:320px;max-height:320px;border:1px solid #ccc}"
        "figcaption{font-size:small}.missing figcaption{color:#a00}</style></head><body>"
        f"<h1>rlfactory report: {html.escape(run.run_dir.name)}</h1><img src='{html.escape(png.name)}' width='100%'>"
        f"<h2>summary</h2><table>{rows}</table><h2>sample trajectories</h2>{samples}</body></html>\n"
    )
    path.write_text(page)
    return path
