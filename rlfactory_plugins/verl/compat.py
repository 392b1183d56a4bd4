"""The verl versions and verl names the adapter is written against, checked when it is imported.

Every module of :mod:`rlfactory_plugins.verl` that touches verl calls :func:`require` with its
own name before its verl imports: each verl name it uses (the private ones above all, which
verl may rename in any release) is looked up, and a missing one raises
:class:`~rlfactory_plugins.errors.VerlCompatError` naming the installed verl, the name, the
rlfactory module that needs it and the supported range, instead of an ``AttributeError`` deep
inside a Ray worker. ``python -m rlfactory_plugins.verl.compat`` checks every name at once
(the first thing to run against a new verl; see docs/verl-boundary.md).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from rlfactory_plugins.errors import VerlCompatError

__all__ = ["SUPPORTED", "PRIVATE_NAMES", "PUBLIC_NAMES", "INSTANCE_ATTRIBUTES", "VerlCompatError", "require"]

#: the verl releases the adapter was checked against (a packaging specifier)
SUPPORTED = ">=0.9.0,<0.10"

_PKG = "rlfactory_plugins.verl."


@dataclass(frozen=True)
class VerlName:
    """``module`` + ``attr`` (a dotted path inside it), used by the adapter module ``used_by``."""

    module: str
    attr: str
    used_by: str
    why: str
    #: only checked when verl has already imported ``module`` (a binding patched only if loaded)
    if_loaded: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.attr}"


_AL = "verl.experimental.agent_loop.agent_loop"
_TQ = "verl.trainer.ppo.v1.agent_loop_tq"
_RB = "verl.trainer.ppo.v1.replay_buffer"
_W, _WTQ, _OS, _CPU, _PATCH = (_PKG + m for m in ("worker", "worker_tq", "oversample", "cpu", "cpu.patches"))
_RB_WHY = "over-sampling drives verl's replay buffer through it"
_VT = _PKG + "verl_tools"
_TB, _TM = "verl.trainer.ppo.v1.trainer_base", _PKG + "training_metrics"
_AC = _PKG + "advantage_context"
_CE, _CKPT = "verl.checkpoint_engine.base", _PKG + "cpu.checkpoint_engine"
_FA = "verl.experimental.fully_async_policy.fully_async_rollouter"

#: verl's private (underscore) or internal names the adapter reads, overrides or patches
PRIVATE_NAMES: tuple[VerlName, ...] = (
    VerlName(_AL, "_agent_loop_registry", _W, "agent name -> loop entry, read to share loop objects"),
    VerlName(_AL, "AgentLoopWorker._run_agent_loop", _W, "overridden: shareable loops run on one object"),
    VerlName(_AL, "AgentLoopWorker._agent_loop_postprocess", _W, "called on a shared loop's output"),
    VerlName(_AL, "AgentLoopWorker._postprocess", _W, "extended: rm_scores carry per-turn rewards (turn_grpo)"),
    VerlName(_AL, "DictConfigWrap", _W, "wraps the configs a loop is built with, as verl does"),
    VerlName(_AL, "ToolListWrap", _W, "wraps the tool list a loop is built with, as verl does"),
    VerlName(_AL, "AgentLoopBase._cap_text_prompt_length", _PKG + "agent_loop", "caps a prompt rendered by rlfactory"),
    VerlName(_TQ, "AgentLoopWorkerTQ.__ray_actor_class__", _WTQ, "the class under verl's @ray.remote, subclassed"),
    VerlName(_TB, "PPOTrainer._compute_metrics", _TM, "extended: rlfactory's batch metrics join the step's"),
    VerlName(_TB, "TRAINER_REGISTRY", _TM, "trainer_mode -> class, each replaced by a subclass adding the metrics"),
    VerlName(_TB, "PPOTrainer._compute_advantage", _AC, "extended: rlfactory's estimators get options, branch records"),
    VerlName(_TB, "TRAINER_REGISTRY", _AC, "trainer_mode -> class, each replaced by a subclass adding that"),
    VerlName(_RB, "ReplayBuffer._sync_metadata_from_transfer_queue", _OS, _RB_WHY),
    VerlName(_RB, "ReplayBuffer._select_prompt_uids", _OS, _RB_WHY),
    VerlName(_RB, "ReplayBuffer._materialize_batch", _OS, _RB_WHY),
    VerlName(_RB, "ReplayBuffer._clear_groups", _OS, _RB_WHY),
    VerlName(_RB, "ReplayBuffer._wait_for_next_poll", _OS, _RB_WHY),
    VerlName(_RB, "ReplayBuffer._metrics_prefix", _OS, _RB_WHY),
    VerlName("verl.plugin.platform.platform_manager", "_current_platform", _CPU, "replaced when it fell back to cuda"),
    VerlName("verl.workers.rollout.base", "_ROLLOUT_REGISTRY", _CPU, "the CPU rollout registered under hf/vllm/sglang"),
    VerlName("verl.utils.distributed", "initialize_global_process_group_ray", _PATCH, "wrapped: de-duplicated backend"),
    VerlName("verl.utils.distributed", "get_device_name", _PATCH, "builds the backend string as verl does"),
    VerlName("verl.utils.distributed", "get_nccl_backend", _PATCH, "builds the backend string as verl does"),
    VerlName(
        "verl.workers.engine_workers", "initialize_global_process_group_ray", _PATCH,
        "its by-name import is re-bound to the wrapper", if_loaded=True,
    ),
    VerlName(
        _FA, "FullyAsyncAgentLoopManager", _PKG + "fully_async",
        "replaced by a subclass starting rlfactory's workers (the rollouter builds its manager by this name)",
    ),
    VerlName(_FA, "FullyAsyncRollouter._init_async_rollout_manager", _PKG + "fully_async", "the reader of that name"),
    VerlName(
        "verl.experimental.separation.ray_trainer", "SeparateRayPPOTrainer._fit_collect_metrics",
        _PKG + "fully_async_metrics", "wrapped: rlfactory's batch metrics join the fully-async trainer's step metrics",
    ),
    VerlName(_CE, "split_weight_chunks", _CKPT, "cuts the weights into broadcast buckets as verl's engines do"),
    VerlName(_CE, "merge_weight_chunks", _CKPT, "rebuilds the weights from the buckets as verl's engines do"),
)

#: verl's public names the adapter uses (checked the same way; listed in docs/verl-boundary.md)
PUBLIC_NAMES: tuple[VerlName, ...] = (
    VerlName(_AL, "AgentLoopBase", _PKG + "agent_loop", "base class of rlfactory_agent"),
    VerlName(_AL, "AgentLoopBase.ct_build_initial_tokens", _PKG + "agent_loop", "renders the first prompt"),
    VerlName("verl.utils.tokenizer", "normalize_token_ids", _PKG + "agent_loop", "prompt ids without verl's builder"),
    VerlName(
        "verl.utils.tokenizer.chat_template", "apply_chat_template", _PKG + "agent_loop",
        "renders the prompt where verl 0.9.0 builds no continuous-token builder",
    ),
    VerlName(_AL, "AgentLoopOutput", _PKG + "rows", "what a loop returns"),
    VerlName(_AL, "AgentLoopMetrics", _PKG + "rows", "timings a loop returns"),
    VerlName(
        _AL, "AgentLoopOutput.as_dict", _PKG + "turn_rewards",
        "extended: the V1 worker's rm_scores carry per-turn rewards (rlfactory_turn_grpo)",
    ),
    VerlName(_AL, "register", _PKG + "agent_loop", "registers rlfactory_agent"),
    VerlName(_AL, "AgentLoopWorker", _W, "the worker rlfactory's extends"),
    VerlName(_AL, "AgentLoopManager", _W, "the manager rlfactory's extends"),
    VerlName(_AL, "AgentLoopManager.create", _W, "how verl's trainers build the manager"),
    VerlName("verl.utils.rollout_trace", "rollout_trace_attr", _W, "traces a shared loop's trajectory as verl does"),
    VerlName(_TQ, "AgentLoopWorkerTQ", _WTQ, "the V1 trainer's worker"),
    VerlName(_TQ, "AgentLoopManagerTQ", _WTQ, "the V1 trainer's manager"),
    VerlName(_RB, "ReplayBuffer", _OS, "base class of the over-sampling buffer"),
    VerlName(_RB, "ReplayBuffer.sample", _OS, "the method over-sampling overrides"),
    VerlName(_RB, "ReplayBufferAsync", _PKG + "recycle", "base class of the recycling buffer"),
    VerlName(_RB, "ReplayBufferAsync.sample", _PKG + "recycle", "extended: recycling metrics"),
    VerlName(
        "verl.trainer.ppo.v1.trainer_colocate_async", "PPOTrainerColocateAsync", _PKG + "recycle",
        "trainer_mode=colocate_async, which rlfactory.rollout.recycle selects",
    ),
    VerlName("verl", "DataProto", _PKG + "reward_manager", "the reward loop's batch"),
    VerlName(
        "verl.experimental.reward_loop.reward_manager.base", "RewardManagerBase", _PKG + "reward_manager",
        "base class of the rlfactory reward manager",
    ),
    VerlName(
        "verl.experimental.reward_loop.reward_manager.registry", "register", _PKG + "reward_manager",
        "registers the rlfactory reward manager",
    ),
    VerlName("verl.utils.reward_score", "default_compute_score", _PKG + "reward_manager", "the fallback reward"),
    VerlName(
        "verl.trainer.ppo.core_algos", "register_adv_est", _PKG + "estimators",
        "registers rlfactory_turn_grpo and rlfactory_branch_grpo",
    ),
    VerlName("verl.tools.base_tool", "BaseTool", _VT, "verl's stateful tools (create/execute/calc_reward/release)"),
    VerlName("verl.tools.function_tool", "FunctionTool", _VT, "verl's @function_tool tools"),
    VerlName("verl.tools.function_tool", "normalize_function_tool_return", _VT, "a function tool's return, as verl reads it"),
    VerlName("verl.tools.tool_registry", "load_all_tools", _VT, "loads multi_turn.tool_config_path/function_tool_path"),
    VerlName("verl.plugin.platform", "PlatformRegistry", _CPU, "registers the cpu platform"),
    VerlName("verl.plugin.platform.platform_manager", "set_platform", _CPU, "installs the cpu platform"),
    VerlName("verl.plugin.platform", "PlatformBase", _PKG + "cpu.platform", "base class of the cpu platform"),
    VerlName("verl.workers.rollout.replica", "RolloutReplicaRegistry", _CPU, "registers the CPU rollout replica"),
    VerlName("verl.workers.rollout.replica", "RolloutReplica", _PKG + "cpu.rollout", "base class of HFReplica"),
    VerlName("verl.workers.rollout.replica", "TokenOutput", _PKG + "cpu.server", "what generate returns"),
    VerlName("verl.workers.rollout.base", "BaseRollout", _PKG + "cpu.rollout", "base class of HFServerAdapter"),
    VerlName("verl.workers.config", "HFModelConfig", _PKG + "cpu.rollout", "the rollout's model config"),
    VerlName("verl.workers.config", "RolloutConfig", _PKG + "cpu.rollout", "the rollout config"),
    VerlName(_CE, "CheckpointEngine", _CKPT, "base class of the gloo checkpoint engine"),
    VerlName(_CE, "CheckpointEngineRegistry", _CKPT, "registers it under nccl/gloo in CPU mode"),
    VerlName(_CE, "TensorMeta", _CKPT, "a chunk's layout in a bucket"),
)

#: attributes of verl objects read at run time, which exist only on instances (not checkable at
#: import; covered by tests/verl/test_oversample.py, tests/verl/test_shared_loops.py, tests/e2e)
INSTANCE_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "AgentLoopBase (agent_loop)": ("config", "rollout_config", "tokenizer", "apply_chat_template_kwargs",
                                   "server_manager", "loop", "continuous_token_builder (None on verl 0.9.0)"),
    "AgentLoopWorker (worker)": ("config", "llm_client", "tokenizer", "processor", "dataset_cls", "tools",
                                 "hf_model_type (verl 0.9.1 only)"),
    "AgentLoopManager (worker_tq, oversample, fully_async)": ("agent_loop_workers_class", "agent_loop_workers"),
    "ReplayBuffer (oversample)": ("sampler_kwargs", "trainer_mode", "refill_fn", "finished_keys", "failure_keys",
                                  "pending_keys", "running_keys", "partitions"),
    "ReplayBufferAsync (recycle)": ("trainer_mode", "sampler_kwargs", "max_off_policy_threshold",
                                    "max_off_policy_strategy", "pending_keys", "running_keys", "finished_keys"),
    "RolloutReplica (cpu.rollout)": ("config", "model_config", "nnodes", "world_size", "gpus_per_node", "workers",
                                     "servers", "replica_rank", "name_suffix", "max_concurrency", "is_reward_model",
                                     "is_teacher_model", "_server_handle", "_server_address"),
    "TokenOutput (agent_loop)": ("num_preempted", "extra_fields"),
    "SeparateRayPPOTrainer (fully_async_metrics)": ("metrics",),
}


def installed_version() -> str:
    """The installed verl's version ('not installed' without verl)."""
    module = sys.modules.get("verl")  # also while ``import verl`` loads its plugins (rlfactory's entry point)
    version = getattr(module, "__version__", None)
    if version:
        return str(version)
    try:
        return metadata.version("verl")
    except metadata.PackageNotFoundError:
        return "not installed"


