"""A vision-language model (the tiny Qwen2-VL and its processor, loaded by verl's own ``hf_processor``) with the
image pack through the real rlfactory_agent loop: tool images enter the token stream as the processor's image
tokens (mask 0), go to every later generation and to the output's ``multi_modal_data`` in order, and verl's own
training-side code (``_compute_multi_modal_inputs`` / ``_compute_position_ids``) finds one image token per
vision feature. Text-only models still read ``[image WxH fmt]``; images past the observation limit are left out
whole; a stateless row's images count against the per-trajectory limits."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

from rlfactory_plugins import hookimpl, plugins
from rlfactory_plugins.testing.tiny_vl_model import IMAGE_PAD, VISION_END, VISION_START
from tests.helpers.rollout import run_loop, traj_of

rlfactory_tool_image = pytest.importorskip("rlfactory_tool_image", reason="the pack tool_plugins/rlfactory-tool-image")
from PIL import Image  # noqa: E402 - after the pack (which needs Pillow) is known to be there

from tests.helpers.images import ROW, RecordingServer, call, image_section, runs, vl_loop  # noqa: E402

pytestmark = pytest.mark.timeout(120)


class Snapshot:
    """A stateless tool returning a new image each call (no session: the row is stateless)."""

    @hookimpl
    def register_tools(self, register):
        def snapshot(side: int) -> list:
            "A square snapshot."
            return [f"snapshot {side}:", Image.new("RGB", (side, side), (side, 0, 0))]

        register(snapshot)


@pytest.fixture
def image_tools(tools_plugin):
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, rlfactory_tool_image, "image")
    plugins.register_plugin(pm, registry, Snapshot(), "vl-test-snapshot")
    assert not registry.errors, registry.errors
    return registry


def training_inputs(processor, out) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """What verl's training side computes from the loop's output: its own methods, on the real processor."""
    worker = SimpleNamespace(processor=processor, tokenizer=processor.tokenizer, mm_processor_kwargs={})
    worker._get_mm_processor_kwargs = lambda audio=None: {}
    input_ids = torch.tensor([out.prompt_ids + out.response_ids])
    mm = AgentLoopWorker._compute_multi_modal_inputs(worker, out, input_ids)
    positions = AgentLoopWorker._compute_position_ids(worker, input_ids, torch.ones_like(input_ids), mm, {})
    return mm, input_ids, positions


async def test_tool_images_enter_as_image_tokens_and_multi_modal_data(image_tools, vl, tmp_path) -> None:
    tok = vl.tokenizer
    script = [call("image_zoom", x=40, y=30, factor=2), call("image_crop", x0=0, y0=0, x1=10, y1=5),
              "<answer>orange</answer>"]
    server = RecordingServer(tok, script)
    out = await run_loop(vl_loop(server, vl, image_section(tmp_path)), **ROW)
    traj = traj_of(out)
    assert traj.stop_reason == "answer", traj.error
    zoom, crop = (c.result for c in traj.tool_calls)
    images = out.multi_modal_data["images"]
    assert [im.size for im in images] == [(zoom.images[0].width, zoom.images[0].height), (10, 5)]
    # each generation got the images so far; the first none (the row's prompt is text)
    assert [len(c["images"]) for c in server.calls] == [0, 1, 2]
    assert server.calls[2]["images"][0] is images[0]
    # the observations hold the processor's expansion of each image, exactly, and no text rendering
    pad, start, end = (tok.convert_tokens_to_ids(t) for t in (IMAGE_PAD, VISION_START, VISION_END))
    response = out.response_ids
    pad_runs = runs(response, pad)
    expected = [vl(text=["x"], images=[im], return_tensors="pt")["image_grid_thw"][0].prod().item() // 4
                for im in images]
    assert [b - a for a, b in pad_runs] == expected
    for a, b in pad_runs:
        assert response[a - 1] == start and response[b] == end
        assert set(out.response_mask[a - 1 : b + 1]) == {0}  # observation tokens are masked
    assert "[image" not in tok.decode(server.calls[2]["prompt_ids"])
    assert "of the 80x60 image:" in tok.decode(server.calls[1]["prompt_ids"])
    # the mask-1 tokens are exactly what the server generated, their log-probs kept
    model_ids = [t for t, m in zip(response, out.response_mask) if m]
    assert model_ids == [t for o in server.outputs for t in o]
    assert len(out.response_logprobs) == len(response)
    # verl's training side: one image token per vision feature, M-RoPE positions over the images
    mm, input_ids, positions = training_inputs(vl, out)
    assert mm["image_grid_thw"].shape[0] == 2
    assert int(mm["image_grid_thw"].prod(-1).sum()) // 4 == int((input_ids == pad).sum()) == sum(expected)
    assert mm["pixel_values"].shape[0] == int(mm["image_grid_thw"].prod(-1).sum())
    assert positions.shape == (1, 4, input_ids.shape[1])
    assert not torch.equal(positions[0, 0], positions[0, 2])  # the image's h/w rows differ from the text row
    # the trajectory stays JSON and text: its tool messages read the text rendering, dumps keep references
    assert [m["content"].splitlines()[-1] for m in traj.messages if m["role"] == "tool"][1] == "[image 10x5 png]"
    assert json.loads(json.dumps(out.extra_fields["rlfactory_trajectory"]))


async def test_text_only_model_with_the_same_tokenizer_reads_text(image_tools, vl, tmp_path) -> None:
    tok = vl.tokenizer
    server = RecordingServer(tok, [call("image_zoom", x=40, y=30, factor=2), "<answer>orange</answer>"])
    loop = vl_loop(server, vl, image_section(tmp_path))
    loop.processor = None  # what verl gives a text-only model
    out = await run_loop(loop, **ROW)
    assert traj_of(out).stop_reason == "answer"
    assert "[image 80x60 png]" in tok.decode(server.calls[1]["prompt_ids"])
    assert tok.convert_tokens_to_ids(IMAGE_PAD) not in out.response_ids
    assert out.multi_modal_data is None and server.calls[1]["images"] == []


async def test_an_image_over_the_observation_limit_is_left_out_whole(image_tools, vl, tmp_path) -> None:
    tok = vl.tokenizer
    section = {**image_section(tmp_path), "rollout": {"max_observation_tokens": 40}}
    server = RecordingServer(tok, [call("image_zoom", x=40, y=30, factor=1), "<answer>orange</answer>"])
    out = await run_loop(vl_loop(server, vl, section), **ROW)
    traj = traj_of(out)
    assert traj.stop_reason == "answer" and traj.turns[0].observation_truncated
    assert tok.convert_tokens_to_ids(IMAGE_PAD) not in out.response_ids  # 80x60 is 12 tokens after 30+ of text
    assert "...[truncated]" in tok.decode(server.calls[1]["prompt_ids"])
    assert out.multi_modal_data is None and server.calls[1]["images"] == []


async def test_a_stateless_rows_images_count_per_trajectory(image_tools, vl, tmp_path) -> None:
    tok = vl.tokenizer
    section = {**image_section(tmp_path, max_per_trajectory=1), "tools": ["snapshot"]}
    script = [call("snapshot", side=56), call("snapshot", side=28), "<answer>red</answer>"]
    server = RecordingServer(tok, script)
    loop = vl_loop(server, vl, section)
    out = await run_loop(loop)
    traj = traj_of(out)
    first, second = (c.result for c in traj.tool_calls)
    assert first.ok and second.status.value == "tool_error" and "max_per_trajectory=1" in second.error
    assert [im.size for im in out.multi_modal_data["images"]] == [(56, 56)]
    assert traj.tool_state == {}  # no session was opened for the stateless row, nor registered
    from rlfactory_plugins.rollout.runtime import get_runtime

    rt = await get_runtime(loop.rlf_config, tok, loop.apply_chat_template_kwargs, loop.verl_tools)
    assert not rt.sessions.used


class ContentImages:
    """A dataset class's ``process_vision_info`` (verl's hook; its default needs ``qwen_vl_utils``): the PIL
    images of the messages' image parts, in order."""

    @classmethod
    async def process_vision_info(cls, messages, image_patch_size, config):
        images = [p["image"] for m in messages if isinstance(m["content"], list) for p in m["content"]
                  if isinstance(p, dict) and p.get("type") == "image"]
        return images or None, None


