"""rlfactory tool pack ``image``: crop, zoom into and rotate the row's image.

Three stateful tools — ``image_crop``, ``image_zoom``, ``image_rotate`` — share one session per
trajectory (``session_group = "image"``): the first call opens the row's image, and every call
works on that original (coordinates are always the original's pixels) and returns the result
as an image, which the tool manager decodes into ``ToolResult.images`` (a text-only model
reads ``[image WxH png]``). Results larger than ``max_side`` pixels on a side are scaled down.

The image comes from the row: ``extra_info.rlfactory.tool_kwargs.image.image``, else
``extra_info.image``; a file path, a base64 string, a ``data:image/...;base64,`` URL, raw
bytes, or ``{"bytes": ..., "path": ...}`` (a Hugging Face ``Image`` column as parquet stores it).
Without one (the CLI, a conformance check) the ``image`` option is used.

Install: ``pip install rlfactory-tool-image``; enable with
``rlfactory.tools: [image_crop, image_zoom, image_rotate]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from rlfactory_plugins import hookimpl
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.tools import ToolError, ToolSpec
from rlfactory_plugins.tools.session import SessionContext, StatefulTool

__all__ = ["GROUP", "ImageOptions", "ImageSession", "ImageTool", "load_image", "register_tools", "tools"]

#: the session group the three tools share: the key of their row kwargs and of their final state
GROUP = "image"


class ImageOptions(BaseModel):
    """``rlfactory.tools[image_*].options``."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = Field(default=None, description="the image when the row gives none: path, base64 or data URL")
    max_side: int = Field(default=1024, ge=8, description="results larger on a side are scaled down to it")
    max_zoom: float = Field(default=8.0, ge=1.0)
    max_input_pixels: int = Field(default=16_777_216, ge=1, description="a larger row image is refused")


class ImageToolError(ToolError):
    """A call the tool refuses (a box outside the image, a zoom too deep); the model reads the message."""


def _decode(data: bytes, where: str, max_pixels: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "WEBP", "GIF", "BMP")) as im:
            if im.width * im.height > max_pixels:
                raise ConfigError(f"{where}: the image is {im.width}x{im.height}, over max_input_pixels={max_pixels}")
            im.load()
            return im.convert("RGBA" if "A" in im.getbands() else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ConfigError(f"{where}: cannot decode the image ({len(data)} bytes): {e}") from None


def _bytes_of(value: Any, where: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, Mapping):  # {"bytes": ..., "path": ...}: a datasets Image column in parquet
        if value.get("bytes"):
            return _bytes_of(value["bytes"], f"{where}.bytes")
        if value.get("path"):
            return _bytes_of(str(value["path"]), f"{where}.path")
        raise ConfigError(f"{where} has neither 'bytes' nor 'path'")
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} is {type(value).__name__}; give a path, base64, a data URL or bytes")
    if value.startswith("data:"):
        head, sep, value = value.partition(",")
        if not sep or not head.endswith(";base64"):
            raise ConfigError(f"{where}: a data URL must be data:image/<type>;base64,<data>")
    elif len(value) < 4096 and Path(value).is_file():
        return Path(value).read_bytes()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        shown = value if len(value) < 80 else value[:77] + "..."
        raise ConfigError(f"{where} is {shown!r}: not an existing file and not base64") from None


def load_image(ctx: SessionContext, default: str | None, max_pixels: int = 16_777_216) -> tuple[Image.Image, str]:
    """The row's image (see the module docstring) and the SHA-256 of its bytes."""
    if "image" in ctx.kwargs:
        where, value = f"extra_info.rlfactory.tool_kwargs.{GROUP}.image", ctx.kwargs["image"]
    elif "image" in ctx.extra_info:
        where, value = "extra_info.image", ctx.extra_info["image"]
    elif default is not None:
        where, value = "the image option", default
    else:
        raise ConfigError(
            f"no image: give the row's extra_info.rlfactory.tool_kwargs.{GROUP}.image (or extra_info.image) "
            "as a path, base64 or a data URL, or set the tool option 'image'"
        )
    data = _bytes_of(value, where)
    return _decode(data, where, max_pixels), hashlib.sha256(data).hexdigest()


@dataclass
class ImageSession:
    """One trajectory's image and what was done to it."""

    key: str
    image: Image.Image
    sha256: str
    calls: int = 0


_INT = {"type": "integer", "minimum": 0}


