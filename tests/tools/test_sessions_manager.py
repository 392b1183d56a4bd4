"""ToolManager routing of stateful tools: per-trajectory isolation at 1,000 trajectories, failures that stay
inside one trajectory, no cache and no retries for stateful calls, the row's tool set, session metrics."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from rlfactory_plugins import SessionContext, StatefulTool
from rlfactory_plugins.config import ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.tools import ToolStatus, TransientToolError, tool
from rlfactory_plugins.tools.manager import ToolManager
from tests.helpers.sessions_fakes import KV, Counts

pytestmark = pytest.mark.timeout(120)


def manager(*tools: Any, overrides: dict[str, ToolEntry] | None = None, **config: Any) -> ToolManager:
    return ToolManager({t.name: t for t in tools}, ToolManagerConfig(**config), overrides)


def ctx_for(key: str, initial: dict[str, Any] | None = None):
    def make(t: StatefulTool) -> SessionContext:
        return SessionContext(key=key, uid="same-uid", kwargs={"initial": initial or {}})

    return make


@tool
def add(a: int, b: int) -> int:
    "Add two integers."
    return a + b


async def test_1000_concurrent_trajectories_each_see_only_their_own_state() -> None:
    counts = Counts()
    kv_get, kv_set = KV("kv_get", counts, group="kv"), KV("kv_set", counts, group="kv")
    m = manager(kv_get, kv_set, add)
    reg = m.sessions_registry()
    assert m.sessions is reg

    async def trajectory(i: int) -> dict[str, Any]:
        key = f"same-uid/{i}"  # GRPO siblings: one uid, distinct keys
        sessions = reg.open(key, ctx_for(key, {"seed": i}))
        for turn in range(3):
            await asyncio.sleep(random.random() / 100)
            calls = [("kv_set", {"key": f"k{turn}", "value": i * 10 + turn}), ("add", {"a": i, "b": turn})]
            set_res, add_res = await m.call_many(calls, sessions=sessions)
            assert set_res.ok and add_res.output == str(i + turn)
            (got,) = await m.call_many([("kv_get", {"key": "seed"})], sessions=sessions)
            assert json.loads(got.output) == {"key": "seed", "value": i, "owner": key}
        states = await sessions.aclose("answer")
        return states

    states = await asyncio.gather(*(trajectory(i) for i in range(1000)))
    for i, st in enumerate(states):
        assert st == {"kv": {"seed": i, "k0": i * 10, "k1": i * 10 + 1, "k2": i * 10 + 2}}
    assert sorted(counts.opens) == sorted(f"same-uid/{i}" for i in range(1000))  # one open per trajectory
    assert sorted(k for k, _ in counts.closes) == sorted(counts.opens)  # opens == closes
    assert len(reg) == 0
    metrics = m.metrics()
    assert metrics["sessions/opened"] == metrics["sessions/closed"] == 1000.0
    assert metrics["tools/kv/sessions/opened"] == 1000.0 and metrics["sessions/failed"] == 0.0
    assert 1.0 < metrics["sessions/open_high_water"] <= 1000.0 and metrics["sessions/open"] == 0.0
    assert metrics["tools/kv_set/cache_hits"] == 0.0 and metrics["tools/kv_set/calls"] == 3000.0


async def test_a_hanging_call_times_out_only_its_trajectory() -> None:
    counts = Counts()
    m = manager(KV(counts=counts), overrides={"kv": ToolEntry(name="kv", timeout=0.2)})
    reg = m.sessions_registry()
    a, b = reg.open("a", ctx_for("a", {"x": 1})), reg.open("b", ctx_for("b", {"x": 2}))
    hung, other = await asyncio.gather(
        m.call("kv", {"key": "hang"}, sessions=a), m.call("kv", {"key": "x"}, sessions=b)
    )
    assert hung.status is ToolStatus.timeout and other.ok and json.loads(other.output)["value"] == 2
    # the hang is the call's, not the session's: the trajectory's next call still works on its state
    again = await m.call("kv", {"key": "x"}, sessions=a)
    assert again.ok and json.loads(again.output)["value"] == 1
    assert await a.aclose("deadline") == {"kv": {"x": 1}} and await b.aclose("answer") == {"kv": {"x": 2}}
    assert sorted(counts.closes) == [("a", "deadline"), ("b", "answer")]


async def test_a_crashed_session_fails_fast_for_its_trajectory_only() -> None:
    counts = Counts()
    m = manager(KV("kv_get", counts, group="kv"), KV("kv_set", counts, group="kv"))
    reg = m.sessions_registry()
    a, b = reg.open("a", ctx_for("a")), reg.open("b", ctx_for("b"))
    crash = await m.call("kv_get", {"key": "crash"}, sessions=a)
    assert crash.status is ToolStatus.crashed and "process died" in (crash.error or "")
    later = await m.call("kv_set", {"key": "y", "value": 1}, sessions=a)  # same group, other function
    assert later.status is ToolStatus.crashed and "session lost" in (later.error or "")
    assert counts.opens == ["a"]  # not silently reopened
    fine = await m.call("kv_set", {"key": "y", "value": 5}, sessions=b)
    assert fine.ok
    await a.aclose("error")
    assert await b.aclose("answer") == {"kv": {"y": 5}}
    assert m.metrics()["tools/kv_get/errors/crashed"] == 1.0 and m.metrics()["tools/kv_set/errors/crashed"] == 1.0


async def test_open_failure_and_open_hang_are_crashed_with_the_reason() -> None:
    bad = KV("bad", open_error=RuntimeError("image 'py99' not found"))
    slow = KV("slow", open_hang=True)
    m = manager(bad, slow, add, session_open_timeout_s=0.1, default_timeout=30)
    s = m.sessions_registry().open("t", ctx_for("t"))
    r1, r2, r3 = await m.call_many([("bad", {"key": "a"}), ("slow", {"key": "a"}), ("add", {"a": 1, "b": 1})],
                                   sessions=s)
    assert r1.status is ToolStatus.crashed and "could not be opened: RuntimeError: image 'py99' not found" in r1.error
    assert r2.status is ToolStatus.crashed and "no answer within 0.1s" in r2.error  # open timeout, not call timeout
    assert r3.ok and r3.output == "2"
    assert m.metrics()["sessions/failed"] == 2.0
    await s.aclose("error")


async def test_allowed_rejects_names_outside_the_rows_tool_set() -> None:
    m = manager(KV("kv_get"), KV("kv_set"), add)
    r = await m.call("add", {"a": 1, "b": 2}, allowed=frozenset({"kv_get", "kv_set"}))
    assert r.status is ToolStatus.unknown_tool
    assert r.error == "tool 'add' is not available to this trajectory (allowed: kv_get, kv_set)"
    (r,) = await m.call_many([("kv_gte", {"key": "a"})], allowed=frozenset({"kv_get"}))
    assert r.status is ToolStatus.unknown_tool and "did you mean 'kv_get'?" in r.error
    ok = await m.call("add", {"a": 1, "b": 2}, allowed=frozenset({"add"}))
    assert ok.ok and m.metrics()["tools/_unknown/calls"] == 2.0


async def test_stateful_calls_are_never_cached_nor_retried() -> None:
    class Flaky(KV):
        attempts = 0

        async def acall_in(self, session: dict[str, Any], arguments: dict[str, Any]) -> Any:
            Flaky.attempts += 1
            raise TransientToolError("rate limited")

    with pytest.raises(ConfigError, match="stateful tool; its results depend"):
        manager(KV(), overrides={"kv": ToolEntry(name="kv", cache=True)})
    m = manager(Flaky("flaky"), KV("kv"), cache=True, retries=3, retry_backoff=0)  # global cache skips them
    s = m.sessions_registry().open("t", ctx_for("t", {"a": 1}))
    r = await m.call("flaky", {"key": "a"}, sessions=s)
    assert r.status is ToolStatus.tool_error and r.attempts == 1 and Flaky.attempts == 1
    assert "not retried: stateful tool" in r.error
    first = await m.call("kv", {"key": "a"}, sessions=s)
    await m.call("kv", {"key": "a", "value": 7}, sessions=s)
    second = await m.call("kv", {"key": "a"}, sessions=s)
    assert not second.cached and json.loads(first.output)["value"] == 1 and json.loads(second.output)["value"] == 7
    await s.aclose("answer")


async def test_stateful_tool_without_sessions_runs_a_oneshot_session() -> None:
    counts = Counts()
    m = manager(KV(counts=counts))
    r = await m.call("kv", {"key": "a"})
    assert r.ok and len(counts.opens) == 1 and counts.closes == [(counts.opens[0], "oneshot")]
    assert "sessions/opened" not in m.metrics()  # no trajectory sessions were involved


async def test_stateless_metrics_and_results_are_unchanged() -> None:
    m = manager(add)
    r = await m.call("add", {"a": 2, "b": 3})
    assert r.model_dump(exclude={"latency_s"}) == {
        "name": "add", "arguments": {"a": 2, "b": 3}, "status": ToolStatus.ok, "output": "5", "error": None,
        "attempts": 1, "cached": False, "truncated": False,
    }
    assert not any(k.startswith("sessions/") or "/sessions/" in k for k in m.metrics())


async def test_manager_aclose_sweeps_open_sessions_and_calls_after_close_fail_fast() -> None:
    counts = Counts()
    m = manager(KV(counts=counts))
    reg = m.sessions_registry()
    live = [reg.open(f"t{i}", ctx_for(f"t{i}")) for i in range(5)]
    for s in live:
        assert (await m.call("kv", {"key": "a", "value": 1}, sessions=s)).ok
    assert len(reg) == 5
    await m.aclose()
    assert len(reg) == 0 and sorted(counts.closes) == [(f"t{i}", "shutdown") for i in range(5)]
    r = await m.call("kv", {"key": "a"}, sessions=live[0])
    assert r.status is ToolStatus.crashed and "closed" in r.error


async def test_deadline_cancel_mid_call_then_close_lets_the_call_settle() -> None:
    counts = Counts()
    m = manager(KV(counts=counts))
    s = m.sessions_registry().open("t", ctx_for("t"))
    call = asyncio.ensure_future(m.call("kv", {"key": "hang"}, sessions=s))
    await asyncio.sleep(0.05)
    call.cancel()  # the trajectory's deadline
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await asyncio.wait_for(s.aclose("deadline"), 5) == {"kv": {}}
    assert counts.closes == [("t", "deadline")] and m.metrics()["sessions/open"] == 0.0


def test_stateful_tool_cannot_be_a_ray_actor() -> None:
    from rlfactory_plugins.registry import Registry
    from rlfactory_plugins.tools.binding import registry_tools

    reg = Registry()
    reg.register_callback("register_tools", "test")(KV())
    with pytest.raises(ConfigError, match="ray_actor"):
        registry_tools(reg, {"kv": ToolEntry(name="kv", ray_actor=True)}, {})


def test_stateful_tools_lists_them_in_manager_order() -> None:
    a, b = KV("kv_b"), KV("kv_a")
    m = manager(a, add, b)
    assert m.stateful_tools() == [a, b]
