"""CPU mode: run verl's own trainer on a machine without an accelerator.

``activate()`` is called at ``import verl`` time (verl's ``verl.plugins`` entry
point) in the driver and in every Ray worker.  In CPU mode it registers

* a verl platform named ``cpu`` (:mod:`rlfactory_plugins.verl.cpu.platform`),
* a transformers rollout backend under ``hf`` and, in CPU mode only, also under
  ``vllm`` and ``sglang`` so the GPU launch line works unchanged
  (:mod:`rlfactory_plugins.verl.cpu.server`, :mod:`rlfactory_plugins.verl.cpu.rollout`),
* a gloo checkpoint engine under ``nccl`` and ``gloo``, so a separate rollout (verl's fully-async
  trainer) receives the trainer's weights (:mod:`rlfactory_plugins.verl.cpu.checkpoint_engine`),
* the narrow verl patches in :mod:`rlfactory_plugins.verl.cpu.patches`,
* ``VERL_ENGINE_DEVICE=cuda`` (verl registers its FSDP engine for cuda/npu only;
  FSDP2 itself runs on CPU with gloo).

The OmegaConf resolvers ``rlfactory_on_cpu`` / ``rlfactory_cpu_mode`` / ``rlfactory_cpu_ray_gpus`` are registered
in every mode (config files reference them); on a GPU host they return the GPU value.

``RLFACTORY_CPU``: ``auto`` (default) = CPU mode iff this host has no accelerator;
``1`` = force on; ``0`` = force off.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from typing import Any

from rlfactory_plugins.verl.cpu.errors import CPUBackendError

__all__ = ["CPUBackendError", "activate", "cpu_mode_requested", "is_active", "ENV_VAR"]

logger = logging.getLogger(__name__)

ENV_VAR = "RLFACTORY_CPU"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

_lock = threading.Lock()
_active: bool | None = None
_resolvers_registered = False
_rollout_warning_done = False


def _accelerator_present() -> bool:
    """Cheap check for any accelerator on this host, including ones this process cannot see.

    A Ray actor with no GPU assigned sees ``torch.cuda.is_available() == False`` on a GPU
    host (empty ``CUDA_VISIBLE_DEVICES``), so device nodes / SMI tools count as well.
    """
    import torch

    if torch.cuda.is_available():
        return True
    if getattr(torch, "npu", None) is not None:
        try:
            if torch.npu.is_available():
                return True
        except Exception:  # torch_npu half-installed: treat as absent
            pass
    if torch.version.cuda is not None and (os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi")):
        return True
    if torch.version.hip is not None and os.path.exists("/dev/kfd"):
        return True
    return False


def cpu_mode_requested() -> bool:
    """Whether CPU mode should be on in this process (env ``RLFACTORY_CPU`` + accelerator check)."""
    value = os.environ.get(ENV_VAR, "auto").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value not in ("", "auto"):
        raise CPUBackendError(f"{ENV_VAR}={value!r} is not understood; use 'auto', '1' or '0'")
    return not _accelerator_present()


def is_active() -> bool:
    """Whether :func:`activate` turned CPU mode on in this process."""
    return bool(_active)


# -- OmegaConf resolvers ---------------------------------------------------------


def _on_cpu(gpu_value: Any, cpu_value: Any) -> Any:
    """``${rlfactory_on_cpu:GPU_VALUE,CPU_VALUE}``: the second value in CPU mode, else the first."""
    on = _active if _active is not None else cpu_mode_requested()
    return cpu_value if on else gpu_value


def _cpu_mode() -> bool:
    """``${rlfactory_cpu_mode:}``: true in CPU mode."""
    return bool(_active if _active is not None else cpu_mode_requested())


def _ray_gpus(*, _root_: Any) -> int:
    """``${rlfactory_cpu_ray_gpus:}``: the "GPU"s Ray is given in CPU mode (verl's resource pools count
    GPUs only). The trainer's, plus, under verl's fully-async trainer (its top-level ``rollout:`` section),
    the separate rollout's ``rollout.nnodes x rollout.n_gpus_per_node``."""
    trainer = _root_.trainer
    gpus = int(trainer.n_gpus_per_node) * int(trainer.get("nnodes", 1) or 1)
    rollout = _root_.get("rollout") if "async_training" in _root_ else None
    if rollout is not None:
        gpus += int(rollout.nnodes) * int(rollout.n_gpus_per_node)
    return gpus


