"""A text-only model with the image pack through the real rlfactory_agent loop: image results are read as
``[image WxH fmt]`` text, over-limit images are tool_error observations (never a crash), and the
trajectory dump keeps image references while the bytes go to ``images/<sha256>.png`` once."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest

from rlfactory_plugins import plugins
from tests.helpers.rollout import ScriptedServer, make_agent_loop, run_loop, traj_of

rlfactory_tool_image = pytest.importorskip("rlfactory_tool_image", reason="the pack tool_plugins/rlfactory-tool-image")
from PIL import Image  # noqa: E402 - after the pack (which needs Pillow) is known to be there

from tests.helpers.images import ROW, call, image_section  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def image_tools(tools_plugin):
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, rlfactory_tool_image, "image")
    assert not registry.errors, registry.errors
    return registry


async def test_text_only_model_reads_image_results_as_text_and_the_dump_keeps_references(
    image_tools, tokenizer, tmp_path
) -> None:
    script = [call("image_zoom", x=40, y=30, factor=2), call("image_crop", x0=0, y0=0, x1=10, y1=5),
              "<answer>orange</answer>"]
    server = ScriptedServer(tokenizer, script)
    out = await run_loop(make_agent_loop(server, tokenizer, image_section(tmp_path), response_length=2048), **ROW)
    traj = traj_of(out)
    assert traj.stop_reason == "answer", traj.error
    zoom, crop = traj.tool_calls
    assert zoom.ok and crop.ok
    assert [(i.width, i.height) for c in (zoom, crop) for i in c.result.images] == [(80, 60), (10, 5)]
    # what the model saw: the placeholders, in the tokens of its next prompt and in the messages
    seen = tokenizer.decode(server.calls[2]["prompt_ids"])
    assert "of the 80x60 image:\n[image 80x60 png]" in seen and "[image 10x5 png]" in seen
    assert [m["content"].splitlines()[-1] for m in traj.messages if m["role"] == "tool"] == [
        "[image 80x60 png]", "[image 10x5 png]"]
    assert traj.tool_state["image"]["calls"] == 2

    (dump,) = tmp_path.glob("step_*.jsonl")
    line = dump.read_text()
    dumped = [c["result"]["images"] for t in map(json.loads, line.splitlines()) for turn in t["turns"]
              for c in turn["tool_calls"]]
    assert [[set(i) for i in images] for images in dumped] == [
        [{"mime_type", "width", "height", "nbytes", "sha256", "source", "uri"}]] * 2
    for ref in (zoom.result.images[0], crop.result.images[0]):
        written = (tmp_path / "images" / f"{ref.sha256}.png").read_bytes()
        assert hashlib.sha256(written).hexdigest() == ref.sha256 and len(written) == ref.nbytes
        assert Image.open(io.BytesIO(written)).size == (ref.width, ref.height)
        assert base64.b64encode(written).decode() not in line  # no pixels in the JSONL


async def test_images_over_the_trajectory_limit_are_error_observations(image_tools, tokenizer, tmp_path) -> None:
    script = [call("image_zoom", x=1, y=1, factor=1), call("image_zoom", x=1, y=1, factor=3), "<answer>?</answer>"]
    server = ScriptedServer(tokenizer, script)
    loop = make_agent_loop(server, tokenizer, image_section(tmp_path, max_per_trajectory=1), response_length=2048)
    out = await run_loop(loop, **ROW)
    traj = traj_of(out)
    assert traj.stop_reason == "answer", traj.error
    first, second = traj.tool_calls
    assert first.ok and second.result.status.value == "tool_error" and second.result.images == []
    seen = tokenizer.decode(server.calls[2]["prompt_ids"])
    assert "[tool_error] image_zoom: with this call's 1 image(s) the trajectory's tool images would total 2" in seen
    assert out.extra_fields["rlfactory_stats"]  # the loop's own bookkeeping ran to the end


async def test_a_row_without_an_image_is_a_crashed_observation(image_tools, tokenizer, tmp_path) -> None:
    server = ScriptedServer(tokenizer, [call("image_zoom", x=1, y=1, factor=2), "<answer>?</answer>"])
    traj = traj_of(await run_loop(make_agent_loop(server, tokenizer, image_section(tmp_path), response_length=2048)))
    assert traj.stop_reason == "answer"
    assert traj.tool_calls[0].result.status.value == "crashed" and "no image" in traj.tool_calls[0].result.error
    assert not (tmp_path / "images").exists()
