"""verl's ``main_ppo`` with ``+plugins=rlfactory`` on BFCL rows (the rlfactory-env-bfcl pack): rows from
``examples/bfcl/prepare_data.py``'s row builder go through verl's dataset, the ``bfcl`` environment
and its tools run in the agent-loop workers, and the reward manager scores each trajectory's BFCL
record with ``bfcl_partial``/``bfcl_state_response``. The tiny model is random (it rarely calls a
tool), so this checks the plumbing of a real run, not learning; the pack's replay test checks the
scoring on every entry."""

from __future__ import annotations


import pytest

from rlfactory_plugins.verl.cpu import cpu_mode_requested
from tests.helpers.e2e import REWARD_SOURCE, Workspace, grpo_overrides, read_dumps, run_main_ppo, with_settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not cpu_mode_requested(), reason="CPU mode is off here (accelerator present or RLFACTORY_CPU=0)"),
]
pytest.importorskip("rlfactory_env_bfcl", reason="the BFCL pack (tool_plugins/rlfactory-env-bfcl, bfcl-eval --no-deps)")

#: TradingBot-only entries of multi_turn_base with two or three user turns
ENTRIES = ("multi_turn_base_105", "multi_turn_base_115", "multi_turn_base_120", "multi_turn_base_100")
#: each row sees these functions only (a row's own tool set): ~1.2k prompt tokens instead of ~5k, for speed
ROW_TOOLS = ["TradingBot_get_stock_info", "TradingBot_get_watchlist", "TradingBot_place_order"]
SETTINGS = {
    "data.max_prompt_length": "2048",
    "data.max_response_length": "768",
    "data.train_batch_size": "4",
    "actor_rollout_ref.rollout.n": "2",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "1",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "1",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import pandas as pd

    from rlfactory_env_bfcl.backend import load_entries
    from rlfactory_env_bfcl.data import row_of
    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("bfcl")
    entries = {e["id"]: e for e in load_entries("multi_turn_base")}
    rows = [row_of(entries[i]) for i in ENTRIES]
    for row in rows:
        row["extra_info"]["rlfactory"]["tools"] = ROW_TOOLS
    frame = pd.DataFrame(rows)
    train, val = root / "train.parquet", root / "val.parquet"
    frame.to_parquet(train)
    frame.to_parquet(val)
    reward = root / "reward.py"
    reward.write_text(REWARD_SOURCE)
    ws = Workspace(root=root, model=build_tiny_model(root / "model"), train_file=train, val_file=val,
                   reward_file=reward)
    overrides = with_settings(grpo_overrides(ws, steps=2, n_workers=2), SETTINGS) + [
        "rlfactory.parser=hermes",
        "rlfactory.tools=['TradingBot_*']",
        "rlfactory.rewards=[{name: bfcl_partial, weight: 1.0}, {name: bfcl_state_response, weight: 0.0}]",
        "rlfactory.rollout.max_turns=6",
        f"rlfactory.trajectory_dir={root / 'trajectories'}",
    ]
    result = run_main_ppo(ws, overrides, timeout=480)
    result.succeeded()
    dumps = read_dumps(root / "trajectories")
    return result, dumps


def test_two_grpo_steps_on_bfcl_rows_with_a_bfcl_record_per_trajectory(run):
    result, dumps = run
    from collections import Counter

    print(f"\nstop reasons {dict(Counter(t['stop_reason'] for t in dumps))}, user turns {[t['user_turns'] for t in dumps]}, "
          f"tool calls {sum(len(turn['tool_calls']) for t in dumps for turn in t['turns'])}")
    assert sorted(result.metrics) == [1, 2]
    assert len(dumps) == 2 * 4 * 2  # steps x rows x samples
    for t in dumps:
        assert t["extra_info"]["rlfactory"]["environment"]["name"] == "bfcl", t["extra_info"]
        assert t["env_state"]["entry_id"] == t["extra_info"]["index"]
        assert t["tools"] == ROW_TOOLS
        assert t["stop_reason"] in {"env_done", "answer", "max_length", "max_turns", "no_call"}, t["error"]
        assert t["error"] is None
    rewards = {k for m in result.metrics.values() for k in m if "bfcl" in k}
    assert rewards, sorted(k for m in result.metrics.values() for k in m)
