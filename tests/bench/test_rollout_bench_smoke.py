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
SCENARIOS = ["no_faults", "hangs", "long_tail", "long_tail_deadline", "long_tail_straggler", "zero_latency", "stateful"]
PROFILES = ["light", "saturated"]
DRIVERS = {"rlfactory", "verl_tool_agent", "verl_tool_agent_timeout", "turn_sync"}
#: the drivers that run in a scenario (verl's like-for-like timeout run: only in hangs)
RUN = {"rlfactory", "verl_tool_agent", "turn_sync"}
PER_DRIVER = ["wall_s", "efficiency", "completed", "failed", "median_traj_s", "p90_traj_s", "cut", "tool_calls"]
SESSION_KEYS = ["sessions_opened", "sessions_closed", "state_errors", "state_lost"]


@pytest.fixture(scope="module")
def all_lines(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("bench") / "rollout.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rollout.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=420, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stdout = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert stdout == saved
    return saved


@pytest.fixture(scope="module", params=PROFILES)
def lines(all_lines, request) -> dict[str, dict]:
    """One profile's lines by scenario (train_overlap's apart: other keys)."""
    return {line["scenario"]: line for line in all_lines if line["profile"] == request.param}


@pytest.mark.timeout(480)
def test_every_scenario_runs_under_both_profiles(all_lines):
    names = SCENARIOS + ["train_overlap"]
    assert [(line["profile"], line["scenario"]) for line in all_lines] == [(p, s) for p in PROFILES for s in names]


@pytest.mark.timeout(480)
def test_every_scenario_reports_the_agreed_keys(lines):
    lines = {name: line for name, line in lines.items() if name != "train_overlap"}
    assert list(lines) == SCENARIOS
    for line in lines.values():
        for key in ["scenario", "n", "bound_s", "speedup", *PER_DRIVER]:
            assert key in line, (line["scenario"], key)
        for key in [*PER_DRIVER, *SESSION_KEYS]:
            assert set(line[key]) == DRIVERS, (line["scenario"], key)
        if line["scenario"] != "stateful":  # only a stateful tool has sessions
            assert all(v is None for key in SESSION_KEYS for v in line[key].values()), line["scenario"]
        assert set(line["speedup"]) == {"vs_verl", "vs_verl_timeout", "vs_turn_sync"}
        ran = {d for d, wall in line["wall_s"].items() if wall is not None}
        assert ran == (DRIVERS if line["scenario"] == "hangs" else RUN), line["scenario"]
        assert line["bound_s"] >= 0


@pytest.mark.timeout(480)
def test_no_trajectory_is_lost(lines):
    for name, line in lines.items():
        if name == "train_overlap":
            continue
        for driver in DRIVERS if name == "hangs" else RUN:
            assert line["completed"][driver] + line["failed"][driver] == line["n"], (line["scenario"], driver)


@pytest.mark.timeout(480)
def test_hung_tools_stall_verl_but_not_rlfactory(lines):
    hangs = lines["hangs"]
    assert hangs["completed"]["rlfactory"] == hangs["n"]  # the tool timeout turned each hang into an error
    assert hangs["stuck"]["verl_tool_agent"] >= 1  # no timeout on verl's tool path: cut off by the wall budget
    assert hangs["failed"]["verl_tool_agent"] == hangs["stuck"]["verl_tool_agent"]
    # verl's loop with the same in-tool timeout finishes every trajectory too (like for like)
    assert hangs["completed"]["verl_tool_agent_timeout"] == hangs["n"]
    assert hangs["speedup"]["vs_verl_timeout"] is not None


@pytest.mark.timeout(480)
def test_deadline_cuts_only_rlfactory_and_reuses_the_other_runs(lines):
    plain, deadline = lines["long_tail"], lines["long_tail_deadline"]
    assert plain["cut"]["rlfactory"] == 0
    assert deadline["cut"]["rlfactory"] >= 1
    # a cut trajectory does not reach its answer: answered counts the ones that did
    assert deadline["answered"]["rlfactory"] == deadline["n"] - deadline["cut"]["rlfactory"]
    assert deadline["reused"] == {"verl_tool_agent": "long_tail", "turn_sync": "long_tail"}
    assert deadline["wall_s"]["verl_tool_agent"] == plain["wall_s"]["verl_tool_agent"]
    # seconds saved: rlfactory's own wall on the same workload without the policy, minus with it
    # both walls and the saving are rounded to ms separately in the report: equal within that rounding
    saved = plain["wall_s"]["rlfactory"] - deadline["wall_s"]["rlfactory"]
    assert deadline["saved_s"]["rlfactory"] == pytest.approx(saved, abs=0.0015)
    assert deadline["saved_s"]["verl_tool_agent"] is None and plain["saved_s"]["rlfactory"] is None
    straggler = lines["long_tail_straggler"]  # the deadline relative to the step: the tail after 90 % is done
    assert 1 <= straggler["cut"]["rlfactory"] <= straggler["n"] // 10 + 1
    assert straggler["answered"]["rlfactory"] == straggler["n"] - straggler["cut"]["rlfactory"]
    assert straggler["wall_s"]["rlfactory"] < plain["wall_s"]["rlfactory"]


@pytest.mark.timeout(480)
def test_rlfactory_worker_builds_its_loop_once(lines):
    """rlfactory's worker shares one loop object; verl's builds one per trajectory (hydra.utils.instantiate)."""
    for line in lines.values():
        if line["scenario"] == "train_overlap":
            continue
        assert line["loops_built"]["rlfactory"] == 1, line["scenario"]
        assert line["loops_built"]["verl_tool_agent"] == line["n"], line["scenario"]


@pytest.mark.timeout(480)
def test_every_driver_plays_the_whole_script(lines):
    """The server replays each trajectory's turns; only a loop that ran every tool turn reaches <answer>."""
    for name in ("no_faults", "zero_latency", "stateful"):
        line = lines[name]
        assert line["answered"] == {d: line["n"] if d in RUN else None for d in DRIVERS}, name
        assert line["tool_calls"] == {d: line["tool_turns"] if d in RUN else None for d in DRIVERS}, name


@pytest.mark.timeout(480)
def test_stateful_sessions_are_per_trajectory(lines):
    """rlfactory and turn-sync open one session per trajectory and keep its state across its calls;
    verl's ToolAgentLoop runs create/execute/release around every call: one instance per call."""
    line = lines["stateful"]
    n, calls = line["n"], line["tool_turns"]
    assert calls > n  # every trajectory calls the tool at least once, some more than once
    assert line["completed"] == {d: n if d in RUN else None for d in DRIVERS}
    assert line["state_errors"] == {d: 0 if d in RUN else None for d in DRIVERS}  # no session saw another's query
    assert line["sessions_opened"] == {"rlfactory": n, "verl_tool_agent": calls, "verl_tool_agent_timeout": None,
                                       "turn_sync": n}
    assert line["sessions_closed"] == line["sessions_opened"]
    assert line["sessions_opened"]["verl_tool_agent"] == line["tool_calls"]["verl_tool_agent"]
    # verl's instance of a trajectory's 2nd, 3rd call is a new one: the earlier calls' state is gone
    assert line["state_lost"] == {"rlfactory": 0, "verl_tool_agent": calls - n, "verl_tool_agent_timeout": None,
                                  "turn_sync": 0}


@pytest.mark.timeout(480)
def test_train_overlap_trains_every_step_in_every_mode(lines):
    """Outcomes only: every mode trains its steps' batches with both loops, nothing dropped; sync
    trains on-policy; the overlapping modes carry work across steps (staleness above 0)."""
    line = lines["train_overlap"]
    loops = {"rlfactory", "verl_tool_agent"}
    for mode in ("sync", "recycle", "async"):
        assert set(line["trained"][mode]) == loops
        assert line["trained"][mode] == {lp: line["steps"] * line["batch"] for lp in loops}, mode
        assert line["dropped"][mode] == {lp: 0 for lp in loops}, mode
        assert all(len(ends) == line["steps"] for ends in line["step_end_s"][mode].values())
    assert line["mean_staleness"]["sync"] == {lp: 0.0 for lp in loops}
    assert line["in_flight_at_end"]["sync"] == {lp: 0 for lp in loops}
    assert all(line["max_staleness"]["async"][lp] >= 1 for lp in loops)
    assert line["train_s"] > 0 and set(line["rlfactory_vs_verl"]) == {"sync", "recycle", "async"}
    assert line["limit_vs_sync"]["sync"] == {lp: 1.0 for lp in loops}  # sync is its own limit
    assert all(0 < line["server_busy_unpaused"][m][lp] <= 1.0 for m in ("sync", "recycle", "async") for lp in loops)