def version_supported(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed verl) is in :data:`SUPPORTED`."""
    try:
        parsed = Version((version or installed_version()).split("+")[0])
    except InvalidVersion:
        return False
    return SpecifierSet(SUPPORTED).contains(parsed, prereleases=True)


def _present(name: VerlName) -> bool:
    if name.if_loaded and name.module not in sys.modules:
        return True
    try:
        node: object = importlib.import_module(name.module)
    except ModuleNotFoundError as e:
        if e.name and (e.name == name.module or name.module.startswith(e.name + ".")):
            return False  # verl moved or removed the module
        raise  # a dependency of verl is missing: not a version question, keep its own error
    for part in name.attr.split("."):
        if not hasattr(node, part):
            return False
        node = getattr(node, part)
    return True


def missing(names: tuple[VerlName, ...] | list[VerlName] | None = None) -> list[VerlName]:
    """The names of ``names`` (default: every listed name) the installed verl lacks."""
    return [n for n in (names if names is not None else (*PRIVATE_NAMES, *PUBLIC_NAMES)) if not _present(n)]


def message(gone: list[VerlName]) -> str:
    lines = [f"{n.qualname} (used by {n.used_by}: {n.why})" for n in gone]
    return (
        f"verl {installed_version()} lacks " + "; ".join(lines) + f". rlfactory supports verl {SUPPORTED}: "
        f"install one (pip install 'verl{SUPPORTED}'), or see docs/verl-boundary.md to port the adapter; "
        "`python -m rlfactory_plugins.verl.compat` lists every name"
    )


def require(user: str) -> None:
    """Check every verl name the adapter module ``user`` uses; raise :class:`VerlCompatError` if one is gone."""
    gone = missing([n for n in (*PRIVATE_NAMES, *PUBLIC_NAMES) if n.used_by == user])
    if gone:
        raise VerlCompatError(message(gone))


def main() -> int:
    """``python -m rlfactory_plugins.verl.compat``: check every name against the installed verl."""
    version = installed_version()
    supported = version_supported(version)
    print(f"verl {version}: {'in' if supported else 'OUTSIDE'} the supported range {SUPPORTED}")
    gone = set(missing())
    for title, names in (("private/internal", PRIVATE_NAMES), ("public", PUBLIC_NAMES)):
        print(f"\n{title} names:")
        for n in names:
            print(f"  {'MISSING' if n in gone else 'ok':8s}{n.qualname}  ({n.used_by.removeprefix(_PKG)})")
    print("\ninstance attributes (not checkable here; run the tests):")
    for owner, attrs in INSTANCE_ATTRIBUTES.items():
        print(f"  {owner}: {', '.join(attrs)}")
    if gone:
        print(f"\n{len(gone)} name(s) missing: {message(sorted(gone, key=lambda n: n.qualname))}", file=sys.stderr)
    return 1 if gone or not supported else 0


if __name__ == "__main__":
    raise SystemExit(main())
