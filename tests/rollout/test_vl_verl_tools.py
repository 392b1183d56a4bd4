"""verl's own tools returning images: a ``@function_tool``'s ``ToolResponse(image=[PIL])`` reaches rlfactory's tool
manager as images (typed, limited), so a vision-language model gets their image tokens and a text-only one reads
``[image WxH fmt]`` instead of verl's bare count."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.helpers.rollout import run_loop, traj_of
from tests.helpers.images import RecordingServer, call, runs, vl_loop

pytestmark = pytest.mark.timeout(120)

TOOL_FILE = '''
from PIL import Image
from verl.tools.function_tool import function_tool
from verl.tools.schemas import ToolResponse


@function_tool
def verl_picture(side: int) -> ToolResponse:
    """A square picture.

    Args:
        side: Its side in pixels.
    """
    return ToolResponse(text=f"picture {side}:", image=[Image.new("RGB", (side, side), (0, 0, side))])
'''


@pytest.fixture(scope="module")
def verl_tools(tmp_path_factory):
    from verl.tools.tool_registry import load_all_tools

    path = tmp_path_factory.mktemp("verl_tools") / "picture_tools.py"  # once: verl's registry refuses a second load
    path.write_text(TOOL_FILE)
    return SimpleNamespace(tools=load_all_tools(None, str(path)))  # what verl's worker hands the loop


@pytest.mark.parametrize("vision", [True, False])
async def test_a_verl_tool_response_image_is_a_typed_image(vl, verl_tools, tools_plugin, tmp_path, vision) -> None:  # noqa: F811
    tok = vl.tokenizer
    server = RecordingServer(tok, [call("verl_picture", side=56), "<answer>blue</answer>"])
    loop = vl_loop(server, vl, {"parser": "hermes", "tools": [], "trajectory_dir": str(tmp_path)}, tools=verl_tools)
    if not vision:
        loop.processor = None  # a text-only model
    out = await run_loop(loop)
    traj = traj_of(out)
    assert traj.stop_reason == "answer", traj.error
    (result,) = [c.result for c in traj.tool_calls]
    assert result.ok and [(i.width, i.height, i.mime_type) for i in result.images] == [(56, 56, "image/png")]
    seen = tok.decode(server.calls[1]["prompt_ids"])
    assert "picture 56:" in seen and "[image x 1]" not in seen
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    if vision:
        assert [b - a for a, b in runs(out.response_ids, pad)] == [4]  # 56x56: 2x2 merged patches
        assert [im.size for im in out.multi_modal_data["images"]] == [(56, 56)]
    else:
        assert "[image 56x56 png]" in seen and pad not in out.response_ids and out.multi_modal_data is None
