"""ToolManager with real slow, hanging, crashing, flaky and huge-output tools."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from rlfactory_plugins import hookimpl
from rlfactory_plugins.config import RLFactoryConfig, ToolEntry, ToolManagerConfig
from rlfactory_plugins.errors import ConfigError, UnknownNameError
from rlfactory_plugins.tools import Tool, ToolCrashed, ToolError, ToolSpec, ToolStatus, TransientToolError, tool
from rlfactory_plugins.tools.manager import ToolManager

pytestmark = pytest.mark.timeout(60)


class Gauge:
    """Counts calls in flight and remembers the peak."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    def __enter__(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        self.now -= 1


def manager(*tools: Tool, **config: Any) -> ToolManager:
    return ToolManager({t.name: t for t in tools}, ToolManagerConfig(**config))


async def test_1000_concurrent_calls_respect_global_and_per_tool_limits() -> None:
    wide, narrow = Gauge(), Gauge()

    @tool
    async def fast(i: int) -> int:
        with wide:
            await asyncio.sleep(0.001)
            return i

    @tool(max_concurrency=3)
    async def scarce(i: int) -> int:
        with narrow:
            await asyncio.sleep(0.001)
            return i

    tm = manager(fast, scarce, max_concurrency=16)
    calls = [("fast" if i % 2 else "scarce", {"i": i}) for i in range(1000)]
    results = await tm.call_many(calls)
    assert [r.output for r in results] == [str(i) for i in range(1000)]  # order kept
    assert all(r.ok for r in results)
    assert wide.peak + narrow.peak <= 16 and narrow.peak <= 3
    assert wide.peak > 3  # the limit is a ceiling, not serialisation
    assert tm.metrics()["tools/total/max_in_flight"] <= 16
    assert tm.metrics()["tools/fast/calls"] == 500


async def test_hung_async_tool_times_out_within_10_percent() -> None:
    ignored = []

    @tool(timeout=0.5)
    async def hang() -> str:
        while True:  # swallowing the manager's cancellation cannot hold the call
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                ignored.append(1)
                if len(ignored) > 1:  # let the test's loop shut down
                    raise

    tm = manager(hang)
    start = time.perf_counter()
    result = await tm.call("hang", {})
    elapsed = time.perf_counter() - start
    assert result.status is ToolStatus.timeout and "0.5s" in result.render()
    assert 0.5 <= elapsed <= 0.55
    await asyncio.sleep(0.01)
    assert ignored == [1]  # the manager did try to cancel it


async def test_hung_sync_tool_times_out_and_does_not_starve_others() -> None:
    release = threading.Event()

    @tool
    def stuck() -> str:
        release.wait(30)
        return "late"

    @tool
    def quick() -> str:
        return "ok"

    tm = ToolManager({"stuck": stuck, "quick": quick}, ToolManagerConfig(), {"stuck": ToolEntry(name="stuck", timeout=0.3)})
    start = time.perf_counter()
    stuck_results = await tm.call_many([("stuck", {})] * 40)  # more hung threads than any default pool has
    assert time.perf_counter() - start <= 0.33
    assert {r.status for r in stuck_results} == {ToolStatus.timeout}
    assert (await tm.call("quick", {})).output == "ok"
    assert await asyncio.wait_for(asyncio.to_thread(lambda: "default pool free"), 2) == "default pool free"
    release.set()


async def test_transient_errors_are_retried_with_backoff_then_reported() -> None:
    attempts: list[float] = []

    @tool
    async def flaky(fail_times: int) -> str:
        attempts.append(time.perf_counter())
        if len(attempts) <= fail_times:
            raise TransientToolError("rate limited")
        return "done"

    tm = manager(flaky, retries=2, retry_backoff=0.05)
    result = await tm.call("flaky", {"fail_times": 2})
    assert result.ok and result.attempts == 3 and result.output == "done"
    assert attempts[2] - attempts[1] >= 0.09  # backoff doubled: 0.05 then 0.1
    attempts.clear()
    result = await tm.call("flaky", {"fail_times": 9})
    assert result.status is ToolStatus.tool_error and result.attempts == 3 and "3 attempts" in result.error


async def test_errors_become_typed_results() -> None:
    @tool
    def refuses() -> str:
        raise ToolError("no such page")

    @tool
    def buggy() -> str:
        return {}["missing"]

    class Dies(Tool):
        async def acall(self, arguments: dict[str, Any]) -> str:
            raise ToolCrashed("backend gone")

    tm = manager(refuses, buggy, Dies(ToolSpec(name="dies")))
    refused, bug, died, unknown = await tm.call_many([("refuses", {}), ("buggy", {}), ("dies", {}), ("refuse", {})])
    assert (refused.status, refused.render()) == (ToolStatus.tool_error, "[tool_error] refuses: no such page")
    assert bug.status is ToolStatus.tool_error and "KeyError" in bug.error
    assert died.status is ToolStatus.crashed
    assert unknown.status is ToolStatus.unknown_tool and "did you mean 'refuses'" in unknown.error
    assert tm.metrics()["tools/_unknown/errors/unknown_tool"] == 1


