"""The offline tiny vision-language model: files, processor (image-only, loaded as remote code), verl's own
processor loader binding the M-RoPE index, image token counts from the image processor, forward, determinism."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.testing.tiny_vl_model import (
    IMAGE_PAD, IMAGE_PLACEHOLDER, MERGE_SIZE, VISION_END, VISION_START, build_tiny_vl_model,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory):
    path = build_tiny_vl_model(tmp_path_factory.mktemp("tiny_vl") / "m")
    return path, AutoProcessor.from_pretrained(path, trust_remote_code=True)


def test_files_and_processor(tiny_vl):
    path, processor = tiny_vl
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessorPil"  # no torchvision
    assert json.loads((path / "rlfactory_tiny_model.json").read_text())["kind"] == "qwen2_vl"
    tok = processor.tokenizer
    for token in (VISION_START, VISION_END, IMAGE_PAD):
        assert len(tok.encode(token, add_special_tokens=False)) == 1, token


def test_verl_loads_the_processor_and_binds_the_rope_index(tiny_vl):
    from verl.utils.tokenizer import hf_processor

    path, _ = tiny_vl
    processor = hf_processor(str(path), trust_remote_code=True)
    assert processor is not None and type(processor).__name__ == "Qwen2VLProcessor"
    assert hasattr(processor, "get_rope_index")  # verl's mrope position ids for training


@pytest.mark.parametrize(("size", "tokens"), [((64, 48), 4), ((100, 60), 8), ((600, 600), 49), ((20, 20), 4)])
def test_image_tokens_follow_the_image_processor_grid(tiny_vl, size, tokens):
    _, processor = tiny_vl
    out = processor(text=[IMAGE_PLACEHOLDER], images=[Image.new("RGB", size, (9, 99, 199))], return_tensors="pt")
    grid = out["image_grid_thw"][0].tolist()
    pads = out["input_ids"][0].tolist().count(processor.image_token_id)
    assert pads == grid[0] * grid[1] * grid[2] // MERGE_SIZE**2 == tokens


def test_chat_template_renders_images_in_user_and_tool_messages(tiny_vl):
    _, processor = tiny_vl
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "look"}]},
        {"role": "assistant", "content": "zoom"},
        {"role": "tool", "content": [{"type": "text", "text": "zoomed:"}, {"type": "image"}]},
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert f"user\n{IMAGE_PLACEHOLDER}look<|im_end|>" in text
    assert f"<tool_response>\nzoomed:{IMAGE_PLACEHOLDER}\n</tool_response>" in text
    plain = [{"role": "user", "content": "hi"}]  # string contents render as the text tiny model's template
    assert processor.apply_chat_template(plain, tokenize=False).endswith("<|im_start|>user\nhi<|im_end|>\n")


def test_model_forward_with_an_image_and_determinism(tiny_vl, tmp_path):
    path, processor = tiny_vl
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}]}], tokenize=False)
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56))], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[:2] == inputs["input_ids"].shape and torch.isfinite(logits).all()
    again = build_tiny_vl_model(tmp_path / "again")
    assert (again / "model.safetensors").read_bytes() == (path / "model.safetensors").read_bytes()


def test_pixel_bounds_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="min_pixels"):
        build_tiny_vl_model(tmp_path / "bad", min_pixels=100)
