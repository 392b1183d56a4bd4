"""On a real CUDA host nothing of CPU mode activates (skipped on CPU machines).

Run on an H100 on 2026-11-25 (torch 2.11.0+cu130): cpu_mode_requested False, also with
CUDA_VISIBLE_DEVICES="" (a Ray actor given no GPU), activate() False, the `gpu` device
config on Hydra's search path, ${rlfactory_on_cpu:fsdp,fsdp2} -> fsdp.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_mode_stays_off_on_a_cuda_host():
    from rlfactory_plugins.verl import cpu

    assert cpu.cpu_mode_requested() is False
    assert cpu.activate() is False
    cfg = OmegaConf.create({"x": "${rlfactory_on_cpu:fsdp,fsdp2}"})
    assert OmegaConf.to_container(cfg, resolve=True) == {"x": "fsdp"}


def test_process_without_visible_gpus_on_a_cuda_host_is_not_cpu_mode():
    code = "from rlfactory_plugins.verl.cpu import cpu_mode_requested; print(cpu_mode_requested())"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_search_path_holds_the_empty_gpu_device_config():
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl

    from hydra_plugins.rlfactory_searchpath.rlfactory_searchpath import RLFactorySearchPathPlugin

    search_path = ConfigSearchPathImpl()
    RLFactorySearchPathPlugin().manipulate_search_path(search_path)
    assert search_path.get_path()[-1].path == "pkg://rlfactory_plugins.verl.hydra_config.gpu"
