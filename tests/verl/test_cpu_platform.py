"""CPU mode: activation rules, GPU hosts untouched, platform and rollout server behaviour."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rlfactory_plugins.verl.cpu as cpu
from rlfactory_plugins.verl.cpu.errors import CPUBackendError
from rlfactory_plugins.verl.cpu.patches import _dedupe_backend

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(cpu.ENV_VAR, raising=False)


def test_cuda_available_means_no_cpu_mode(fake_cuda):
    assert cpu.cpu_mode_requested() is False


def test_cuda_available_keeps_platform_detection(fake_cuda):
    from verl.plugin.platform import platform_manager

    from rlfactory_plugins.verl.cpu.platform import PlatformCPU

    # Even with the CPU platform registered, it declines and verl picks NVIDIA.
    assert PlatformCPU().is_platform_available(use_smi_check=True) is False
    monkeypatch_env = os.environ.pop("VERL_PLATFORM", None)
    try:
        assert platform_manager._detect_platform_name() == "nvidia"
    finally:
        if monkeypatch_env is not None:
            os.environ["VERL_PLATFORM"] = monkeypatch_env


def test_env_forces_mode(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(cpu.ENV_VAR, "1")
    assert cpu.cpu_mode_requested() is True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(cpu.ENV_VAR, "0")
    assert cpu.cpu_mode_requested() is False
    monkeypatch.setenv(cpu.ENV_VAR, "maybe")
    with pytest.raises(CPUBackendError, match="RLFACTORY_CPU='maybe'"):
        cpu.cpu_mode_requested()


_GPU_PROBE = r"""
import json, os, torch
torch.cuda.is_available = lambda: True          # pretend this host has a GPU
import verl                                      # loads plugins, which call activate()
import rlfactory_plugins.verl.cpu as cpu
active = cpu.activate()
from omegaconf import OmegaConf
from verl.plugin.platform import PlatformRegistry, platform_manager
from verl.workers.rollout import base
from verl.workers.rollout.replica import RolloutReplicaRegistry
cfg = OmegaConf.create({"g": "${rlfactory_on_cpu:null,2}", "u": "${rlfactory_on_cpu:8,1}"})
print(json.dumps({
    "active": active,
    "cpu_registered": "cpu" in PlatformRegistry.registered_names(),
    "detected": platform_manager._detect_platform_name(),
    "vllm_rollout": base._ROLLOUT_REGISTRY[("vllm", "async")],
    "hf_rollout": ("hf", "async") in base._ROLLOUT_REGISTRY,
    "vllm_replica_loader": RolloutReplicaRegistry._registry["vllm"].__module__,
    "engine_device": os.environ.get("VERL_ENGINE_DEVICE"),
    "resolved": [cfg.g, cfg.u],
}))
"""


def test_gpu_host_is_untouched_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k not in (cpu.ENV_VAR, "VERL_ENGINE_DEVICE", "VERL_PLATFORM")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    out = subprocess.run(
        [sys.executable, "-c", _GPU_PROBE], env=env, capture_output=True, text=True, timeout=180, check=True
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe == {
        "active": False,
        "cpu_registered": False,
        "detected": "nvidia",
        "vllm_rollout": "verl.workers.rollout.vllm_rollout.ServerAdapter",
        "hf_rollout": False,
        "vllm_replica_loader": "verl.workers.rollout.replica",
        "engine_device": None,
        "resolved": [None, 8],
    }


def test_backend_string_dedupe():
    assert _dedupe_backend("cpu:gloo,cpu:gloo") == "cpu:gloo"
    assert _dedupe_backend("cpu:gloo,cuda:nccl") == "cpu:gloo,cuda:nccl"


@pytest.mark.skipif(not cpu.cpu_mode_requested(), reason="this host has an accelerator")
def test_cpu_platform_when_active():
    assert cpu.activate() is True
    from verl.utils.device import get_device_id, get_device_name, get_nccl_backend, get_torch_device

    assert get_device_name() == "cpu"
    assert get_device_id() == "cpu"
    assert torch.zeros(1).to(get_device_id()).device.type == "cpu"
    assert get_nccl_backend() == "gloo"
    mod = get_torch_device()
    mod.empty_cache()
    mod.synchronize()
    free, total = mod.mem_get_info()
    assert total >= free >= 0
    state = mod.get_rng_state()
    mod.set_rng_state(state)
    from verl.workers.rollout.replica import get_rollout_replica_class

    assert get_rollout_replica_class("vllm").__name__ == "HFReplica_vllm"


def test_rollout_server_generates_with_matching_log_probs(tmp_path):
    from transformers import AutoModelForCausalLM
    from verl.workers.rollout.replica import TokenOutput

    from rlfactory_plugins.verl.cpu.server import HFRolloutServer
    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path / "m")
    config = {"dtype": "float32", "prompt_length": 32, "response_length": 12, "seed": 1, "temperature": 1.0}
    server = HFRolloutServer(config=config, model_config={"local_path": str(path)})
    server.launch_server()
    prompt = [5, 6, 7, 8]
    out = asyncio.run(
        server.generate(prompt_ids=prompt, sampling_params={"temperature": 1.0, "logprobs": True}, request_id="r")
    )
    assert isinstance(out, TokenOutput) and 1 <= len(out.token_ids) <= 12
    assert out.extra_fields["global_steps"] is None and out.stop_reason == "completed"
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    with torch.no_grad():
        logits = model(torch.tensor([prompt + out.token_ids])).logits[0, len(prompt) - 1 : -1]
    ref = torch.log_softmax(logits, -1).gather(-1, torch.tensor(out.token_ids)[:, None])[:, 0]
    assert torch.allclose(ref, torch.tensor(out.log_probs), atol=1e-4)

    # weight sync: zeroing the weights changes what the server computes
    named = [(k, torch.zeros_like(v)) for k, v in model.state_dict().items()]
    assert server.load_weights(named, global_steps=3) == len(named)
    out2 = asyncio.run(
        server.generate(prompt_ids=prompt, sampling_params={"temperature": 0, "logprobs": True}, request_id="r2")
    )
    assert out2.extra_fields["global_steps"] == 3
    assert out2.log_probs[0] == pytest.approx(-torch.log(torch.tensor(float(model.config.vocab_size))).item())
    with pytest.raises(CPUBackendError, match="does not have"):
        server.load_weights([("nope.weight", torch.zeros(1))])
