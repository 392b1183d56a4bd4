"""The transformers rollout backend's verl side, for hosts without vLLM/SGLang.

* :class:`HFReplica` — the ``RolloutReplica`` that launches one
  :class:`~rlfactory_plugins.verl.cpu.server.HFRolloutServer` per replica (registered in
  ``RolloutReplicaRegistry``).
* :class:`HFServerAdapter` — the in-worker ``BaseRollout`` (registered in
  ``_ROLLOUT_REGISTRY``) that receives the trainer's weights after every update
  and ships them to the server.

Colocated ("hybrid") training (verl's sync trainers) and a separate ("standalone") rollout fed by a
checkpoint engine (the fully-async trainer; :mod:`rlfactory_plugins.verl.cpu.checkpoint_engine`) are
exercised by the tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, AsyncIterator, Generator, Optional

import ray
import torch
from torch.distributed.device_mesh import DeviceMesh
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutReplica

from rlfactory_plugins.verl.cpu.errors import CPUBackendError

logger = logging.getLogger(__name__)
from rlfactory_plugins.verl.cpu.server import HFRolloutServer, server_actor_name


class HFReplica(RolloutReplica):
    """One :class:`HFRolloutServer` per replica, placed on the node of its first worker."""

    def __init__(self, *args: Any, rollout_name: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.nnodes != 1:
            raise CPUBackendError(
                f"the transformers rollout runs a replica on one node; got nnodes={self.nnodes} "
                f"(world_size={self.world_size}, gpus_per_node={self.gpus_per_node}). Lower "
                "actor_rollout_ref.rollout.tensor_model_parallel_size"
            )
        self.rollout_name = rollout_name or self.config.name or "hf"
        self.server_class = ray.remote(HFRolloutServer)

    async def launch_servers(self) -> None:
        if self.workers:
            node_id = await self.workers[0].__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
        else:
            node_id = ray.get_runtime_context().get_node_id()
        if self.is_reward_model:
            middle = "reward_"
        elif self.is_teacher_model:
            middle = "teacher_"
        else:
            middle = ""
        name = f"{self.rollout_name}_server_{middle}{self.replica_rank}_0{self.name_suffix}"
        server = self.server_class.options(
            scheduling_strategy=ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                node_id=node_id, soft=False
            ),
            name=name,
            num_cpus=0,
            max_concurrency=self.max_concurrency,
        ).remote(
            config=self.config,
            model_config=self.model_config,
            replica_rank=self.replica_rank,
            node_rank=0,
        )
        await server.launch_server.remote()
        self.servers = [server]
        self._server_handle = server
        self._server_address = await server.get_server_address.remote()

    def rollout_worker_use_gpu(self) -> bool:
        return True

    async def sleep(self) -> None:
        await asyncio.gather(*[s.sleep.remote() for s in self.servers])

    async def abort_request(self, request_id: str) -> dict:
        results = await asyncio.gather(*[s.abort_request.remote(request_id) for s in self.servers])
        return results[0] if results else {"aborted": False, "request_id": request_id}


class HFServerAdapter(BaseRollout):
    """In-worker rollout handle: forwards trainer weights to this replica's server.

    ``get_per_tensor_param`` yields ``DTensor.full_tensor()`` results, which is a
    collective, so every rank iterates the whole generator; only the replica's
    first rank keeps the tensors and sends them.
    """

    def __init__(
        self,
        config: RolloutConfig,
        model_config: HFModelConfig,
        device_mesh: DeviceMesh,
        replica_rank: int = -1,
    ) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        rollout_world_size = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.rollout_rank = rank % rollout_world_size
        self.server_handle = None

    def _server(self):
        if self.rollout_rank != 0:
            return None
        if self.server_handle is None:
            name = server_actor_name(self.config.name or "hf", self.replica_rank)
            self.server_handle = ray.get_actor(name)
        return self.server_handle

    async def resume(self, tags: list[str]) -> None:
        server = self._server()
        if server is not None and self.config.free_cache_engine:
            await server.wake_up.remote(tags=tags)

    async def release(self) -> None:
        server = self._server()
        if server is not None and self.config.free_cache_engine:
            await server.sleep.remote()

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None] | AsyncIterator[tuple[str, torch.Tensor]],
        global_steps: Optional[int] = None,
        wire_format: str = "named_tensors",
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise CPUBackendError(
                f"the transformers rollout takes full weights (wire_format='named_tensors'), got "
                f"{wire_format!r}; set actor_rollout_ref.rollout.checkpoint_engine.backend to naive (a colocated "
                "rollout) or gloo (a separate one)"
            )
        if kwargs.get("peft_config") is not None:
            raise CPUBackendError(
                "the transformers rollout cannot load LoRA adapters separately; set "
                "actor_rollout_ref.model.lora.merge=True so merged weights are synced"
            )
        start = time.time()
        keep = self.rollout_rank == 0
        named: list[tuple[str, torch.Tensor]] = []
        # Drain the generator on every rank: each item may be a collective all-gather. verl's
        # checkpoint engines (a separate rollout, the fully-async trainer) yield asynchronously.
        if hasattr(weights, "__aiter__"):
            async for name, tensor in weights:  # type: ignore[attr-defined]
                if keep:
                    named.append((name, tensor.detach().to("cpu", copy=True)))
        else:
            for name, tensor in weights:
                if keep:
                    named.append((name, tensor.detach().to("cpu", copy=True)))
        server = self._server()
        if server is not None:
            await server.load_weights.remote(named, global_steps)
            if self.replica_rank == 0:
                logger.info("transformers rollout: %d tensors synced in %.2fs", len(named), time.time() - start)
