"""A tiny, random-weight Qwen2-VL model built entirely offline (the vision-language twin of ``tiny_model``).

``build_tiny_vl_model(out_dir)`` writes a directory that loads with ``AutoTokenizer``,
``AutoProcessor.from_pretrained(out_dir, trust_remote_code=True)`` and
``AutoModelForImageTextToText`` (``Qwen2VLForConditionalGeneration``): the byte-level BPE
tokenizer of :mod:`rlfactory_plugins.testing.tiny_model` plus Qwen2-VL's vision tokens
(``<|vision_start|>``, ``<|vision_end|>``, ``<|image_pad|>``, ``<|video_pad|>``), a chat template
that renders image content parts as Qwen2-VL does (``<|vision_start|><|image_pad|><|vision_end|>``,
in ``user`` and ``tool`` messages alike), the Pillow image processor ``Qwen2VLImageProcessorPil``
(torchvision is not needed) and a randomly initialised ``Qwen2VLForConditionalGeneration``
(~0.2M parameters). The same seed gives the same files.

Why remote code: transformers' ``Qwen2VLProcessor`` requires a video processor, and Qwen2-VL's
video processor requires torchvision. ``video_processor=None`` is refused by ``ProcessorMixin``'s
argument type check (transformers 5.10 ``processing_utils.py`` ``__init__``), and verl's
``hf_processor`` (``verl/utils/tokenizer/tokenizer.py``) accepts only the Qwen-VL, GLM-4V, Mllama and
Gemma4 processors: the one of them without video (Mllama) is a cross-attention model with no
placeholder expansion. :class:`Qwen2VLProcessor` here is the same processor without video; the saved
``tiny_vl_processing.py`` re-exports it, so ``AutoProcessor`` needs ``trust_remote_code=True`` (verl:
``actor_rollout_ref.model.trust_remote_code=true``). It keeps the class name ``Qwen2VLProcessor``
on purpose: verl's ``hf_processor`` binds Qwen2-VL's ``get_rope_index`` (the M-RoPE position ids)
by that name.

The vision tokens are special tokens, so a ``skip_special_tokens=True`` decode drops them. verl's
training side decodes so before it reruns the processor (``AgentLoopWorker._compute_multi_modal_inputs``);
harmless, since it keeps only ``pixel_values`` / ``image_grid_thw`` of that call (the ids are the
rollout's), as for the real Qwen2-VL tokenizer whose vision tokens are special too.

Command line: ``python -m rlfactory_plugins.testing.tiny_vl_model OUT_DIR [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.testing.tiny_model import _BUILTIN_TEXT, CHAT_TEMPLATE, IM_END, IM_START, PAD, _train_tokenizer

VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"
VISION_TOKENS = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
#: one image's placeholder as the chat template writes it; the processor expands the pad to the image's tokens
IMAGE_PLACEHOLDER = VISION_START + IMAGE_PAD + VISION_END
#: Qwen2-VL's vision geometry: 14-pixel patches merged 2x2, so one image token per 28x28 pixels
PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH_SIZE = 14, 2, 2
_REMOTE_MODULE = "tiny_vl_processing"

# The text template of tiny_model, with every content rendered through one macro: a string as it is,
# a list of parts as Qwen2-VL renders them (text parts' text, image parts' placeholder).
_CONTENT_MACRO = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- else -%}{%- for part in content -%}"
    "{%- if part.type == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{- '" + IMAGE_PLACEHOLDER + "' -}}"
    "{%- elif part.type == 'video' or 'video' in part -%}"
    "{{- '" + VISION_START + VIDEO_PAD + VISION_END + "' -}}"
    "{%- elif 'text' in part -%}{{- part.text -}}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)
VL_CHAT_TEMPLATE = _CONTENT_MACRO + (
    CHAT_TEMPLATE.replace("messages[0]['content']", "render_content(messages[0]['content'])")
    .replace("message.content", "render_content(message.content)")
    .replace("{%- if render_content(message.content) %}", "{%- if message.content %}")
)

_REMOTE_CODE = f'''"""Written by rlfactory_plugins.testing.tiny_vl_model: the image-only Qwen2-VL processor."""
from rlfactory_plugins.testing.tiny_vl_model import Qwen2VLProcessor  # noqa: F401
'''


def _processor_class() -> type:
    from transformers import ProcessorMixin
    from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor as _Full

    class Qwen2VLProcessor(_Full):  # the name verl's hf_processor matches (see the module docstring)
        """transformers' ``Qwen2VLProcessor`` without its video processor (which needs torchvision)."""

        def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any):
            self.image_token = IMAGE_PAD
            self.video_token = VIDEO_PAD
            self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
            self.video_token_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

        def __call__(self, images: Any = None, text: Any = None, videos: Any = None, **kwargs: Any) -> Any:
            if videos is not None:
                raise ConfigError("the tiny VL processor has no video processor; pass images only")
            return super().__call__(images=images, text=text, **kwargs)

    Qwen2VLProcessor.__module__ = __name__
    return Qwen2VLProcessor