async def test_arguments_are_validated_before_the_call() -> None:
    ran: list[Any] = []

    @tool
    def typed(n: int, tag: str = "x") -> str:
        ran.append(n)
        return f"{n}{tag}"

    class Schema(Tool):
        async def acall(self, arguments: dict[str, Any]) -> str:
            ran.append(arguments)
            return "ran"

    schema = Schema(ToolSpec(name="schema", parameters={
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"], "additionalProperties": False,
    }))
    tm = manager(typed, schema)
    results = await tm.call_many([
        ("typed", {"n": "not a number"}), ("typed", {"m": 1}), ("typed", ["n"]),
        ("schema", {"q": 3}), ("schema", {}), ("schema", {"q": "a", "extra": 1}),
    ])
    assert [r.status for r in results] == [ToolStatus.invalid_args] * 6
    assert "missing required argument 'n'" in results[1].error and "unexpected argument 'm'" in results[1].error
    assert "q: 3 is not of type 'string'" in results[3].error
    assert not ran
    assert (await tm.call("typed", {"n": "7"})).output == "7x"  # pydantic coercion
    assert (await tm.call("schema", {"q": "a"})).output == "ran"
    assert (await tm.call("typed", None)).status is ToolStatus.invalid_args


async def test_cache_is_opt_in_and_keyed_by_canonical_arguments() -> None:
    calls: list[dict[str, Any]] = []

    @tool
    async def lookup(a: int, b: int) -> int:
        calls.append({"a": a, "b": b})
        return a * b

    tm = ToolManager({"lookup": lookup}, ToolManagerConfig(), {"lookup": ToolEntry(name="lookup", cache=True)})
    first = await tm.call("lookup", {"a": 2, "b": 3})
    second = await tm.call("lookup", {"b": 3, "a": 2})
    assert (first.cached, second.cached, second.output) == (False, True, "6")
    await tm.call("lookup", {"a": 2, "b": 4})
    assert len(calls) == 2 and tm.metrics()["tools/lookup/cache_hits"] == 1
    uncached = manager(lookup)
    await uncached.call_many([("lookup", {"a": 1, "b": 1})] * 2)
    assert len(calls) == 4


async def test_huge_output_is_truncated_with_a_marker() -> None:
    @tool
    def flood() -> str:
        return "y" * 1_000_000

    tm = manager(flood, max_output_chars=100)
    result = await tm.call("flood", {})
    assert result.ok and result.truncated
    assert result.output.startswith("y" * 100) and "truncated 999900 of 1000000 characters" in result.output
    assert len(result.output) < 200


async def test_metrics_have_latency_percentiles_and_reset() -> None:
    @tool
    async def nap(s: float) -> str:
        await asyncio.sleep(s)
        return "z"

    tm = manager(nap)
    await tm.call_many([("nap", {"s": 0.01})] * 9 + [("nap", {"s": 0.2})])
    m = tm.metrics()
    assert m["tools/nap/calls"] == 10 and m["tools/total/calls"] == 10
    assert 0.01 <= m["tools/nap/latency_p50_s"] < 0.1 <= m["tools/nap/latency_p95_s"] <= m["tools/nap/latency_max_s"]
    assert m["tools/nap/errors/timeout"] == 0
    tm.reset_metrics()
    assert "tools/nap/calls" not in tm.metrics()


async def test_caller_cancellation_cancels_the_tool() -> None:
    cancelled = asyncio.Event()

    @tool
    async def long() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    tm = manager(long)
    task = asyncio.create_task(tm.call("long", {}))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 1)


class Closing(Tool):
    closed = 0

    async def acall(self, arguments: dict[str, Any]) -> str:
        return "ok"

    async def aclose(self) -> None:
        type(self).closed += 1


async def test_from_config_applies_entries_and_closes_once(rlfactory_register: Any) -> None:
    class Pack:
        @hookimpl
        def register_tools(self, register: Any) -> None:
            register(Closing(ToolSpec(name="closing")))

            @tool
            def unused() -> str:
                return ""

            register(unused)

    registry = rlfactory_register(Pack(), "pack")
    cfg = RLFactoryConfig(tools=[{"name": "closing", "timeout": 1.5, "cache": True}])
    tm = await ToolManager.from_config(cfg, registry)
    assert [s.name for s in tm.specs()] == ["closing"]
    assert tm._slots["closing"].timeout == 1.5 and tm._slots["closing"].cache
    await tm.aclose()
    await tm.aclose()
    assert Closing.closed == 1
    with pytest.raises(UnknownNameError, match="did you mean 'closing'"):
        await ToolManager.from_config(RLFactoryConfig(tools=["closin"]), registry)
    with pytest.raises(ConfigError, match="listed twice"):
        await ToolManager.from_config(RLFactoryConfig(tools=["closing", "closing"]), registry)


async def test_a_pattern_enables_every_matching_tool_and_a_named_entry_wins(rlfactory_register: Any) -> None:
    class Pack:
        @hookimpl
        def register_tools(self, register: Any) -> None:
            for name in ("fs.ls", "fs.cd", "math.add"):
                register(Closing(ToolSpec(name=name)))

    registry = rlfactory_register(Pack(), "pack")
    cfg = RLFactoryConfig(tools=[{"name": "fs.*", "timeout": 2.0}, {"name": "fs.cd", "timeout": 5.0}])
    tm = await ToolManager.from_config(cfg, registry)
    assert sorted(s.name for s in tm.specs()) == ["fs.cd", "fs.ls"]
    assert tm._slots["fs.ls"].timeout == 2.0 and tm._slots["fs.cd"].timeout == 5.0
    await tm.aclose()
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[web\.\*\]: the pattern matches no installed tool"):
        await ToolManager.from_config(RLFactoryConfig(tools=["web.*"]), registry)
    with pytest.raises(ConfigError, match=r"rlfactory.tools\[fs\.\*\]: listed twice"):
        await ToolManager.from_config(RLFactoryConfig(tools=["fs.*", "fs.*"]), registry)
