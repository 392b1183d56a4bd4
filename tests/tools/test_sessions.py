"""TrajectorySessions and SessionRegistry on their own: lazy/shared opens, broken groups, state export, sweeps."""

from __future__ import annotations

import asyncio

import pytest

from rlfactory_plugins import SessionContext, StatefulTool, Tool, Trajectory, TurnRecord
from rlfactory_plugins.config import ToolManagerConfig
from rlfactory_plugins.errors import RLFactoryError
from rlfactory_plugins.tools import SessionBroken, SessionRegistry, ToolCrashed
from rlfactory_plugins.tools.session import cap_state
from tests.helpers.sessions_fakes import KV, Counts

pytestmark = pytest.mark.timeout(60)


def ctx_for(key: str, initial: dict | None = None):
    def make(tool: StatefulTool) -> SessionContext:
        return SessionContext(key=key, uid="u0", kwargs={"initial": initial or {}}, extra_info={})

    return make


def test_only_stateful_tools_say_so() -> None:
    assert Tool.stateful is False and StatefulTool.stateful is True
    assert KV().session_group == "kv" and KV(group="fs").session_group == "fs"


def test_trajectory_record_has_the_session_fields() -> None:
    t = Trajectory(key="u/0", tools=["kv"], tool_state={"kv": {"a": 1}}, close_errors={"kv": "x"}, env_state={"b": 2},
                   user_turns=1, stop_reason="env_done", turns=[TurnRecord(index=0, env_message="go on")])
    again = Trajectory.model_validate(t.model_dump(mode="json"))
    assert again == t
    assert Trajectory().tool_state == {} and Trajectory().tools is None and Trajectory().key == ""
    Trajectory(stop_reason="max_user_turns")


async def test_lazy_open_once_per_group_and_close_exports_state() -> None:
    counts = Counts()
    kv_get, kv_set = KV("kv_get", counts, group="kv"), KV("kv_set", counts, group="kv")
    reg = SessionRegistry()
    sessions = reg.open("t1", ctx_for("t1", {"a": 1}))
    assert counts.opens == [] and len(reg) == 1  # nothing opens before the first call
    s1, s2 = await asyncio.gather(sessions.session(kv_get), sessions.session(kv_set))  # concurrent first calls
    assert s1 is s2 and counts.opens == ["t1"]
    await kv_set.acall_in(s1, {"key": "b", "value": 2})
    states = await sessions.aclose("answer")
    assert states == {"kv": {"a": 1, "b": 2}}
    assert counts.closes == [("t1", "answer")] and len(reg) == 0
    assert await sessions.aclose("again") == states and len(counts.closes) == 1  # idempotent
    with pytest.raises(SessionBroken, match="closed"):
        await sessions.session(kv_get)
    m = reg.metrics()
    assert m["sessions/opened"] == m["sessions/closed"] == 1.0 and m["sessions/open"] == 0.0
    assert m["tools/kv/sessions/opened"] == 1.0 and m["sessions/open_high_water"] == 1.0


async def test_open_failure_marks_the_group_broken_and_fails_fast() -> None:
    tool = KV(open_error=RuntimeError("no sandbox image 'py99'"))
    reg = SessionRegistry()
    sessions = reg.open("t", ctx_for("t"))
    with pytest.raises(SessionBroken, match="could not be opened: RuntimeError: no sandbox image 'py99'"):
        await sessions.session(tool)
    tool.open_error = None  # it would work now, but the trajectory's group stays broken (no silent reopen)
    with pytest.raises(SessionBroken, match="py99"):
        await sessions.session(tool)
    assert isinstance(SessionBroken("x"), ToolCrashed)
    assert reg.metrics()["sessions/failed"] == 1.0 and tool.counts.opens == []
    assert await sessions.aclose("error") == {}


async def test_open_timeout_is_its_own() -> None:
    reg = SessionRegistry(open_timeout=0.05)
    sessions = reg.open("t", ctx_for("t"))
    with pytest.raises(SessionBroken, match="no answer within 0.05s"):
        await sessions.session(KV(open_hang=True))


