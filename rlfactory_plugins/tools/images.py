"""Images in tool results: what a tool may return, how the manager decodes and limits them.

A tool returns images as a value of its own or in a list with text, in order::

    return ToolImage("/data/chart.png")                      # a file the tool resolved itself
    return ["the cropped region:", ToolImage(png_bytes)]     # encoded bytes (PNG, JPEG, WEBP, GIF, BMP)
    return pil_image                                         # a PIL image (stored as PNG)

and an MCP server as ``ImageContent`` blocks. A return value holding no image is rendered
exactly as before (:func:`~rlfactory_plugins.tools.base.render_output`).

Each image is decoded with Pillow (only the formats in :data:`FORMATS`; the header's size is
checked against the pixel limits before the pixels are decoded, so a decompression bomb never
is) and becomes an :class:`~rlfactory_plugins.tools.base.ImageRef`: type, size, SHA-256 and the
bytes, kept in memory but never serialised. The result's ``output`` is the text a text-only
model reads, with each image's ``[image WxH fmt]`` where it came. Anything that cannot be read
or decoded, or is over a limit of ``rlfactory.tool_manager.images``, is an :class:`ImageError`:
the call's status is ``tool_error`` and the message names the image, the limit and the fix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlfactory_plugins.config.tools import ImageLimits
from rlfactory_plugins.tools.base import ImageRef, ToolError, render_output

__all__ = ["FORMATS", "ImageBudget", "ImageError", "ToolImage", "decode_image", "has_images", "image_output", "to_pil"]

#: the Pillow formats a tool's image may be in (no EPS/PDF and the like: Pillow would run ghostscript)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")


class ImageError(ToolError):
    """An image a tool returned cannot be read or decoded, or is over a limit (status ``tool_error``)."""


@dataclass(frozen=True)
class ToolImage:
    """An image a tool returns: encoded bytes, or the path of a local file (``str`` or ``Path``)."""

    source: bytes | str | os.PathLike[str]

    def __post_init__(self) -> None:
        if not isinstance(self.source, bytes | bytearray | str | os.PathLike):
            raise TypeError(f"ToolImage takes encoded bytes or a file path, not {type(self.source).__name__}")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with the training stack and the image pack
        raise ImageError("decoding tool images needs Pillow: pip install pillow") from None
    return Image


# Neither Pillow nor mcp_types is imported for a text result (mcp_types alone is ~90 ms): a value can
# only be a PIL image or an MCP ImageContent if its module was imported already.
def _is_pil(value: Any) -> bool:
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def _is_mcp(value: Any) -> bool:
    module = sys.modules.get("mcp_types")
    return module is not None and isinstance(value, module.ImageContent)


def _is_image(value: Any) -> bool:
    return isinstance(value, ToolImage) or _is_pil(value) or _is_mcp(value)


def has_images(value: Any) -> bool:
    """Whether a tool's return value holds an image (then :func:`image_output` renders it)."""
    if isinstance(value, list | tuple):
        return any(_is_image(v) for v in value)
    return _is_image(value)


def _over(limit: str, value: int, fix: str = "return a smaller image") -> str:
    return f"the limit is tool_manager.images.max_{limit}={value} (raise it, or {fix})"


def _check_pixels(what: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(f"{what} is {width}x{height} = {width * height} pixels, over what is left of this call's "
                         f"{max_pixels}; {_over('pixels_per_call', max_pixels)}")


def _check_bytes(what: str, nbytes: int, max_bytes: int) -> None:
    if nbytes > max_bytes:
        raise ImageError(f"{what} is {nbytes} bytes, over what is left of this call's {max_bytes}; "
                         f"{_over('bytes_per_call', max_bytes)}")


def _encoded(value: Any, max_pixels: int, max_bytes: int) -> tuple[bytes, str, str | None]:
    """(encoded bytes, source, uri) of one image value, without decoding it."""
    if _is_pil(value):
        if value.width * value.height == 0:
            raise ImageError(f"the tool returned an empty PIL image ({value.width}x{value.height})")
        _check_pixels("the PIL image", value.width, value.height, max_pixels)  # before spending time encoding it
        if value.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):  # what PNG stores as it is
            value = value.convert("RGBA" if "A" in value.getbands() else "RGB")
        buf = io.BytesIO()
        value.save(buf, format="PNG")
        return buf.getvalue(), "pil", None
    if _is_mcp(value):
        try:
            return base64.b64decode(value.data, validate=True), "mcp", None
        except (binascii.Error, ValueError):
            raise ImageError(f"the MCP image ({value.mime_type}) is not valid base64") from None
    if isinstance(value.source, bytes | bytearray):
        return bytes(value.source), "bytes", None
    path = Path(value.source)
    try:
        _check_bytes(f"image file {str(path)!r}", path.stat().st_size, max_bytes)  # before reading it
        return path.read_bytes(), "path", str(path)
    except OSError as e:
        raise ImageError(f"cannot read image file {str(path)!r}: {e.strerror or e}") from None


