"""``rlfactory report`` on a run whose tools returned images: the dumps are written by the real path
(the image pack's tools through the rlfactory_agent loop with ``rlfactory.trajectory_dir``), the
report lists each image's reference and shows its bytes from ``trajectories/images/``, or says
which file is missing."""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("verl", reason="the dumps come from the verl agent loop: install rlfactory[verl]")
rlfactory_tool_image = pytest.importorskip("rlfactory_tool_image", reason="the pack tool_plugins/rlfactory-tool-image")
from PIL import Image  # noqa: E402 - after the pack (which needs Pillow) is known to be there

from rlfactory_plugins import plugins  # noqa: E402
from rlfactory_plugins.cli import app  # noqa: E402
from rlfactory_plugins.cli.report import load_run, write_report  # noqa: E402
from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, traj_of  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (20, 90, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _call(name: str, **arguments: object) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {json.dumps(arguments)}}}</tool_call>'


@pytest.fixture
async def image_run(tools_plugin, tokenizer, tmp_path) -> Path:
    """runs/vl: one trajectory dumped by the agent loop (a zoom and a crop), and one verl metrics row."""
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, rlfactory_tool_image, "image")
    assert not registry.errors, registry.errors
    run = tmp_path / "runs" / "vl"
    section = {"tools": ["image_zoom", "image_crop"], "parser": "hermes", "trajectory_dir": str(run / "trajectories"),
               "tool_manager": {"retries": 0}}
    script = [_call("image_zoom", x=32, y=24, factor=2), _call("image_crop", x0=0, y0=0, x1=16, y1=8),
              "<answer>blue</answer>"]
    loop = make_agent_loop(ScriptedServer(tokenizer, script), tokenizer, section, response_length=2048)
    row = {"extra_info": {"rlfactory": {"tool_kwargs": {"image": {"image": _png(64, 48)}}}}}
    traj = traj_of(await run_loop(loop, question="What colour is the picture?", **row))
    assert [c.ok for c in traj.tool_calls] == [True, True], traj.tool_calls
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "data": {"critic/score/mean": 1.0}}) + "\n")
    return run


async def test_the_report_shows_each_sample_image_from_the_runs_images_folder(image_run) -> None:
    run = load_run(image_run)
    (sample,) = run.samples
    images = run.sample_images(sample)
    assert [(i.call, i.ref.width, i.ref.height, i.ref.format) for i in images] == [
        ("image_zoom", 64, 48, "png"), ("image_crop", 16, 8, "png")]
    assert all(i.path == image_run / "trajectories" / "images" / f"{i.ref.sha256}.png" for i in images)

    out = image_run / "report"  # another folder than the run's: the links must still reach images/
    paths = write_report(image_run, out)
    assert paths.images == images
    page = (out / "report.html").read_text()
    for image in images:
        assert f"<img src='../trajectories/images/{image.ref.sha256}.png'" in page
        assert f"image {image.ref.width}x{image.ref.height} png, {image.ref.nbytes} bytes, " \
               f"sha256 {image.ref.sha256[:12]}" in page
        with Image.open(out / f"../trajectories/images/{image.ref.sha256}.png") as im:  # the link resolves
            assert im.size == (image.ref.width, image.ref.height)
    assert "call image_zoom" in page and "[image 64x48 png]" in page and "bytes missing" not in page


async def test_missing_or_altered_bytes_are_named_on_the_page_and_by_the_cli(image_run) -> None:
    folder = image_run / "trajectories" / "images"
    zoom, crop = load_run(image_run).sample_images(load_run(image_run).samples[0])
    (folder / zoom.ref.filename).unlink()
    shutil.copy(image_run / "metrics.jsonl", folder / crop.ref.filename)  # other bytes under the crop's name

    res = CliRunner().invoke(app, ["report", str(image_run)])
    assert res.exit_code == 0, res.output
    assert "2 tool image(s), 2 without their bytes" in res.stdout
    assert f"bytes missing: {folder / zoom.ref.filename} not found" in res.stderr
    assert f"{folder / crop.ref.filename} holds other bytes" in res.stderr
    page = (image_run / "report.html").read_text()
    assert page.count("<figure class='missing'>") == 2 and "<figure><a" not in page
    assert f"bytes missing: {folder / zoom.ref.filename} not found" in page
    assert f"sha256 {zoom.ref.sha256[:12]}" in page  # the reference is still shown

    shutil.rmtree(folder)  # a run copied without its images/ folder at all
    (missing_zoom, missing_crop) = load_run(image_run).sample_images(load_run(image_run).samples[0])
    assert missing_zoom.path is None and missing_crop.problem == f"bytes missing: {folder / crop.ref.filename} not found"
