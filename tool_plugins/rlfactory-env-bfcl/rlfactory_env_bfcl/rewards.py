"""Scoring a BFCL trajectory from its record (``Trajectory.env_state``, written by the ``bfcl`` environment).

:func:`verdict` is BFCL's multi-turn check, turn by turn as ``multi_turn_checker`` runs it: a run
whose completed user turns differ in number from the ground truth's was force-terminated; then,
for each ground-truth turn, a model turn without calls where the ground truth has some fails
(``empty_turn_model_response``), a turn whose ground truth is empty is skipped, the state after
the turn must equal the ground truth's (every public attribute of every instance, compared
through :mod:`rlfactory_env_bfcl.state` digests of the rollout's own instances) and the ground
truth's results of the turn must all be among the model's results so far (BFCL's own
``response_checker``). The ground truth runs through BFCL's executor from the initial state.

Two reward parts read it:

- ``bfcl_state_response``: 1.0 when the verdict is valid, else 0.0 (BFCL's accuracy); with
  ``checker: bfcl`` the verdict is BFCL's ``multi_turn_checker`` re-executing the recorded calls;
- ``bfcl_partial``: a dense signal for training, the mean over the ground truth's non-empty turns
  of ``state_weight * state_ok + (1 - state_weight) * (share of that turn's ground-truth results
  found among the model's results so far)``, 0 for a turn without calls or not completed (a user
  turn is completed when the model ends it without a tool call). It is 1.0 when every such turn
  passes both checks, so it is 1.0 on every valid run; unlike the binary part, a run failing at
  turn 3 of 4 keeps the credit of turns 0-2 and a force-terminated run keeps what it completed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field

from rlfactory_plugins.rewards import RewardOutput, reward
from rlfactory_plugins.trajectory import Trajectory

from rlfactory_env_bfcl import backend
from rlfactory_env_bfcl.episode import Entry
from rlfactory_env_bfcl.state import digests

__all__ = ["Verdict", "bfcl_partial", "bfcl_state_response", "ground_truth_of", "reference_verdict", "verdict"]


@dataclass
class Verdict:
    valid: bool
    error_type: str | None = None
    turn: int | None = None
    """The ground-truth turn that failed (None: valid, or force-terminated)."""
    turn_scores: list[tuple[bool, float]] = field(default_factory=list)
    """Per non-empty ground-truth turn reached with calls: (state ok, share of its results found)."""
    scored_turns: int = 0
    """The ground truth's non-empty turns (the denominator of the partial credit)."""


@dataclass
class _GroundTruth:
    results: list[list[str]]
    states: list[dict[str, dict[str, str]]]


def _run_ground_truth(entry: Entry, ground_truth: list[list[str]]) -> _GroundTruth:
    key, view = backend.new_key("gt"), entry.executor_view()
    out = _GroundTruth([], [])
    try:
        for calls in ground_truth:
            results, instances = backend.execute(list(calls), view, key)
            out.results.append(results)
            out.states.append(digests(instances))
    finally:
        backend.purge(key, view)
    return out


def ground_truth_of(trajectory: Trajectory) -> list[list[str]]:
    raw = trajectory.ground_truth
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not all(isinstance(t, list) for t in value):
        raise ValueError(f"reward_model.ground_truth must be BFCL's list of per-turn call lists (JSON), got {raw!r}")
    return [[str(c) for c in turn] for turn in value]


def _found(wanted: list[str], have: list[str]) -> int:
    left = Counter(have)
    hits = 0
    for item in wanted:
        if left[item] > 0:
            left[item] -= 1
            hits += 1
    return hits