def decode_image(value: Any, *, max_pixels: int, max_bytes: int) -> ImageRef:
    """Decode and check one image value (PIL image, :class:`ToolImage`, MCP ``ImageContent``).

    ``max_pixels`` / ``max_bytes``: what is left of the call's limits.
    """
    data, source, uri = _encoded(value, max_pixels, max_bytes)
    what = f"image file {uri!r}" if uri else f"the {source} image"
    _check_bytes(what, len(data), max_bytes)
    pil = _pil()
    try:
        with pil.open(io.BytesIO(data), formats=FORMATS) as im:  # reads the header only
            width, height, fmt = im.width, im.height, im.format
            _check_pixels(what, width, height, max_pixels)
            im.load()  # decodes the pixels: a truncated or corrupt file fails here
    except ImageError:
        raise
    except (pil.UnidentifiedImageError, OSError, SyntaxError, ValueError, pil.DecompressionBombError) as e:
        raise ImageError(f"cannot decode {what} ({len(data)} bytes, starting {data[:8].hex() or 'empty'}): {e} "
                         f"(accepted formats: {', '.join(FORMATS)})") from None
    mime = pil.MIME.get(fmt or "", f"image/{(fmt or 'unknown').lower()}")
    ref = ImageRef(mime_type=mime, width=width, height=height, nbytes=len(data),
                   sha256=hashlib.sha256(data).hexdigest(), source=source, uri=uri)  # type: ignore[arg-type]
    ref._data = data
    return ref


def to_pil(ref: ImageRef) -> Any:
    """The image as a PIL image (decoded again from its bytes)."""
    return _pil().open(io.BytesIO(ref.data), formats=FORMATS)


def _cut(parts: list[str | ImageRef], limit: int) -> tuple[list[str | ImageRef], bool]:
    """Text parts cut to ``limit`` characters together, with the manager's marker; images always kept."""
    total = sum(len(p) for p in parts if isinstance(p, str))
    if total <= limit:
        return parts, False
    out: list[str | ImageRef] = []
    left = limit
    for part in parts:
        if isinstance(part, ImageRef):
            out.append(part)
        elif left > 0:
            if len(part) > left:
                part = f"{part[:left]}\n[... truncated {total - limit} of {total} characters]"
            out.append(part)
            left -= len(part)
    return out, True


def image_output(value: Any, limits: ImageLimits, max_chars: int) -> tuple[str, list[ImageRef], bool]:
    """(output text, images, truncated) of a return value :func:`has_images` accepts. Raises :class:`ImageError`."""
    items: Sequence[Any] = value if isinstance(value, list | tuple) else [value]
    count = sum(1 for v in items if _is_image(v))
    if count > limits.max_per_call:
        raise ImageError(f"the tool returned {count} images; {_over('per_call', limits.max_per_call, 'return fewer')}")
    parts: list[str | ImageRef] = []
    pixels = nbytes = 0
    for item in items:
        if not _is_image(item):
            parts.append(render_output(item))
            continue
        ref = decode_image(item, max_pixels=limits.max_pixels_per_call - pixels,
                           max_bytes=limits.max_bytes_per_call - nbytes)
        pixels, nbytes = pixels + ref.pixels, nbytes + ref.nbytes
        parts.append(ref)
    parts, truncated = _cut(parts, max_chars)
    text = "\n".join(p.text() if isinstance(p, ImageRef) else p for p in parts)
    return text, [p for p in parts if isinstance(p, ImageRef)], truncated


@dataclass
class ImageBudget:
    """What one trajectory's calls returned so far, against the per-trajectory limits."""

    limits: ImageLimits
    count: int = 0
    pixels: int = 0
    nbytes: int = 0

    def charge(self, images: Sequence[ImageRef]) -> None:
        """Count ``images`` in, or raise :class:`ImageError` (nothing counted) if that would pass a limit."""
        count, pixels = self.count + len(images), self.pixels + sum(i.pixels for i in images)
        nbytes = self.nbytes + sum(i.nbytes for i in images)
        for name, unit, used, limit in (
            ("per_trajectory", "images", count, self.limits.max_per_trajectory),
            ("pixels_per_trajectory", "pixels", pixels, self.limits.max_pixels_per_trajectory),
            ("bytes_per_trajectory", "bytes", nbytes, self.limits.max_bytes_per_trajectory),
        ):
            if used > limit:
                raise ImageError(f"with this call's {len(images)} image(s) the trajectory's tool images would total "
                                 f"{used} {unit}; the limit is tool_manager.images.max_{name}={limit}")
        self.count, self.pixels, self.nbytes = count, pixels, nbytes
