"""The CPU mode's gloo checkpoint engine: real gloo groups between threads, driven in the order verl's
``CheckpointEngineManager.update_weights`` drives its engines (prepare, build_topology,
init_process_group, send/receive, finalize), twice, with buckets smaller than some tensors."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
import torch

from rlfactory_plugins.verl.cpu.checkpoint_engine import BACKEND_NAMES, GlooCheckpointEngine
from rlfactory_plugins.verl.cpu.errors import CPUBackendError

BUCKET = 1024  # bytes: "big" (4096 bytes) is cut into chunks, the small ones share buckets


def weights(version: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(version)
    return {
        "embed.weight": torch.randn(8, 16, generator=g),
        "big.weight": torch.randn(32, 32, generator=g),
        "norm.weight": torch.randn(16, generator=g).to(torch.bfloat16),
        "counts": torch.arange(5, dtype=torch.int64) * version,
    }


def run_threads(targets: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def run(i: int, fn: Any) -> None:
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a rank hung"
    if errors:
        raise errors[0]
    return results


def sync(actors: list[GlooCheckpointEngine], rollouts: list[GlooCheckpointEngine], sent: dict[str, torch.Tensor]):
    """One weight sync as verl's manager runs it; returns what each rollout worker received."""
    metadata = [e.prepare() for e in actors + rollouts]
    actor_kwargs, rollout_kwargs = GlooCheckpointEngine.build_topology(len(actors), len(rollouts), metadata)

    def init(engine: GlooCheckpointEngine, kwargs: dict[str, list[Any]], i: int):
        return lambda: engine.init_process_group(**{k: v[i] for k, v in kwargs.items()})

    run_threads([init(e, actor_kwargs, i) for i, e in enumerate(actors)]
                + [init(e, rollout_kwargs, i) for i, e in enumerate(rollouts)])

    def send(engine: GlooCheckpointEngine):
        return lambda: asyncio.run(engine.send_weights(iter(sent.items()), global_steps=1))

    def receive(engine: GlooCheckpointEngine):
        async def collect() -> dict[str, torch.Tensor]:
            return {name: t.clone() async for name, t in engine.receive_weights(global_steps=1)}
        return lambda: asyncio.run(collect())

    received = run_threads([send(e) for e in actors] + [receive(e) for e in rollouts])[len(actors):]
    for e in actors + rollouts:
        e.finalize()
    return received


def test_weights_arrive_exactly_on_every_rollout_worker_each_sync():
    # two trainer ranks (rank 1 only walks the generator, as FSDP's other ranks do), two rollout workers
    actors = [GlooCheckpointEngine(BUCKET, is_master=True), GlooCheckpointEngine(BUCKET)]
    rollouts = [GlooCheckpointEngine(BUCKET), GlooCheckpointEngine(BUCKET)]
    for version in (1, 2):  # a fresh store and group per sync
        sent = weights(version)
        for got in sync(actors, rollouts, sent):
            assert list(got) == list(sent)
            for name, tensor in sent.items():
                assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name
    assert not torch.equal(weights(1)["big.weight"], weights(2)["big.weight"])
    assert [e.syncs for e in actors + rollouts] == [2, 0, 2, 2]


def test_topology_puts_trainer_rank_0_first_and_leaves_the_other_trainer_ranks_out():
    meta = [{"host": "10.0.0.1", "port": 1234}, {}, {}, {}, {}]
    actor, rollout = GlooCheckpointEngine.build_topology(3, 2, meta)
    assert actor["rank"] == [0, -1, -1] and rollout["rank"] == [1, 2]
    assert actor["world_size"] == [3] * 3 and rollout["world_size"] == [3] * 2
    assert set(actor["port"] + rollout["port"]) == {1234}


def test_topology_without_a_master_says_what_is_wrong():
    with pytest.raises(CPUBackendError, match="trainer rank 0 did not open the weight-sync store"):
        GlooCheckpointEngine.build_topology(1, 1, [{}, {}])


def test_unknown_engine_options_are_refused_and_nccl_ones_ignored():
    GlooCheckpointEngine(BUCKET, rebuild_group=True, group_name="x")  # a GPU launch line's nccl options
    with pytest.raises(CPUBackendError, match=r"\['bucket_mb'\].*engine_kwargs"):
        GlooCheckpointEngine(BUCKET, bucket_mb=4)


def test_registered_for_the_gpu_launch_line_in_cpu_mode():
    from verl.checkpoint_engine import CheckpointEngineRegistry

    import rlfactory_plugins.verl.cpu as cpu

    if not cpu.activate():
        pytest.skip("CPU mode is off here (accelerator present or RLFACTORY_CPU=0)")
    assert {CheckpointEngineRegistry.get(name) for name in BACKEND_NAMES} == {GlooCheckpointEngine}
