"""Images in tool results, through a real ToolManager: PIL images, bytes, paths and text in order;
typed refs whose bytes never reach a dump; per-call and per-trajectory limits; undecodable images."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from rlfactory_plugins import SessionContext
from rlfactory_plugins.config import ToolManagerConfig
from rlfactory_plugins.config.tools import ImageLimits
from rlfactory_plugins.tools import ToolResult, ToolStatus, tool
from rlfactory_plugins.tools.images import ToolImage, to_pil
from rlfactory_plugins.tools.manager import ToolManager

pytestmark = pytest.mark.timeout(60)


def png(width: int, height: int, colour: tuple[int, int, int] = (10, 200, 30), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format=fmt)
    return buf.getvalue()


def manager(*tools: Any, **images: Any) -> ToolManager:
    return ToolManager({t.name: t for t in tools}, ToolManagerConfig(images=ImageLimits(**images)))


async def call(value: Any, **images: Any) -> ToolResult:
    @tool
    def shot() -> Any:
        "Return the prepared value."
        return value

    async with manager(shot, **images) as m:
        return await m.call("shot", {})


async def test_pil_bytes_and_path_images_keep_their_order_with_text(tmp_path: Path) -> None:
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(png(8, 6, fmt="JPEG"))
    r = await call(["before", Image.new("RGBA", (3, 2)), ToolImage(png(5, 4)), {"k": 1}, ToolImage(jpeg)])
    assert r.ok, r.error
    assert r.output == "before\n[image 3x2 png]\n[image 5x4 png]\n{\"k\": 1}\n[image 8x6 jpeg]"
    assert [(i.source, i.mime_type, i.width, i.height) for i in r.images] == [
        ("pil", "image/png", 3, 2), ("bytes", "image/png", 5, 4), ("path", "image/jpeg", 8, 6)]
    assert r.images[1].sha256 == hashlib.sha256(png(5, 4)).hexdigest() and r.images[1].nbytes == len(png(5, 4))
    assert r.images[2].uri == str(jpeg) and r.images[2].data == jpeg.read_bytes()
    assert to_pil(r.images[0]).mode == "RGBA" and r.images[0].pixels == 6
    assert r.render() == r.output  # a text-only model reads the placeholders


async def test_dumped_result_keeps_references_not_bytes() -> None:
    r = await call(ToolImage(png(64, 64)))
    dumped = r.model_dump_json()
    assert len(dumped) < 600 and '"sha256"' in dumped and "data" not in json.loads(dumped)["images"][0]
    back = ToolResult.model_validate_json(dumped)
    assert back.images[0].model_dump() == r.images[0].model_dump() and back.output == "[image 64x64 png]"
    with pytest.raises(LookupError, match=f"open images/{r.images[0].sha256}.png"):
        back.images[0].data


async def test_text_results_are_unchanged() -> None:
    r = await call(["a", "b"])
    assert r.output == '["a", "b"]' and r.images == []
    assert "images" not in r.model_dump() and "images" not in json.loads(r.model_dump_json())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (ToolImage(b"\x89PNG\r\n\x1a\n" + b"\0" * 10), "cannot decode the bytes image (18 bytes, starting 89504e47"),
        (ToolImage(b""), "cannot decode the bytes image (0 bytes, starting empty)"),
        (ToolImage(png(40, 40)[:60]), "cannot decode the bytes image"),  # truncated: the header reads, pixels don't
        (ToolImage(b"%!PS-Adobe-3.0 EPSF-3.0\n"), "accepted formats: PNG, JPEG, WEBP, GIF, BMP"),
        (ToolImage("/nonexistent/x.png"), "cannot read image file '/nonexistent/x.png': No such file or directory"),
        (Image.new("RGB", (0, 5)), "empty PIL image (0x5)"),
    ],
)
async def test_undecodable_images_are_typed_tool_errors(value: Any, message: str) -> None:
    r = await call(["text", value])
    assert r.status is ToolStatus.tool_error and r.images == [] and r.output == ""
    assert message in r.error
    assert r.render().startswith("[tool_error] shot: ")


@pytest.mark.parametrize(
    ("value", "limits", "message"),
    [
        ([ToolImage(png(2, 2))] * 3, {"max_per_call": 2},
         "the tool returned 3 images; the limit is tool_manager.images.max_per_call=2 (raise it, or return fewer)"),
        (ToolImage(png(100, 50)), {"max_pixels_per_call": 4999},
         "the bytes image is 100x50 = 5000 pixels, over what is left of this call's 4999; "
         "the limit is tool_manager.images.max_pixels_per_call=4999"),
        ([ToolImage(png(10, 10)), ToolImage(png(10, 10))], {"max_pixels_per_call": 150},
         "the bytes image is 10x10 = 100 pixels, over what is left of this call's 50"),
        (Image.new("L", (300, 300)), {"max_pixels_per_call": 1000}, "the PIL image is 300x300 = 90000 pixels"),
        (ToolImage(png(20, 20)), {"max_bytes_per_call": 50}, "bytes, over what is left of this call's 50"),
        ([ToolImage(png(2, 2))], {"max_per_call": 0}, "max_per_call=0"),
    ],
)
async def test_images_over_a_per_call_limit_are_typed_tool_errors(value: Any, limits: dict, message: str) -> None:
    r = await call(value, **limits)
    assert r.status is ToolStatus.tool_error and r.images == []
    assert message in r.error


def png_header(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height``: what a decompression bomb looks like to a reader."""
    data = bytearray(png(1, 1))
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR
    ihdr[4:12] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[12:29], data[29:33] = ihdr, zlib.crc32(ihdr).to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize(
    ("width", "message"),
    [
        (5000, "the bytes image is 5000x5000 = 25000000 pixels, over what is left of this call's 16777216"),
        (20000, "Image size (400000000 pixels) exceeds limit"),  # Pillow's own guard, before ours
    ],
)
async def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded(width: int, message: str) -> None:
    r = await call(ToolImage(png_header(width, width)))
    assert r.status is ToolStatus.tool_error and message in r.error, r.error


