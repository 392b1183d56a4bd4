"""The image tools through a real ToolManager: the row's image in each of its forms, one session per
trajectory, crop/zoom/rotate pixels, refusals the model reads, a missing or broken row image."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from rlfactory_plugins.config import ToolManagerConfig
from rlfactory_plugins.tools import ToolStatus
from rlfactory_plugins.tools.images import to_pil
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.session import SessionContext
from rlfactory_tool_image import GROUP, ImageOptions, tools

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(width: int = 80, height: int = 60) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    im = Image.new("RGB", (width, height))
    for box, colour in (((0, 0, width // 2, height // 2), RED), ((width // 2, 0, width, height // 2), GREEN),
                        ((0, height // 2, width // 2, height), BLUE), ((width // 2, height // 2, width, height), WHITE)):
        im.paste(colour, box)
    return im


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def manager(options: ImageOptions | None = None) -> ToolManager:
    return ToolManager({t.name: t for t in tools(options)}, ToolManagerConfig())


async def run(m: ToolManager, key: str, kwargs: dict[str, Any], *calls: tuple[str, dict[str, Any]],
              extra_info: dict[str, Any] | None = None):
    sessions = m.sessions_registry().open(
        key, lambda t: SessionContext(key=key, kwargs=kwargs, extra_info=extra_info or {}))
    results = [await m.call(name, args, sessions=sessions) for name, args in calls]
    return results, await sessions.aclose("answer")


@pytest.mark.parametrize("form", ["path", "base64", "data_url", "bytes", "hf_dict", "extra_info"])
async def test_the_row_image_in_each_form(tmp_path: Path, form: str) -> None:
    data = png(quadrants())
    path = tmp_path / "q.png"
    path.write_bytes(data)
    b64 = base64.b64encode(data).decode()
    value = {"path": str(path), "base64": b64, "data_url": f"data:image/png;base64,{b64}", "bytes": data,
             "hf_dict": {"bytes": data, "path": None}, "extra_info": b64}[form]
    kwargs, extra = ({}, {"image": value}) if form == "extra_info" else ({"image": value}, {})
    async with manager() as m:
        (r,), state = await run(m, "t", kwargs, ("image_crop", {"x0": 40, "y0": 0, "x1": 80, "y1": 30}),
                                extra_info=extra)
    assert r.ok, r.error
    assert r.output == "crop (40, 0)-(80, 30) of the 80x60 image:\n[image 40x30 png]"
    assert to_pil(r.images[0]).getpixel((5, 5)) == GREEN and r.images[0].source == "pil"
    assert state[GROUP]["width"] == 80 and state[GROUP]["calls"] == 1


async def test_each_trajectory_has_its_own_image_and_zoom_and_rotate_are_right() -> None:
    small = png(quadrants(40, 20))
    async with manager() as m:
        (zoom, rot), state = await run(m, "a", {"image": png(quadrants())},
                                       ("image_zoom", {"x": 79, "y": 59, "factor": 4}),
                                       ("image_rotate", {"degrees": 90}))
        (other,), other_state = await run(m, "b", {"image": small}, ("image_rotate", {"degrees": 180}))
    # zoom x4 at the bottom-right corner: the 20x15 region clamped inside the image, enlarged to 80x60
    assert zoom.output.startswith("zoom x4 at (79, 59), region (60, 45)-(80, 60)") and zoom.images[0].width == 80
    assert {colour for _, colour in to_pil(zoom.images[0]).getcolors()} == {WHITE}
    turned = to_pil(rot.images[0])
    assert turned.size == (60, 80) and turned.getpixel((5, 5)) == GREEN  # counter-clockwise: top-right to top-left
    assert to_pil(other.images[0]).getpixel((2, 2)) == WHITE and other.output.startswith("rotated 180 degrees of the 40x20")
    assert state[GROUP]["calls"] == 2 and other_state[GROUP]["calls"] == 1
    assert state[GROUP]["sha256"] != other_state[GROUP]["sha256"]


async def test_results_larger_than_max_side_are_scaled_down() -> None:
    async with manager(ImageOptions(max_side=50)) as m:
        (r,), _ = await run(m, "t", {"image": png(quadrants(200, 100))}, ("image_rotate", {"degrees": 0}))
    assert r.ok and (r.images[0].width, r.images[0].height) == (50, 25)


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("image_crop", {"x0": 10, "y0": 0, "x1": 90, "y1": 30}, "box (10, 0)-(90, 30) is not inside the 80x60 image"),
        ("image_crop", {"x0": 30, "y0": 0, "x1": 30, "y1": 30}, "with x0 < x1 and y0 < y1"),
        ("image_zoom", {"x": 10, "y": 10, "factor": 9}, "factor 9 is too large (at most 8)"),
        ("image_zoom", {"x": 80, "y": 10, "factor": 2}, "(80, 10) is outside the 80x60 image"),
    ],
)
async def test_refused_calls_are_tool_errors_the_model_reads(name: str, arguments: dict, message: str) -> None:
    async with manager() as m:
        (r,), _ = await run(m, "t", {"image": png(quadrants())}, (name, arguments))
    assert r.status is ToolStatus.tool_error and message in r.error and r.images == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "no image: give the row's extra_info.rlfactory.tool_kwargs.image.image"),
        ({"image": "not an image at all!"}, "tool_kwargs.image.image is 'not an image at all!': not an existing file"),
        ({"image": base64.b64encode(b"GIF89a broken").decode()}, "cannot decode the image (13 bytes)"),
        ({"image": "data:image/png,raw"}, "a data URL must be data:image/<type>;base64,<data>"),
        ({"image": {"path": None}}, "has neither 'bytes' nor 'path'"),
    ],
)
async def test_a_missing_or_broken_row_image_crashes_the_session_with_the_reason(kwargs: dict, message: str) -> None:
    async with manager() as m:
        (first, second), _ = await run(m, "t", kwargs, ("image_rotate", {"degrees": 90}),
                                       ("image_crop", {"x0": 0, "y0": 0, "x1": 1, "y1": 1}))
    assert first.status is ToolStatus.crashed and message in first.error
    assert second.status is ToolStatus.crashed  # the trajectory's later calls fail fast


async def test_a_row_image_over_max_input_pixels_is_refused() -> None:
    async with manager(ImageOptions(max_input_pixels=1000)) as m:
        (r,), _ = await run(m, "t", {"image": png(quadrants())}, ("image_rotate", {"degrees": 90}))
    assert r.status is ToolStatus.crashed and "the image is 80x60, over max_input_pixels=1000" in r.error
