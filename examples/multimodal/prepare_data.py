"""A synthetic image QA/crop set for the multimodal recipe, drawn locally with Pillow (no downloads).

Each picture is a large canvas of coloured shapes with one small white label somewhere: a
four-character code and a small coloured square. A row asks either for the code (``code``) or for
the square's colour (``colour``); both are too small to read at the resolution a VL model sees the
whole picture at, so the model has to find the label and look closer with the image pack's
``image_crop`` / ``image_zoom``. Rows are verl RL parquet with the image in the prompt:

- ``prompt``: one user message, ``<image>`` (verl's placeholder for ``images[0]``) then the question
- ``images``: ``[{"bytes": <png>, "path": None}]`` (what verl's ``RLHFDataset`` reads, ``data.image_key``)
- ``reward_model``: ``{"style": "rule", "ground_truth": {"target": [answer]}}`` (the ``qa_em`` reward)
- ``extra_info``: ``split``, ``index``, ``kind``, ``question``, ``answer``, ``label_box`` (x0, y0, x1, y1)
  and ``rlfactory.tool_kwargs.image.image``: the same PNG for the image tools
- ``agent_name``: ``rlfactory_agent``

::

    python examples/multimodal/prepare_data.py --out data/multimodal                # 2000 train / 200 test
    python examples/multimodal/prepare_data.py --out /tmp/mm --train 8 --test 4 --size 640x480

writes ``train.parquet`` and ``test.parquet`` and prints the counts per kind.
"""

from __future__ import annotations

import argparse
import io
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

AGENT_NAME = "rlfactory_agent"
DATA_SOURCE = "rlfactory/synthetic_crop"
#: the code's alphabet: no 0/O, 1/I/L, 5/S, 2/Z, 8/B (too alike at a few pixels)
ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 70, 220), "yellow": (235, 200, 20),
           "purple": (140, 50, 170), "orange": (245, 130, 20)}
QUESTIONS = {
    "code": "Somewhere in the picture there is a small white label with a four-character code. What is the code?",
    "colour": "Somewhere in the picture there is a small white label with a small coloured square in it. "
              f"What colour is the square ({', '.join(COLOURS)})?",
}
INSTRUCTION = ("The label is too small to read in the whole picture: use image_crop or image_zoom to look closer "
               "(coordinates are pixels of the {width}x{height} picture). Give the final answer inside "
               "<answer> and </answer>, for example <answer>{example}</answer>.")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled scalable font (needs FreeType)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw_picture(rng: random.Random, width: int, height: int) -> tuple[Image.Image, dict[str, Any]]:
    """A canvas of shapes and one small label; returns the picture and the label's facts."""
    background = tuple(rng.randint(150, 230) for _ in range(3))
    im = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(im)
    for _ in range(rng.randint(12, 24)):  # distractors, never white (the label is the only white box)
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randint(width // 20, width // 5), y0 + rng.randint(height // 20, height // 5)
        fill = tuple(rng.randint(20, 200) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    code = "".join(rng.choice(ALPHABET) for _ in range(4))
    colour = rng.choice(sorted(COLOURS))
    font = _font(max(8, height // 60))
    tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), code, font=font)
    side = ty1 - ty0
    pad = max(2, side // 3)
    box_w, box_h = (tx1 - tx0) + side + 3 * pad, side + 2 * pad
    x, y = rng.randrange(pad, width - box_w - pad), rng.randrange(pad, height - box_h - pad)
    draw.rectangle((x, y, x + box_w, y + box_h), fill=(255, 255, 255), outline=(0, 0, 0))
    draw.text((x + pad - tx0, y + pad - ty0), code, fill=(0, 0, 0), font=font)
    sx = x + 2 * pad + (tx1 - tx0)
    draw.rectangle((sx, y + pad, sx + side, y + pad + side), fill=COLOURS[colour])
    return im, {"code": code, "colour": colour, "label_box": [x, y, x + box_w, y + box_h]}


def png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def make_row(rng: random.Random, split: str, index: int, width: int, height: int) -> dict[str, Any]:
    im, facts = draw_picture(rng, width, height)
    kind = "code" if index % 2 == 0 else "colour"
    answer = facts[kind]
    question = QUESTIONS[kind]
    example = "K7QX" if kind == "code" else "green"
    content = f"<image>\n{question} {INSTRUCTION.format(width=width, height=height, example=example)}"
    png = png_bytes(im)
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": content}],
        "images": [{"bytes": png, "path": None}],
        "ability": "visual-crop",
        "reward_model": {"style": "rule", "ground_truth": {"target": [answer]}},
        "extra_info": {
            "split": split, "index": index, "kind": kind, "question": question, "answer": answer,
            "label_box": facts["label_box"],
            "rlfactory": {"tool_kwargs": {"image": {"image": {"bytes": png, "path": None}}}},
        },
        "agent_name": AGENT_NAME,
    }


def parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 160 or int(height) < 120:
        raise argparse.ArgumentTypeError(f"--size {text!r}: write WIDTHxHEIGHT, at least 160x120 (e.g. 896x672)")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for train.parquet and test.parquet")
    parser.add_argument("--train", type=int, default=2000, help="training rows")
    parser.add_argument("--test", type=int, default=200, help="held-out rows (other pictures: another seed)")
    parser.add_argument("--size", type=parse_size, default=(896, 672), help="picture size WIDTHxHEIGHT")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train < 1 or args.test < 1:
        parser.error(f"--train {args.train} and --test {args.test} must both be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    width, height = args.size
    for offset, (split, count) in enumerate((("train", args.train), ("test", args.test))):
        rng = random.Random(f"{args.seed}/{split}/{offset}")  # the splits never share a picture's seed
        rows = [make_row(rng, split, i, width, height) for i in range(count)]
        pd.DataFrame(rows).to_parquet(args.out / f"{split}.parquet")
        kinds = Counter(r["extra_info"]["kind"] for r in rows)
        counts = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        print(f"{args.out / split}.parquet: {len(rows)} rows ({counts}), {width}x{height} pictures")


if __name__ == "__main__":
    main()