async def test_state_is_capped_and_close_problems_are_recorded_not_raised() -> None:
    big = KV("big", state_chars=500)
    bad = KV("bad", close_error=OSError("container already gone"))
    reg = SessionRegistry(max_state_chars=200)
    sessions = reg.open("t", ctx_for("t", {"a": 1}))
    await sessions.open_now([big, bad])
    states = await sessions.aclose("max_turns")
    assert states["big"]["_truncated"] is True and states["big"]["_chars"] > 500
    assert states["bad"] == {"a": 1}
    assert "container already gone" in sessions.close_errors["bad"] and "big" not in sessions.close_errors
    assert reg.metrics()["sessions/close_failed"] == 1.0 and reg.metrics()["sessions/closed"] == 2.0


def test_cap_state_keeps_small_states_as_plain_json() -> None:
    assert cap_state({"a": (1, 2), "b": {3}}, 100) == {"a": [1, 2], "b": "{3}"}
    assert cap_state({"a": "x" * 10}, 5) == {"_truncated": True, "_chars": 19, "_limit": 5}


async def test_eager_open_failure_does_not_raise_and_keys_are_checked() -> None:
    reg = SessionRegistry()
    sessions = reg.open("t", ctx_for("t"))
    await sessions.open_now([KV(open_error=ValueError("bad fixture"))])
    assert "bad fixture" in sessions.broken["kv"]
    with pytest.raises(RLFactoryError, match="already has open sessions"):
        reg.open("t", ctx_for("t"))
    with pytest.raises(RLFactoryError, match="non-empty key"):
        reg.open("", ctx_for(""))


async def test_aclose_all_closes_every_trajectory() -> None:
    counts = Counts()
    tool = KV(counts=counts)
    reg = SessionRegistry()
    for i in range(20):
        await reg.open(f"t{i}", ctx_for(f"t{i}")).session(tool)
    reg.open("never-called", ctx_for("never-called"))
    assert len(reg) == 21
    assert await reg.aclose_all("shutdown") == 21
    assert len(reg) == 0 and sorted(k for k, _ in counts.closes) == sorted(f"t{i}" for i in range(20))
    assert {r for _, r in counts.closes} == {"shutdown"}


async def test_max_open_sessions_caps_open_sessions() -> None:
    counts = Counts()
    tool = KV(counts=counts)
    reg = SessionRegistry(max_open_sessions=2)
    a, b, c = (reg.open(k, ctx_for(k)) for k in "abc")
    await a.session(tool)
    await b.session(tool)
    third = asyncio.ensure_future(c.session(tool))
    await asyncio.sleep(0.05)
    assert not third.done() and counts.opens == ["a", "b"]  # waits for a free slot
    await a.aclose("answer")
    await asyncio.wait_for(third, 1)
    assert counts.opens == ["a", "b", "c"] and reg.metrics()["sessions/open_high_water"] == 2.0
    await reg.aclose_all("shutdown")


async def test_close_waits_for_an_open_in_progress() -> None:
    counts = Counts()
    tool = KV(counts=counts, open_delay=0.05)
    reg = SessionRegistry()
    sessions = reg.open("t", ctx_for("t", {"x": 1}))
    opening = asyncio.ensure_future(sessions.session(tool))
    await asyncio.sleep(0)
    assert await sessions.aclose("deadline") == {"kv": {"x": 1}}  # opened meanwhile: closed, not leaked
    await opening
    assert counts.closes == [("t", "deadline")]


async def test_oneshot_acall_opens_and_closes() -> None:
    counts = Counts()
    tool = KV(counts=counts)
    assert await tool.acall({"key": "a"}) == {"key": "a", "value": None, "owner": counts.opens[0]}
    assert counts.opens[0].startswith("oneshot-") and counts.closes == [(counts.opens[0], "oneshot")]


async def test_an_open_cut_short_by_close_is_broken_not_a_cancellation_of_the_caller() -> None:
    tool = KV(open_hang=True)
    reg = SessionRegistry(close_timeout=0.05)
    sessions = reg.open("t", ctx_for("t"))
    opening = asyncio.ensure_future(sessions.session(tool))
    await asyncio.sleep(0)
    assert await sessions.aclose("deadline") == {}
    with pytest.raises(SessionBroken, match="could not be opened"):
        await opening
    assert reg.metrics()["sessions/failed"] == 1.0 and len(reg) == 0
