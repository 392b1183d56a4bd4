"""Smoke test of ``benchmarks/rollout.py --quick``: the real script, every scenario, every driver.

Checks the shape of the report and that no trajectory is lost; never timings (the
machine is shared), only outcomes that follow from the scripted workload.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ["no_faults", "hangs", "long_tail", "long_tail_deadline", "zero_latency", "stateful", "saturated"]
DRIVERS = {"rlfactory", "verl_tool_agent", "turn_sync"}
PER_DRIVER = ["wall_s", "efficiency", "completed", "failed", "median_traj_s", "p90_traj_s", "cut", "tool_calls"]
SESSION_KEYS = ["sessions_opened", "sessions_closed", "state_errors", "state_lost"]


@pytest.fixture(scope="module")
def lines(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench") / "rollout.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rollout.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stdout = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert stdout == saved
    return {line["scenario"]: line for line in saved}


@pytest.mark.timeout(300)
def test_every_scenario_reports_the_agreed_keys(lines):
    assert list(lines) == SCENARIOS
    for line in lines.values():
        for key in ["scenario", "n", "bound_s", "speedup", *PER_DRIVER]:
            assert key in line, (line["scenario"], key)
        for key in [*PER_DRIVER, *SESSION_KEYS]:
            assert set(line[key]) == DRIVERS, (line["scenario"], key)
        if line["scenario"] != "stateful":  # only a stateful tool has sessions
            assert all(v is None for key in SESSION_KEYS for v in line[key].values()), line["scenario"]
        assert set(line["speedup"]) == {"vs_verl", "vs_turn_sync"}
        assert line["bound_s"] >= 0


@pytest.mark.timeout(300)
def test_no_trajectory_is_lost(lines):
    for line in lines.values():
        for driver in DRIVERS:
            assert line["completed"][driver] + line["failed"][driver] == line["n"], (line["scenario"], driver)


@pytest.mark.timeout(300)
def test_hung_tools_stall_verl_but_not_rlfactory(lines):
    hangs = lines["hangs"]
    assert hangs["completed"]["rlfactory"] == hangs["n"]  # the tool timeout turned each hang into an error
    assert hangs["stuck"]["verl_tool_agent"] >= 1  # no timeout on verl's tool path: cut off by the wall budget
    assert hangs["failed"]["verl_tool_agent"] == hangs["stuck"]["verl_tool_agent"]


@pytest.mark.timeout(300)
def test_deadline_cuts_only_rlfactory_and_reuses_the_other_runs(lines):
    plain, deadline = lines["long_tail"], lines["long_tail_deadline"]
    assert plain["cut"]["rlfactory"] == 0
    assert deadline["cut"]["rlfactory"] >= 1
    assert deadline["reused"] == {"verl_tool_agent": "long_tail", "turn_sync": "long_tail"}
    assert deadline["wall_s"]["verl_tool_agent"] == plain["wall_s"]["verl_tool_agent"]
    # seconds saved: rlfactory's own wall on the same workload without the policy, minus with it
    # both walls and the saving are rounded to ms separately in the report: equal within that rounding
    saved = plain["wall_s"]["rlfactory"] - deadline["wall_s"]["rlfactory"]
    assert deadline["saved_s"]["rlfactory"] == pytest.approx(saved, abs=0.0015)
    assert deadline["saved_s"]["verl_tool_agent"] is None and plain["saved_s"]["rlfactory"] is None


@pytest.mark.timeout(300)
def test_rlfactory_worker_builds_its_loop_once(lines):
    """rlfactory's worker shares one loop object; verl's builds one per trajectory (hydra.utils.instantiate)."""
    for line in lines.values():
        assert line["loops_built"]["rlfactory"] == 1, line["scenario"]
        assert line["loops_built"]["verl_tool_agent"] == line["n"], line["scenario"]


@pytest.mark.timeout(300)
def test_every_driver_plays_the_whole_script(lines):
    """The server replays each trajectory's turns; only a loop that ran every tool turn reaches <answer>."""
    for name in ("no_faults", "zero_latency", "stateful", "saturated"):
        line = lines[name]
        assert line["answered"] == {d: line["n"] for d in DRIVERS}, name
        assert line["tool_calls"] == {d: line["tool_turns"] for d in DRIVERS}, name


@pytest.mark.timeout(300)
def test_stateful_sessions_are_per_trajectory(lines):
    """rlfactory and turn-sync open one session per trajectory and keep its state across its calls;
    verl's ToolAgentLoop runs create/execute/release around every call: one instance per call."""
    line = lines["stateful"]
    n, calls = line["n"], line["tool_turns"]
    assert calls > n  # every trajectory calls the tool at least once, some more than once
    assert line["completed"] == {d: n for d in DRIVERS}
    assert line["state_errors"] == {d: 0 for d in DRIVERS}  # no session ever saw another trajectory's query
    assert line["sessions_opened"] == {"rlfactory": n, "verl_tool_agent": calls, "turn_sync": n}
    assert line["sessions_closed"] == line["sessions_opened"]
    assert line["sessions_opened"]["verl_tool_agent"] == line["tool_calls"]["verl_tool_agent"]
    # verl's instance of a trajectory's 2nd, 3rd call is a new one: the earlier calls' state is gone
    assert line["state_lost"] == {"rlfactory": 0, "verl_tool_agent": calls - n, "turn_sync": 0}
