"""rlfactory's conformance suite, run on the installed pack (entry point ``image``) for each tool."""

import base64
import io

from PIL import Image

from rlfactory_plugins.testing import ToolPackTests


def _png_base64(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


# without a trajectory the manager runs a one-shot session: it opens the image of the 'image' option
OPTIONS = {"image": _png_base64(64, 48)}


class TestImageCrop(ToolPackTests):
    entry_point = "image"
    tool_name = "image_crop"
    tool_options = OPTIONS
    valid_arguments = {"x0": 8, "y0": 4, "x1": 40, "y1": 20}
    invalid_arguments = {"x0": 8, "y0": 4, "x1": 40}
    expected_in_output = "crop (8, 4)-(40, 20) of the 64x48 image:\n[image 32x16 png]"


class TestImageZoom(ToolPackTests):
    entry_point = "image"
    tool_name = "image_zoom"
    tool_options = OPTIONS
    valid_arguments = {"x": 32, "y": 24, "factor": 2}
    invalid_arguments = {"x": 32, "y": 24, "factor": 0.5}
    expected_in_output = "[image 64x48 png]"


class TestImageRotate(ToolPackTests):
    entry_point = "image"
    tool_name = "image_rotate"
    tool_options = OPTIONS
    valid_arguments = {"degrees": 90}
    invalid_arguments = {"degrees": "ninety"}
    expected_in_output = "rotated 90 degrees of the 64x48 image:\n[image 48x64 png]"
