"""An MCP server (mcp SDK 2.x ``MCPServer``) whose tools return ``ImageContent``, for the image tests.

Run: ``python image_server.py`` (stdio). Images are drawn with Pillow, so their size and
pixels are known to the test.
"""

from __future__ import annotations

import io

from mcp.server.mcpserver import Image, MCPServer
from mcp_types import ImageContent
from PIL import Image as PILImage

server = MCPServer("images")


def _png(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


@server.tool()
def chart(width: int, height: int) -> list:
    """A caption, a red image of the given size, then a footnote."""
    return [f"chart {width}x{height}:", Image(data=_png(width, height), format="png"), "(red)"]


@server.tool()
def two_charts() -> list:
    """Two images, a red and a blue one."""
    return [Image(data=_png(4, 3), format="png"), Image(data=_png(2, 2, (0, 0, 255)), format="png")]


@server.tool()
def broken() -> ImageContent:
    """An image whose bytes are not an image."""
    return ImageContent(type="image", data="bm90IGFuIGltYWdl", mime_type="image/png")


@server.tool()
def not_base64() -> ImageContent:
    """An image whose data is not base64."""
    return ImageContent(type="image", data="%%%not-base64%%%", mime_type="image/png")


if __name__ == "__main__":
    server.run()