async def test_path_over_the_byte_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png(300, 300) + b"\0" * 5000)
    r = await call(ToolImage(big), max_bytes_per_call=1000)
    assert r.status is ToolStatus.tool_error and f"image file '{big}' is" in r.error


async def test_per_trajectory_limits_count_the_calls_of_one_trajectory_only() -> None:
    @tool
    def snap(n: int) -> Any:
        "n small images."
        return [ToolImage(png(2, 2))] * n

    async with manager(snap, max_per_trajectory=3) as m:
        reg = m.sessions_registry()
        ctx = lambda t: SessionContext(key="k")  # noqa: E731 - no stateful tool opens it
        one, two = reg.open("traj-1", ctx), reg.open("traj-2", ctx)
        first = await m.call("snap", {"n": 2}, sessions=one)
        over = await m.call("snap", {"n": 2}, sessions=one)
        other = await m.call("snap", {"n": 3}, sessions=two)
        last = await m.call("snap", {"n": 1}, sessions=one)  # the refused call was not counted
        unbounded = [await m.call("snap", {"n": 2}) for _ in range(3)]  # no trajectory: per-call limits only
        assert first.ok and other.ok and last.ok and all(r.ok for r in unbounded)
        assert over.status is ToolStatus.tool_error and over.images == [] and over.output == ""
        assert over.error == ("with this call's 2 image(s) the trajectory's tool images would total 4 images; "
                              "the limit is tool_manager.images.max_per_trajectory=3")
        assert m.metrics()["tools/snap/errors/tool_error"] == 1
        await asyncio.gather(one.aclose("answer"), two.aclose("answer"))


async def test_cached_images_count_against_the_trajectory_too() -> None:
    @tool(cache=True)
    def logo() -> Any:
        "The logo."
        return ToolImage(png(4, 4))

    async with manager(logo, max_pixels_per_trajectory=40) as m:
        sessions = m.sessions_registry().open("t", lambda t: SessionContext(key="t"))
        a, b, c = [await m.call("logo", {}, sessions=sessions) for _ in range(3)]
        assert a.ok and b.ok and b.cached and b.images[0].data == a.images[0].data
        assert c.status is ToolStatus.tool_error and "would total 48 pixels" in c.error
        await sessions.aclose("answer")


async def test_parts_put_each_image_where_its_text_is() -> None:
    r = await call(["see [image 2x2 png] below:", ToolImage(png(2, 2)), "and", ToolImage(png(3, 1))])
    assert r.output == "see [image 2x2 png] below:\n[image 2x2 png]\nand\n[image 3x1 png]"
    # the tool's own text "[image 2x2 png]" comes first and takes the first image: order is kept, never lost
    a, b = r.images
    assert r.parts() == ["see ", a, " below:\n[image 2x2 png]\nand\n", b]
    text_only = await call("no images")
    assert text_only.parts() == ["no images"]
    cut = r.model_copy(update={"output": "see"})
    assert cut.parts() == ["see", a, b]  # images whose text is gone go last
    failed = r.model_copy(update={"status": ToolStatus.tool_error, "error": "boom"})
    assert failed.parts() == ["[tool_error] shot: boom"]