async def test_prompt_images_come_first_and_the_trajectory_stays_json(image_tools, vl, tmp_path) -> None:
    tok = vl.tokenizer
    picture = Image.new("RGB", (84, 56), (10, 200, 30))
    prompt = [{"role": "user", "content": [{"type": "image", "image": picture}, {"type": "text", "text": "Zoom."}]}]
    server = RecordingServer(tok, [call("image_zoom", x=40, y=30, factor=2), "<answer>orange</answer>"])
    loop = vl_loop(server, vl, image_section(tmp_path))
    loop.dataset_cls = ContentImages
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
    out = await loop.run(params, raw_prompt=prompt, reward_model={"ground_truth": "5"}, uid="u1", **ROW)
    traj = traj_of(out)
    assert traj.stop_reason == "answer", traj.error
    images = out.multi_modal_data["images"]
    assert images[0] is picture and len(images) == 2
    assert [len(c["images"]) for c in server.calls] == [1, 2]  # the prompt's image from the first generation
    pad = tok.convert_tokens_to_ids(IMAGE_PAD)
    grid = vl(text=["x"], images=[picture], return_tensors="pt")["image_grid_thw"][0].prod().item() // 4
    assert [b - a for a, b in runs(out.prompt_ids, pad)] == [grid]
    mm, input_ids, _ = training_inputs(vl, out)
    assert int(mm["image_grid_thw"].prod(-1).sum()) // 4 == int((input_ids == pad).sum())
    assert traj.prompt == [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Zoom."}]}]
    assert len(traj.messages) > len(traj.prompt)  # the episode's messages are a list of their own
    json.dumps(out.extra_fields["rlfactory_trajectory"])
