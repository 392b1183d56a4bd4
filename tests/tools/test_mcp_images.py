"""A real MCP server process returning ``ImageContent``: decoded into typed refs in order with its text,
undecodable or not-base64 images as typed errors, per-trajectory limits on a per-trajectory server."""

from __future__ import annotations

import hashlib
import sys

import pytest
from rlfactory_plugins import SessionContext
from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.tools import ToolStatus
from rlfactory_plugins.tools.images import to_pil
from rlfactory_plugins.tools.manager import ToolManager
from tests.helpers.mcp import SERVERS

pytestmark = pytest.mark.timeout(90)

IMAGES = str(SERVERS / "image_server.py")


def images_server(**extra: object) -> dict:
    return {"command": sys.executable, "args": [IMAGES], "stderr": "devnull", **extra}


async def test_image_content_becomes_typed_images_in_order(servers_file, no_orphans) -> None:
    tm = await ToolManager.from_config(RLFactoryConfig(mcp=servers_file(img=images_server())))
    try:
        chart, two, broken, not_b64 = await tm.call_many([
            ("chart", {"width": 64, "height": 48}), ("two_charts", {}), ("broken", {}), ("not_base64", {}),
        ])
        assert chart.ok, chart.error
        assert chart.output == "chart 64x48:\n[image 64x48 png]\n(red)" and chart.render() == chart.output
        (ref,) = chart.images
        assert (ref.source, ref.mime_type, ref.width, ref.height) == ("mcp", "image/png", 64, 48)
        assert ref.sha256 == hashlib.sha256(ref.data).hexdigest()
        assert to_pil(ref).convert("RGB").getpixel((10, 10)) == (200, 30, 30)  # the server's pixels, intact
        assert two.output == "[image 4x3 png]\n[image 2x2 png]" and [i.pixels for i in two.images] == [12, 4]

        assert broken.status is ToolStatus.tool_error and broken.images == []
        assert broken.error.startswith("cannot decode the mcp image (12 bytes, starting 6e6f7420616e2069)")
        assert not_b64.status is ToolStatus.tool_error
        assert not_b64.error == "the MCP image (image/png) is not valid base64"
        assert ref.nbytes > 100 and len(chart.model_dump_json()) < 500  # the dump holds the reference, not the bytes
    finally:
        await tm.aclose()
    no_orphans()


async def test_image_limits_hold_for_mcp_images(servers_file, no_orphans) -> None:
    cfg = RLFactoryConfig(mcp=servers_file(img=images_server()),
                          tool_manager={"images": {"max_per_call": 1, "max_pixels_per_call": 1000}})
    tm = await ToolManager.from_config(cfg)
    try:
        two, big, small = await tm.call_many([
            ("two_charts", {}), ("chart", {"width": 100, "height": 20}), ("chart", {"width": 10, "height": 10}),
        ])
        assert two.status is ToolStatus.tool_error and "returned 2 images" in two.error
        assert big.status is ToolStatus.tool_error and "100x20 = 2000 pixels" in big.error
        assert small.ok and small.images[0].pixels == 100
    finally:
        await tm.aclose()
    no_orphans()


async def test_per_trajectory_server_images_count_per_trajectory(servers_file, no_orphans) -> None:
    cfg = RLFactoryConfig(mcp=servers_file(img=images_server(session="trajectory")),
                          tool_manager={"images": {"max_per_trajectory": 3}})
    tm = await ToolManager.from_config(cfg)
    try:
        reg = tm.sessions_registry()
        one = reg.open("t1", lambda t: SessionContext(key="t1"))
        two = reg.open("t2", lambda t: SessionContext(key="t2"))
        a = await tm.call("two_charts", {}, sessions=one)
        b = await tm.call("two_charts", {}, sessions=one)
        c = await tm.call("two_charts", {}, sessions=two)
        d = await tm.call("chart", {"width": 3, "height": 3}, sessions=one)
        assert a.ok and c.ok and d.ok and b.status is ToolStatus.tool_error
        assert "would total 4 images" in b.error and "max_per_trajectory=3" in b.error
        await one.aclose("answer")
        await two.aclose("answer")
    finally:
        await tm.aclose()
    no_orphans()

