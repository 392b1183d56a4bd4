"""examples/multimodal: the Pillow data preparation (rows the image tools can work on) and the recipe's
config check (CPU, offline, nothing started)."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from rlfactory_plugins.config import ToolManagerConfig
from rlfactory_plugins.tools.images import to_pil
from rlfactory_plugins.tools.manager import ToolManager
from rlfactory_plugins.tools.session import SessionContext
from rlfactory_tool_image import ImageOptions, tools

pd = pytest.importorskip("pandas", reason="examples/multimodal writes parquet: install rlfactory[verl]")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "multimodal"
SCRIPT = EXAMPLE / "train_qwen25vl_3b_grpo.sh"

pytestmark = pytest.mark.timeout(240)


def _colours() -> dict[str, tuple[int, int, int]]:
    """The example's colour table (examples/ is no package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("multimodal_prepare_data", EXAMPLE / "prepare_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.COLOURS


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("multimodal")
    done = subprocess.run([sys.executable, str(EXAMPLE / "prepare_data.py"), "--out", str(out), "--train", "4",
                           "--test", "2", "--size", "320x240"], capture_output=True, text=True, check=True)
    assert "train.parquet: 4 rows (code 2, colour 2), 320x240 pictures" in done.stdout
    assert "test.parquet: 2 rows (code 1, colour 1)" in done.stdout
    return out


def test_rows_hold_the_picture_in_the_prompt_and_for_the_tools(data: Path) -> None:
    train, test = (pd.read_parquet(data / f"{s}.parquet") for s in ("train", "test"))
    assert set(train.columns) == {"data_source", "prompt", "images", "ability", "reward_model", "extra_info",
                                  "agent_name"}
    row = train.iloc[0]
    (message,) = row["prompt"]
    assert message["role"] == "user" and message["content"].count("<image>") == len(row["images"]) == 1
    assert "image_crop" in message["content"] and "<answer>" in message["content"]
    png = row["images"][0]["bytes"]
    assert row["extra_info"]["rlfactory"]["tool_kwargs"]["image"]["image"]["bytes"] == png
    assert Image.open(io.BytesIO(png)).size == (320, 240)
    assert list(row["reward_model"]["ground_truth"]["target"]) == [row["extra_info"]["answer"]]
    assert row["agent_name"] == "rlfactory_agent"
    pictures = {r["images"][0]["bytes"] for frame in (train, test) for _, r in frame.iterrows()}
    assert len(pictures) == 6  # every row its own picture, none shared by the splits


async def test_the_image_tools_read_the_label_of_each_row(data: Path) -> None:
    """The row's image as the rollout hands it to the pack (tool_kwargs.image), cropped at its label box."""
    frame = pd.read_parquet(data / "train.parquet")
    async with ToolManager({t.name: t for t in tools(ImageOptions(max_side=448))}, ToolManagerConfig()) as manager:
        for i, row in frame.iterrows():
            info = row["extra_info"]
            kwargs = dict(info["rlfactory"]["tool_kwargs"]["image"])
            sessions = manager.sessions_registry().open(f"t{i}", lambda t, k=kwargs: SessionContext(
                key="t", kwargs=k, extra_info={}))
            x0, y0, x1, y1 = (int(v) for v in info["label_box"])
            result = await manager.call("image_crop", {"x0": x0, "y0": y0, "x1": x1 + 1, "y1": y1 + 1},
                                        sessions=sessions)
            await sessions.aclose("answer")
            assert result.ok, result.error
            crop = to_pil(result.images[0]).convert("RGB")
            colours = {c for _, c in crop.getcolors(maxcolors=100_000)}
            assert (255, 255, 255) in colours and (0, 0, 0) in colours  # the label: white box, black border/text
            if info["kind"] == "colour":
                assert _colours()[info["answer"]] in colours


def _check(*overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1"}  # the check must not need the hub (nor the weights)
    return subprocess.run(["bash", str(SCRIPT), "--check", *overrides], capture_output=True, text=True, env=env,
                          timeout=200)


def test_the_recipe_composes_and_checks_its_config_offline() -> None:
    pytest.importorskip("verl", reason="check-config composes verl's config: install rlfactory[verl]")
    done = _check()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tools ['image_crop', 'image_zoom']" in done.stdout and "rewards ['qa_em', 'qa_format']" in done.stdout
    assert "the model weights and the Qwen2.5-VL processor are not loaded" in done.stderr
    try:
        import qwen_vl_utils  # noqa: F401
    except ImportError:  # the check says what training would lack
        assert "pip install qwen-vl-utils" in done.stderr
    else:
        assert "qwen-vl-utils" not in done.stderr
    assert "could not register" not in done.stderr
    bad = _check("rlfactory.tool_manager.images.max_per_call=-1")  # the recipe's image limits are checked too
    assert bad.returncode == 2 and "max_per_call" in bad.stderr



@pytest.fixture(scope="module")
def vl_processor(tmp_path_factory):
    pytest.importorskip("verl", reason="verl's dataset: install rlfactory[verl]")
    from transformers import AutoProcessor

    from rlfactory_plugins.testing.tiny_vl_model import build_tiny_vl_model

    return AutoProcessor.from_pretrained(build_tiny_vl_model(tmp_path_factory.mktemp("tiny_vl") / "m"),
                                         trust_remote_code=True)


def _dataset(data: Path, processor, tmp_path: Path, filter_overlong: bool):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    config = OmegaConf.create({"image_key": "images", "max_prompt_length": 2048, "return_raw_chat": True,
                               "filter_overlong_prompts": filter_overlong, "cache_dir": str(tmp_path / "cache")})
    return RLHFDataset([str(data / "train.parquet")], processor.tokenizer, config, processor)


def test_verls_dataset_gives_the_row_image_to_a_vl_processor(data: Path, vl_processor, tmp_path: Path) -> None:
    """verl's RLHFDataset (what main_ppo builds from data.train_files) with a real Qwen2-VL processor (the offline
    tiny one): the row's <image> becomes an image part of the raw prompt, and the processor expands it to the
    image tokens of its grid."""
    from rlfactory_plugins.testing.tiny_vl_model import MERGE_SIZE

    item = _dataset(data, vl_processor, tmp_path, filter_overlong=False)[0]
    (message,) = item["raw_prompt"]
    image, text = message["content"]
    assert image["type"] == "image" and image["image"].size == (320, 240)
    assert text["type"] == "text" and "four-character code" in text["text"]
    prompt = vl_processor.apply_chat_template(item["raw_prompt"], tokenize=False, add_generation_prompt=True)
    out = vl_processor(text=[prompt], images=[image["image"].convert("RGB")], return_tensors="pt")
    t, h, w = out["image_grid_thw"][0].tolist()
    assert out["input_ids"][0].tolist().count(vl_processor.image_token_id) == t * h * w // MERGE_SIZE**2 > 0


def test_verls_length_filter_needs_qwen_vl_utils(data: Path, vl_processor, tmp_path: Path) -> None:
    """data.filter_overlong_prompts=true (the recipe's) measures image rows with qwen_vl_utils
    (verl/utils/dataset/rl_dataset.py, _process_multi_modal_info): with it every row is kept; without it verl
    counts every image row as too long and drops it, which is why the script refuses to train without it."""
    kept = len(_dataset(data, vl_processor, tmp_path, filter_overlong=True))
    try:
        import qwen_vl_utils  # noqa: F401
    except ImportError:
        assert kept == 0
    else:
        assert kept == 4
