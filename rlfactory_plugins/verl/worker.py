"""rlfactory's agent-loop manager: verl's own, with workers that share loop objects.

``+plugins=rlfactory`` sets ``actor_rollout_ref.rollout.agent.agent_loop_manager_class`` to
:class:`AgentLoopManager` here, the extension point verl's trainers read. It creates verl's
manager (the TransferQueue one under the V1 trainer, the classic one otherwise: told apart
by ``transfer_queue.enable``, which the V1 task runner turns on) whose workers differ from
verl's in one method: a trajectory whose loop class is ``shared_across_trajectories`` runs
on one loop object per worker instead of a new ``hydra.utils.instantiate`` per trajectory
(see :mod:`rlfactory_plugins.verl.shared_loops`). Every other loop runs through verl's
unchanged code. To go back to verl's manager:
``actor_rollout_ref.rollout.agent.agent_loop_manager_class=null``.
"""

from __future__ import annotations

import sys
from typing import Any

from rlfactory_plugins.verl import compat

compat.require(__name__)  # verl's private names below: a clear error naming them if this verl lacks one

import hydra  # noqa: E402
import ray  # noqa: E402
from verl.experimental.agent_loop import agent_loop as verl_agent_loop  # noqa: E402
from verl.utils.rollout_trace import rollout_trace_attr  # noqa: E402

from rlfactory_plugins.rollout.runtime import cut_running  # noqa: E402
from rlfactory_plugins.verl.branch_setup import VALIDATING  # noqa: E402
from rlfactory_plugins.verl.shared_loops import SharedLoops  # noqa: E402
from rlfactory_plugins.verl.turn_rewards import rewrite_rm_scores, wanted  # noqa: E402


class SharedLoopWorker:
    """Mixed in before verl's worker class: replaces its ``_run_agent_loop`` for shareable loops."""

    _shared_loops: SharedLoops | None = None

    def _build_loop(self, entry: Any) -> Any:
        target = entry["_target_"]
        print(f"rlfactory: one shared {target} object serves this agent-loop worker", file=sys.stderr, flush=True)
        # the arguments verl's AgentLoopWorker._run_agent_loop passes
        return hydra.utils.instantiate(
            config=entry,
            trainer_config=verl_agent_loop.DictConfigWrap(config=self.config),
            server_manager=self.llm_client,
            tokenizer=self.tokenizer,
            processor=self.processor,
            hf_model_type=getattr(self, "hf_model_type", None),  # verl 0.9.0's worker has no hf_model_type
            dataset_cls=self.dataset_cls,
            data_config=verl_agent_loop.DictConfigWrap(self.config.data),
            tools=verl_agent_loop.ToolListWrap(self.tools),
        )

    async def _run_agent_loop(
        self, sampling_params: dict[str, Any], trajectory: dict[str, Any], *, agent_name: str, trace: bool = True,
        **kwargs: Any,
    ) -> Any:
        if self._shared_loops is None:
            self._shared_loops = SharedLoops(verl_agent_loop._agent_loop_registry, self._build_loop)
        loop = self._shared_loops.get(agent_name)
        if loop is None:
            return await super()._run_agent_loop(  # type: ignore[misc]
                sampling_params, trajectory, agent_name=agent_name, trace=trace, **kwargs
            )
        with rollout_trace_attr(
            step=trajectory["step"], sample_index=trajectory["sample_index"], rollout_n=trajectory["rollout_n"],
            validate=trajectory["validate"], name="agent_loop", trace=trace,
        ):
            VALIDATING.set(bool(trajectory["validate"]))  # this task's context only
            output = await loop.run(sampling_params, **kwargs)
            postprocess = self._agent_loop_postprocess  # type: ignore[attr-defined]
            return await postprocess(output, trajectory["validate"], **kwargs)


    async def rlfactory_cut_running(self, reason: str) -> int:
        """End every rlfactory trajectory running in this worker now, keeping its tokens
        (``stop_reason="deadline"``); how many. Called by the over-sampling replay buffer."""
        return cut_running(reason)


class ClassicAgentLoopWorker(SharedLoopWorker, verl_agent_loop.AgentLoopWorker):
    """verl's ``AgentLoopWorker`` (results returned as a ``DataProto``) sharing loop objects; with
    ``rlfactory_turn_grpo`` its ``rm_scores`` carry the per-turn rewards (:mod:`.turn_rewards`)."""

    def _postprocess(self, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        data = super()._postprocess(inputs, *args, **kwargs)
        if wanted(self.config) and "rm_scores" in data.batch.keys():
            rewrite_rm_scores(data.batch, inputs)
        return data


class ClassicAgentLoopManager(verl_agent_loop.AgentLoopManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.agent_loop_workers_class = ray.remote(ClassicAgentLoopWorker)
        super().__init__(*args, **kwargs)


def manager_class(config: Any) -> type:
    """The manager verl's trainer would use for ``config``, with rlfactory's workers."""
    transfer_queue = config.get("transfer_queue") if hasattr(config, "get") else None
    if transfer_queue is not None and transfer_queue.get("enable", False):
        from rlfactory_plugins.verl.worker_tq import TransferQueueAgentLoopManager  # needs transfer_queue

        return TransferQueueAgentLoopManager
    return ClassicAgentLoopManager


class AgentLoopManager:
    """The ``agent_loop_manager_class`` set by ``+plugins=rlfactory``; only ``create`` is called."""

    @classmethod
    def create(cls, *args: Any, config: Any, **kwargs: Any) -> Any:
        return manager_class(config).create(*args, config=config, **kwargs)
