"""rlfactory's conformance suites, run on the installed pack (entry point ``bfcl``)."""

from __future__ import annotations

import json

from rlfactory_env_bfcl import backend
from rlfactory_env_bfcl.calls import build_call, parse_call
from rlfactory_env_bfcl.data import row_of
from rlfactory_env_bfcl.episode import Entry, Episode
from rlfactory_plugins.testing import RewardPackTests, ToolPackTests


def replayed_trajectory(entry_id: str = "multi_turn_base_1") -> dict:
    """A trajectory record of one entry's ground truth, as the environment exports it."""
    entry = next(e for e in backend.load_entries("multi_turn_base") if e["id"] == entry_id)
    episode = Episode(Entry.model_validate(entry), "conformance")
    for calls in entry["ground_truth"]:
        for call in calls:
            name, arguments = parse_call(call, entry["involved_classes"])
            episode.execute(build_call(name.split("_", 1)[1], arguments))
        episode.end_turn(complete=True)
    record = episode.record()
    episode.purge()
    row = row_of(entry)
    return {"env_state": record, "extra_info": row["extra_info"], "ground_truth": row["reward_model"]["ground_truth"]}


class TestMkdir(ToolPackTests):
    entry_point = "bfcl"
    family = "env"
    tool_name = "GorillaFileSystem_mkdir"
    # outside a trajectory: a fresh file system from BFCL's default state, released after the call
    valid_arguments = {"dir_name": "reports"}
    invalid_arguments = {"dir_name": "__import__('os')"}


class TestMean(ToolPackTests):
    entry_point = "bfcl"
    family = "env"
    tool_name = "MathAPI_mean"
    valid_arguments = {"numbers": [1, 2, 3]}
    invalid_arguments = {"numbers": "1, 2, 3"}
    expected_in_output = json.dumps({"result": 2.0})


class TestStateResponse(RewardPackTests):
    kind = "tool"  # the rewards ship in the environment pack's distribution
    entry_point = "bfcl"
    family = "env"
    reward_name = "bfcl_state_response"
    trajectory = replayed_trajectory()
    expected_score = 1.0
    invalid_options = {"checker": "mine"}


class TestPartial(RewardPackTests):
    kind = "tool"
    entry_point = "bfcl"
    family = "env"
    reward_name = "bfcl_partial"
    trajectory = replayed_trajectory()
    options = {"state_weight": 0.7}
    expected_score = 1.0
    invalid_options = {"state_weight": "half"}