class ImageTool(StatefulTool):
    """One operation on the trajectory's image; the three share the ``image`` session."""

    Options = ImageOptions
    timeout = 10.0

    OPERATIONS: ClassVar[dict[str, tuple[str, dict[str, Any]]]] = {
        "image_crop": (
            "Crop the image to the box from (x0, y0) to (x1, y1), in pixels of the original image "
            "(x0 < x1 <= width, y0 < y1 <= height).",
            {"x0": _INT, "y0": _INT, "x1": _INT, "y1": _INT},
        ),
        "image_zoom": (
            "Zoom into the original image around the pixel (x, y) by a factor (2 shows a region half as wide "
            "and high, enlarged).",
            {"x": _INT, "y": _INT, "factor": {"type": "number", "minimum": 1}},
        ),
        "image_rotate": (
            "Rotate the original image counter-clockwise by the given degrees (the canvas grows to fit).",
            {"degrees": {"type": "number"}},
        ),
    }

    def __init__(self, name: str, options: ImageOptions | None = None) -> None:
        if name not in self.OPERATIONS:
            raise ConfigError(f"no image operation {name!r}; use one of {sorted(self.OPERATIONS)}")
        description, properties = self.OPERATIONS[name]
        parameters = {"type": "object", "properties": properties, "required": sorted(properties),
                      "additionalProperties": False}
        super().__init__(ToolSpec(name=name, description=description, parameters=parameters))
        self.options = options or ImageOptions()

    @property
    def session_group(self) -> str:
        return GROUP

    def with_options(self, options: BaseModel) -> ImageTool:
        return ImageTool(self.name, ImageOptions.model_validate(options.model_dump()))

    async def open_session(self, ctx: SessionContext) -> ImageSession:
        image, sha = load_image(ctx, self.options.image, self.options.max_input_pixels)
        return ImageSession(key=ctx.key, image=image, sha256=sha)

    async def acall_in(self, session: ImageSession, arguments: dict[str, Any]) -> list[Any]:
        session.calls += 1
        image = session.image
        if self.name == "image_crop":
            box = (arguments["x0"], arguments["y0"], arguments["x1"], arguments["y1"])
            _check_box(box, image)
            out, what = image.crop(box), f"crop ({box[0]}, {box[1]})-({box[2]}, {box[3]})"
        elif self.name == "image_zoom":
            out, what = self._zoom(image, arguments["x"], arguments["y"], float(arguments["factor"]))
        else:
            degrees = float(arguments["degrees"])
            out, what = image.rotate(degrees, expand=True), f"rotated {degrees:g} degrees"
        out = _fit(out, self.options.max_side)
        return [f"{what} of the {image.width}x{image.height} image:", out]

    def _zoom(self, image: Image.Image, x: int, y: int, factor: float) -> tuple[Image.Image, str]:
        if factor > self.options.max_zoom:
            raise ImageToolError(f"factor {factor:g} is too large (at most {self.options.max_zoom:g})")
        if x >= image.width or y >= image.height:
            raise ImageToolError(f"({x}, {y}) is outside the {image.width}x{image.height} image")
        w, h = max(1, round(image.width / factor)), max(1, round(image.height / factor))
        left = min(max(0, x - w // 2), image.width - w)
        top = min(max(0, y - h // 2), image.height - h)
        region = image.crop((left, top, left + w, top + h))
        zoomed = region.resize((round(w * factor), round(h * factor)), Image.Resampling.BICUBIC)
        return zoomed, f"zoom x{factor:g} at ({x}, {y}), region ({left}, {top})-({left + w}, {top + h})"

    async def session_state(self, session: ImageSession) -> dict[str, Any]:
        image = session.image
        return {"sha256": session.sha256, "width": image.width, "height": image.height, "calls": session.calls}


def _check_box(box: tuple[int, int, int, int], image: Image.Image) -> None:
    x0, y0, x1, y1 = box
    if not (x0 < x1 <= image.width and y0 < y1 <= image.height):
        raise ImageToolError(f"box ({x0}, {y0})-({x1}, {y1}) is not inside the {image.width}x{image.height} image "
                             "with x0 < x1 and y0 < y1")


def _fit(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` scaled down (aspect kept) so neither side is over ``max_side``."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def tools(options: ImageOptions | None = None) -> list[ImageTool]:
    """The three tools, sharing ``options``."""
    return [ImageTool(name, options) for name in ImageTool.OPERATIONS]


@hookimpl
def register_tools(register):
    for t in tools():
        register(t)
