"""A gloo checkpoint engine: the trainer's weights to a *separate* rollout on CPU.

verl's disaggregated trainers (the fully-async one, ``verl.experimental.fully_async_policy``) send
weights through a ``CheckpointEngine`` named by ``actor_rollout_ref.rollout.checkpoint_engine.backend``.
Their config defaults it to ``nccl`` (cupy, CUDA buffers), and verl's ``naive`` engine only updates
a rollout that lives in the trainer's own process. In CPU mode this engine is registered under
``nccl`` (as the transformers rollout is registered under ``vllm``: the GPU launch line works
unchanged) and under ``gloo``.

Per sync (verl's ``CheckpointEngineManager.update_weights`` calls ``prepare`` ->
``build_topology`` -> ``init_process_group`` -> ``send_weights``/``receive_weights`` -> ``finalize``):
trainer rank 0 opens a fresh ``TCPStore`` on a free port, it and every rollout worker form a fresh
gloo group over it, and rank 0 broadcasts the weights bucket by bucket (verl's own
``split_weight_chunks``/``merge_weight_chunks``), each bucket's layout published in the store first.
The other trainer ranks only walk the weight generator, since producing each full tensor is a
collective over the trainer's FSDP group.
"""

from __future__ import annotations

import logging
import pickle
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, AsyncGenerator, AsyncIterator, Iterable

from rlfactory_plugins.verl import compat

compat.require(__name__)  # split/merge_weight_chunks are verl-internal

import ray  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from verl.checkpoint_engine.base import (  # noqa: E402
    CheckpointEngine,
    CheckpointEngineRegistry,
    TensorMeta,
    merge_weight_chunks,
    split_weight_chunks,
)

from rlfactory_plugins.verl.cpu.errors import CPUBackendError  # noqa: E402

logger = logging.getLogger(__name__)

#: the backend names this engine is registered under in CPU mode
BACKEND_NAMES = ("nccl", "gloo")
#: NCCL engine options a GPU launch line may carry; meaningless here, accepted and ignored
_NCCL_OPTIONS = frozenset({"group_name", "rebuild_group", "rollout_dtype", "multi_sender"})


@dataclass
class _Bucket:
    """What a receiver needs to read one broadcast bucket."""

    length: int
    tensors: list[TensorMeta] = field(default_factory=list)
    is_last: bool = False


async def _walk(weights: Iterable[Any] | AsyncIterator[Any]) -> None:
    if hasattr(weights, "__aiter__"):
        async for _ in weights:  # type: ignore[union-attr]
            pass
    else:
        for _ in weights:  # type: ignore[union-attr]
            pass