def register_resolvers() -> None:
    global _resolvers_registered
    if _resolvers_registered:
        return
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("rlfactory_on_cpu", _on_cpu, replace=True)
    OmegaConf.register_new_resolver("rlfactory_cpu_mode", _cpu_mode, replace=True)
    OmegaConf.register_new_resolver("rlfactory_cpu_ray_gpus", _ray_gpus, replace=True)
    _resolvers_registered = True


# -- registrations -----------------------------------------------------------------

#: rollout names served by the transformers backend in CPU mode.
SERVED_ROLLOUT_NAMES = ("hf", "vllm", "sglang")


def _replica_loader(name: str):
    def load():
        global _rollout_warning_done
        from rlfactory_plugins.verl.cpu.rollout import HFReplica

        if name != "hf" and not _rollout_warning_done:
            _rollout_warning_done = True
            logger.warning(
                "rlfactory CPU mode: actor_rollout_ref.rollout.name=%r is served by the transformers "
                "CPU backend (no accelerator on this host; set %s=0 to disable CPU mode)",
                name,
                ENV_VAR,
            )

        class _Replica(HFReplica):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, rollout_name=name, **kwargs)

        _Replica.__name__ = _Replica.__qualname__ = f"HFReplica_{name}"
        return _Replica

    return load


def _register_platform() -> None:
    from verl.plugin.platform import PlatformRegistry, platform_manager

    from rlfactory_plugins.verl.cpu.platform import PLATFORM_NAME, PlatformCPU

    if PlatformRegistry.get(PLATFORM_NAME) is not PlatformCPU:
        PlatformRegistry.register(PLATFORM_NAME)(PlatformCPU)
    current = platform_manager._current_platform
    if current is not None and not isinstance(current, PlatformCPU) and not current.is_available():
        # Something asked for the platform before this plugin loaded and got the
        # "nvidia" fallback; replace it (only when that platform is unusable here).
        platform_manager.set_platform(PlatformCPU())


def _register_rollout() -> None:
    from verl.workers.rollout import base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    for name in SERVED_ROLLOUT_NAMES:
        rollout_base._ROLLOUT_REGISTRY[(name, "async")] = "rlfactory_plugins.verl.cpu.rollout.HFServerAdapter"
        RolloutReplicaRegistry.register(name, _replica_loader(name))


def _register_checkpoint_engine() -> None:
    from rlfactory_plugins.verl.cpu import checkpoint_engine

    checkpoint_engine.register()


def activate() -> bool:
    """Turn CPU mode on if requested (see module doc); idempotent. Returns whether it is on."""
    global _active
    with _lock:
        register_resolvers()
        if _active is not None:
            return _active
        if not cpu_mode_requested():
            _active = False
            return False
        from rlfactory_plugins.verl import compat
        from rlfactory_plugins.verl.cpu import patches

        if not patches.verl_version_supported():
            raise CPUBackendError(
                f"rlfactory CPU mode was written against verl {compat.SUPPORTED}, found verl "
                f"{compat.installed_version()}; install a supported verl or set {ENV_VAR}=0"
            )
        compat.require(__name__)  # the private verl names the registrations below touch
        compat.require(patches.__name__)
        # verl registers its FSDP engine for device "cuda"/"npu" only; FSDP2 + gloo runs on CPU.
        os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")
        # Workers inherit the decision even if their own accelerator check would differ.
        os.environ[ENV_VAR] = "1"
        _register_platform()
        patches.patch_process_group_backend()
        _register_rollout()
        _register_checkpoint_engine()
        _active = True
        return True