def __getattr__(name: str) -> Any:  # the processor class is built on first use: torch/transformers stay unimported
    if name == "Qwen2VLProcessor":
        cls = _processor_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_tiny_vl_model(
    out_dir: str | Path,
    *,
    vocab_size: int = 512,
    seed: int = 0,
    min_pixels: int = 28 * 28 * 4,
    max_pixels: int = 28 * 28 * 64,
    corpus: list[str] | None = None,
) -> Path:
    """Write the tiny Qwen2-VL model, tokenizer and processor to ``out_dir`` and return its path.

    ``min_pixels`` / ``max_pixels`` bound an image's resized area, hence its token count: an image
    gives ``(h/28)·(w/28)`` tokens after resizing, 4 to 64 with the defaults.
    """
    import torch
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    unit = (PATCH_SIZE * MERGE_SIZE) ** 2
    if not unit <= min_pixels <= max_pixels:
        raise ConfigError(
            f"min_pixels={min_pixels}, max_pixels={max_pixels}: need {unit} <= min_pixels <= max_pixels "
            f"(one image token covers {unit} pixels)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(vocab_size, [_BUILTIN_TEXT, *(corpus or [])])
    tokenizer.add_special_tokens({"additional_special_tokens": [IM_START, IM_END, *VISION_TOKENS]})
    tokenizer.chat_template = VL_CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (IM_END, PAD, *VISION_TOKENS)}
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=min_pixels, max_pixels=max_pixels, patch_size=PATCH_SIZE, merge_size=MERGE_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
    )
    processor = _processor_class()(image_processor=image_processor, tokenizer=tokenizer, chat_template=VL_CHAT_TEMPLATE)

    head_dim = 16  # hidden 64 / 4 heads; M-RoPE splits head_dim/2 = 8 frequencies over (t, h, w)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}, "tie_word_embeddings": True,
            "eos_token_id": ids[IM_END], "pad_token_id": ids[PAD], "bos_token_id": None,
        },
        vision_config={
            "depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "in_channels": 3,
            "patch_size": PATCH_SIZE, "spatial_merge_size": MERGE_SIZE, "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        },
        image_token_id=ids[IMAGE_PAD], video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START], vision_end_token_id=ids[VISION_END],
        eos_token_id=ids[IM_END], pad_token_id=ids[PAD], bos_token_id=None, tie_word_embeddings=True,
        torch_dtype="float32",
    )
    assert head_dim // 2 == sum(config.text_config.rope_scaling["mrope_section"])
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids[IM_END], ids[PAD]], pad_token_id=ids[PAD], bos_token_id=None
    )
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    (out / f"{_REMOTE_MODULE}.py").write_text(_REMOTE_CODE)
    _add_auto_map(out / "processor_config.json")
    (out / "rlfactory_tiny_model.json").write_text(
        json.dumps({"kind": "qwen2_vl", "vocab_size": vocab_size, "seed": seed, "min_pixels": min_pixels,
                    "max_pixels": max_pixels}, indent=2) + "\n"
    )
    return out


def _add_auto_map(path: Path) -> None:
    """Point ``AutoProcessor`` at the saved re-export (transformers loads it with ``trust_remote_code``)."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data["processor_class"] = "Qwen2VLProcessor"
    data["auto_map"] = {"AutoProcessor": f"{_REMOTE_MODULE}.Qwen2VLProcessor"}
    path.write_text(json.dumps(data, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlfactory_plugins.testing.tiny_vl_model", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_tiny_vl_model(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