class GlooCheckpointEngine(CheckpointEngine):
    """Trainer rank 0 broadcasts to the rollout workers over a fresh gloo group per sync."""

    wire_format = "named_tensors"

    def __init__(self, bucket_size: int, is_master: bool = False, timeout_s: float = 600.0, **options: Any) -> None:
        unknown = sorted(set(options) - _NCCL_OPTIONS)
        if unknown:
            raise CPUBackendError(
                f"the CPU (gloo) checkpoint engine takes bucket_size and timeout_s; got {unknown}. Remove them "
                "from actor_rollout_ref.rollout.checkpoint_engine.engine_kwargs"
            )
        self.bucket_size = int(bucket_size)
        self.is_master = is_master
        self.timeout = timedelta(seconds=timeout_s)
        self.rank: int | None = None
        self._store: dist.TCPStore | None = None
        self._group: Any = None
        self.syncs = 0

    # -- topology ------------------------------------------------------------------
    def prepare(self) -> dict[str, Any]:
        if not self.is_master:
            return {}
        host = ray.util.get_node_ip_address().strip("[]")
        # port 0: the OS picks a free one, so concurrent runs on one host never collide
        self._store = dist.TCPStore(host, 0, is_master=True, wait_for_workers=False, timeout=self.timeout)
        return {"host": host, "port": self._store.port}

    @classmethod
    def build_topology(
        cls, actor_wg_world_size: int, rollout_world_size: int, metadata: list[dict[str, Any]]
    ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        master = metadata[0]
        if not master.get("port"):
            raise CPUBackendError("trainer rank 0 did not open the weight-sync store (is_master was not set on it)")
        world = 1 + rollout_world_size
        common = {"world_size": [world], "host": [master["host"]], "port": [master["port"]]}
        actor = {k: v * actor_wg_world_size for k, v in common.items()}
        actor["rank"] = [0] + [-1] * (actor_wg_world_size - 1)
        rollout = {k: v * rollout_world_size for k, v in common.items()}
        rollout["rank"] = list(range(1, world))
        return actor, rollout

    def init_process_group(self, rank: int, world_size: int, host: str, port: int) -> None:
        self.rank = rank
        if rank < 0:
            return
        if rank > 0:
            self._store = dist.TCPStore(host, port, is_master=False, timeout=self.timeout)
        assert self._store is not None
        self._group = dist.ProcessGroupGloo(self._store, rank, world_size, self.timeout)

    def finalize(self) -> None:
        self._group = None
        self._store = None
        self.rank = None

    # -- transfer ------------------------------------------------------------------
    def _publish(self, index: int, bucket: _Bucket, data: torch.Tensor) -> None:
        assert self._store is not None
        self._store.set(f"bucket/{index}", pickle.dumps(bucket))
        self._group.broadcast(data, 0).wait()

    @torch.no_grad()
    async def send_weights(self, weights: Any, global_steps: int | None = None) -> dict[str, float]:
        if self.rank is None:
            raise CPUBackendError("send_weights() before init_process_group()")
        if self.rank < 0:
            await _walk(weights)
            return {}
        start = time.time()
        buffer = torch.empty(self.bucket_size, dtype=torch.uint8)
        bucket, index, sent = _Bucket(length=0), 0, 0
        async for meta, chunk in split_weight_chunks(weights, self.bucket_size):
            if bucket.length + meta.chunk_size > self.bucket_size:
                self._publish(index, bucket, buffer[: bucket.length])
                sent += bucket.length
                bucket, index = _Bucket(length=0), index + 1
            meta.offset = bucket.length
            buffer[bucket.length : bucket.length + meta.chunk_size] = chunk
            bucket.tensors.append(meta)
            bucket.length += meta.chunk_size
        bucket.is_last = True
        self._publish(index, bucket, buffer[: bucket.length])
        sent += bucket.length
        self.syncs += 1
        logger.info("gloo checkpoint engine: %d bytes in %d bucket(s), %.2fs", sent, index + 1, time.time() - start)
        return {}

    async def _chunks(self) -> AsyncGenerator[tuple[TensorMeta, torch.Tensor], None]:
        assert self._store is not None and self.rank is not None and self.rank > 0
        index = 0
        while True:
            bucket: _Bucket = pickle.loads(self._store.get(f"bucket/{index}"))
            data = torch.empty(bucket.length, dtype=torch.uint8)  # a fresh buffer: yielded views stay valid
            self._group.broadcast(data, 0).wait()
            for meta in bucket.tensors:
                yield meta, data[meta.offset : meta.offset + meta.chunk_size]
            if bucket.is_last:
                return
            index += 1

    @torch.no_grad()
    async def receive_weights(self, global_steps: int | None = None) -> AsyncGenerator[tuple[str, torch.Tensor], None]:
        if self.rank is None or self.rank <= 0:
            raise CPUBackendError(f"receive_weights() on rank {self.rank}: only rollout workers (rank > 0) receive")
        async for name, weight in merge_weight_chunks(self._chunks(), self.bucket_size):
            yield name, weight
        self.syncs += 1


def register() -> None:
    """Register the engine under :data:`BACKEND_NAMES` (CPU mode only: on a GPU host ``nccl`` is verl's)."""
    for name in BACKEND_NAMES:
        CheckpointEngineRegistry.register(name)(GlooCheckpointEngine)
