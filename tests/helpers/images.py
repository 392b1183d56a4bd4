"""Shared pieces of the image-observation tests (tests/rollout/test_image_observations.py, test_vl_*.py):
a row image, hermes calls, the rlfactory section of the image pack, a server recording the images each
generation got, and the agent loop built for a vision-language processor. Needs Pillow (import it after
the tests' ``importorskip`` of the image pack)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image
from verl.experimental.agent_loop.agent_loop import DictConfigWrap

from rlfactory_plugins.verl.agent_loop import RLFactoryAgentLoop
from tests.helpers.rollout import ScriptedServer, spans


def row_image(width: int = 80, height: int = 60) -> str:
    buf = io.BytesIO()
    im = Image.new("RGB", (width, height), (250, 120, 0))
    im.paste((0, 0, 0), (0, 0, 10, 10))
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def call(name: str, **arguments: object) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {json.dumps(arguments)}}}</tool_call>'


def image_section(tmp_path: Path, **images: int) -> dict:
    return {"tools": ["image_zoom", "image_crop"], "parser": "hermes", "trajectory_dir": str(tmp_path),
            "tool_manager": {"retries": 0, "images": images}}


ROW = {"extra_info": {"rlfactory": {"tool_kwargs": {"image": {"image": row_image()}}}}}


class RecordingServer(ScriptedServer):
    """The scripted server, also recording the images each generation was given."""

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, **kw):
        out = await super().generate(request_id, prompt_ids=prompt_ids, sampling_params=sampling_params, **kw)
        self.calls[-1]["images"] = list(image_data or [])
        return out


def vl_loop(server, processor, section: dict, tools: Any = None) -> RLFactoryAgentLoop:
    config = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": 2048}},
        "data": {"continuous_token": {"enable": False}},
        "rlfactory": section,
    })
    return RLFactoryAgentLoop(
        trainer_config=DictConfigWrap(config), server_manager=server, tokenizer=processor.tokenizer,
        processor=processor, dataset_cls=None, data_config=DictConfigWrap(config.data), hf_model_type="qwen2_vl",
        tools=tools,
    )


def runs(ids: list[int], token: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of ``token`` in ``ids``."""
    return spans([0 if t == token else 1 for t in ids], 0)