def verdict(record: dict[str, Any], ground_truth: list[list[str]], entry: Entry) -> Verdict:
    """BFCL's verdict on a trajectory's record (see the module docstring)."""
    complete = [t for t in record.get("turns") or [] if t.get("complete")]
    gt = _run_ground_truth(entry, ground_truth)
    out = Verdict(valid=True, scored_turns=sum(1 for calls in ground_truth if calls))
    if len(complete) != len(ground_truth):
        out.valid, out.error_type = False, "multi_turn:force_terminated"
    so_far: list[str] = []
    for index, gt_calls in enumerate(ground_truth):
        if index >= len(complete):
            break
        turn = complete[index]
        so_far.extend(turn.get("results") or [])
        if not gt_calls:
            continue
        if not turn.get("calls"):
            out.turn_scores.append((False, 0.0))
            _fail(out, "multi_turn:empty_turn_model_response", index)
            continue
        state = turn.get("state") or {}
        state_ok = all(
            state.get(cls, {}).get(attr) == digest for cls, attrs in gt.states[index].items()
            for attr, digest in attrs.items()
        )
        wanted = gt.results[index]
        out.turn_scores.append((state_ok, _found(wanted, so_far) / len(wanted) if wanted else 1.0))
        if not state_ok:
            _fail(out, "multi_turn:instance_state_mismatch", index)
        elif not backend.response_checker(so_far, wanted, index)["valid"]:
            _fail(out, "multi_turn:execution_response_mismatch", index)
    return out


def _fail(out: Verdict, error_type: str, turn: int) -> None:
    if out.valid:  # the first failure is BFCL's verdict; later turns still count for the partial credit
        out.valid, out.error_type, out.turn = False, error_type, turn


def reference_verdict(record: dict[str, Any], ground_truth: list[list[str]], entry: Entry) -> dict[str, Any]:
    """BFCL's own checker (``multi_turn_checker``, re-executing both sides) on the record's calls."""
    turns = [t.get("calls") or [] for t in record.get("turns") or [] if t.get("complete")]
    return backend.bfcl_checker(turns, ground_truth, entry.executor_view())


def _inputs(trajectory: Trajectory) -> tuple[dict[str, Any], list[list[str]], Entry] | str:
    record = trajectory.env_state
    if not isinstance(record, dict) or "turns" not in record:
        return "no BFCL record in env_state (the row needs extra_info.rlfactory.environment: bfcl)"
    try:
        return record, ground_truth_of(trajectory), Entry.from_extra_info(trajectory.extra_info)
    except Exception as e:  # noqa: BLE001 - a bad row scores 0 with the reason, it does not stop the batch
        return f"{type(e).__name__}: {e}"


@reward
def bfcl_state_response(trajectory: Trajectory, checker: Literal["record", "bfcl"] = "record") -> RewardOutput:
    """1.0 when BFCL's multi-turn check (state after each turn, and responses) passes, else 0.0.

    ``checker="record"`` (default) judges the states the rollout's own instances had after each
    turn (:func:`verdict`); ``"bfcl"`` has BFCL's ``multi_turn_checker`` re-execute the recorded calls
    from the initial state (:func:`reference_verdict`). They agree on every replayed entry (the
    pack's tests); the second costs a re-execution per trajectory."""
    found = _inputs(trajectory)
    if isinstance(found, str):
        return RewardOutput(score=0.0, info={"bfcl_error": found})
    if checker == "bfcl":
        reference = reference_verdict(*found)
        valid, error_type = bool(reference["valid"]), reference.get("error_type")
    else:
        result = verdict(*found)
        valid, error_type = result.valid, result.error_type
    info: dict[str, Any] = {"bfcl_valid": float(valid)}
    if error_type:
        info["bfcl_error_type"] = error_type
    return RewardOutput(score=float(valid), info=info)


@reward
def bfcl_partial(trajectory: Trajectory, state_weight: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5) -> RewardOutput:
    """Dense credit: per non-empty ground-truth turn, ``state_weight`` for the state and the rest for the
    share of its results found; averaged over those turns (see the module docstring)."""
    found = _inputs(trajectory)
    if isinstance(found, str):
        return RewardOutput(score=0.0, info={"bfcl_error": found})
    result = verdict(*found)
    if not result.scored_turns:
        return RewardOutput(score=float(result.valid), info={"bfcl_valid": float(result.valid)})
    per_turn = [state_weight * float(ok) + (1 - state_weight) * share for ok, share in result.turn_scores]
    score = sum(per_turn) / result.scored_turns
    return RewardOutput(score=score, info={"bfcl_valid": float(result.valid), "bfcl_turns_scored": float(len(per_turn))})
