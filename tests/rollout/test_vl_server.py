"""The CPU backend's transformers server on the tiny vision-language model: it takes ``image_data``, samples
with a KV cache and explicit M-RoPE positions, and its log-probs equal one uncached forward of the whole
sequence with the processor's pixel inputs (what training recomputes), also with requests interleaved."""

from __future__ import annotations

import asyncio

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from rlfactory_plugins.testing.tiny_vl_model import IMAGE_PLACEHOLDER, build_tiny_vl_model
from rlfactory_plugins.verl.cpu.errors import CPUBackendError
from rlfactory_plugins.verl.cpu.server import HFRolloutServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = build_tiny_vl_model(tmp_path_factory.mktemp("tiny_vl") / "m")
    config = {"prompt_length": 512, "response_length": 32, "dtype": "float32", "seed": 0}
    server = HFRolloutServer(config, {"path": str(path), "trust_remote_code": True})
    server.launch_server()
    return server, AutoProcessor.from_pretrained(path, trust_remote_code=True)


def prompt(processor, images: list) -> list[int]:
    content = [{"type": "text", "text": "look"}, *({"type": "image"} for _ in images)]
    text = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)
    return processor(text=[text], images=images or None, return_tensors="pt")["input_ids"][0].tolist()


def full_forward_logprobs(server, processor, ids: list[int], generated: list[int], images: list) -> list[float]:
    """log p of the generated tokens from one forward without cache, positions from the model itself."""
    seq = torch.tensor([ids + generated])
    kwargs = {}
    if images:
        pix = processor.image_processor(images=images, return_tensors="pt")
        kwargs = {"pixel_values": pix["pixel_values"], "image_grid_thw": pix["image_grid_thw"],
                  "mm_token_type_ids": (seq == processor.image_token_id).int()}
    server.model.model.rope_deltas = None
    with torch.inference_mode():
        logits = server.model(input_ids=seq, **kwargs).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[len(ids) + i - 1, t]) for i, t in enumerate(generated)]


async def test_image_requests_match_a_full_forward_also_interleaved(served) -> None:
    server, processor = served
    images_a = [Image.new("RGB", (64, 48), (200, 10, 10)), Image.new("RGB", (30, 90), (0, 90, 0))]
    requests = [(prompt(processor, images_a), images_a), (prompt(processor, []), [])]
    params = {"temperature": 1.0, "logprobs": True, "max_tokens": 12, "ignore_eos": True}
    outs = await asyncio.gather(*(server.generate(ids, params, f"r{i}", image_data=imgs or None)
                                  for i, (ids, imgs) in enumerate(requests)))
    for (ids, imgs), out in zip(requests, outs):
        assert len(out.token_ids) == 12
        expected = full_forward_logprobs(server, processor, ids, out.token_ids, imgs)
        assert max(abs(a - b) for a, b in zip(out.log_probs, expected)) < 1e-4
    # the images change what the model computes (they reach the prefill)
    ids, imgs = requests[0]
    blank = [Image.new("RGB", im.size, (255, 255, 255)) for im in imgs]
    greedy = {"temperature": 0.0, "logprobs": True, "max_tokens": 1}
    a = await server.generate(ids, greedy, "g", image_data=imgs)
    b = await server.generate(ids, greedy, "g", image_data=blank)
    assert a.log_probs != b.log_probs


async def test_a_placeholder_count_that_does_not_match_the_images_is_refused(served) -> None:
    server, processor = served
    image = Image.new("RGB", (64, 48))
    ids = processor.tokenizer.encode(f"<|im_start|>user\n{IMAGE_PLACEHOLDER}<|im_end|>", add_special_tokens=False)
    with pytest.raises(CPUBackendError, match="image tokens but its 1 image"):
        await server.generate(ids, {"max_tokens": 2}, "bad", image_data=[image])
    with pytest.raises(CPUBackendError, match="video"):
        await server.generate(ids, {"max_tokens": 2}, "video", video_data=[object()])
