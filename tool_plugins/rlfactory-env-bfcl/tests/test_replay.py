"""Replaying BFCL's ground truth through the real ``rlfactory_agent`` loop (CPU, tiny tokenizer, hermes).

A scripted policy emits each ground-truth call of an entry as its own assistant turn
(``<tool_call>{"name": "Class.method", "arguments": {...}}</tool_call>``) and ends each user turn
with a plain text turn, so the whole path runs: per-row tools, the ``bfcl`` session, user turns
and reveals from the environment, the state record, the reward. rlfactory's verdict (from the
rollout's own state record) must equal BFCL's ``multi_turn_checker`` (re-executing the recorded
calls) on every entry, and a perturbed replay must be rejected by both.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("verl", reason="the replay runs rlfactory's verl agent loop: install rlfactory[verl]")

from omegaconf import OmegaConf  # noqa: E402
from verl.experimental.agent_loop.agent_loop import DictConfigWrap  # noqa: E402
from verl.workers.rollout.replica import TokenOutput  # noqa: E402

from rlfactory_env_bfcl import ENVIRONMENT, backend  # noqa: E402
from rlfactory_env_bfcl.calls import parse_call  # noqa: E402
from rlfactory_env_bfcl.data import row_of  # noqa: E402
from rlfactory_env_bfcl.episode import Entry  # noqa: E402
from rlfactory_env_bfcl.rewards import bfcl_state_response, reference_verdict, verdict  # noqa: E402
from rlfactory_plugins.trajectory import Trajectory  # noqa: E402
from rlfactory_plugins.verl.agent_loop import RLFactoryAgentLoop  # noqa: E402

pytestmark = pytest.mark.timeout(300)
LENGTH = 65536


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    return AutoTokenizer.from_pretrained(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@dataclass
class Policy:
    """A server manager that answers with a script, one turn per call."""

    tokenizer: Any
    turns: list[str]
    sent: int = 0
    prompts: list[int] = field(default_factory=list)

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw):
        text = self.turns[min(self.sent, len(self.turns) - 1)]
        self.sent += 1
        self.prompts.append(len(prompt_ids))
        ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        return TokenOutput(token_ids=ids, log_probs=None, stop_reason="completed", extra_fields={})


def call_text(name: str, arguments: dict[str, Any]) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def script(entry: dict[str, Any], turns: list[list[str]]) -> list[str]:
    out = []
    for calls in turns:
        out += [call_text(*parse_call(c, entry["involved_classes"])) for c in calls]
        out.append("Done with this request.")
    return out


def agent_loop(policy: Policy, tokenizer) -> RLFactoryAgentLoop:
    section = {
        "tools": [f"{c}_*" for c in backend.CLASSES],
        "parser": "hermes",
        "rollout": {"max_turns": 64, "max_user_turns": 16, "max_observation_tokens": 4096},
        "tool_manager": {"retries": 0},
    }
    config = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": LENGTH, "response_length": LENGTH}},
        "data": {"continuous_token": {"enable": False}},
        "rlfactory": section,
    })
    return RLFactoryAgentLoop(
        trainer_config=DictConfigWrap(config), server_manager=policy, tokenizer=tokenizer, processor=None,
        dataset_cls=None, data_config=DictConfigWrap(config.data), hf_model_type="qwen2",
    )


async def replay(entry: dict[str, Any], turns: list[list[str]], tokenizer) -> Trajectory:
    row = row_of(entry)
    policy = Policy(tokenizer, script(entry, turns))
    params = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": False}
    out = await agent_loop(policy, tokenizer).run(
        params, raw_prompt=row["prompt"], extra_info=row["extra_info"], reward_model=row["reward_model"],
        data_source=row["data_source"], uid=entry["id"],
    )
    return Trajectory.model_validate(out.extra_fields["rlfactory_trajectory"])


async def verdicts(entries: list[dict[str, Any]], turns_of, tokenizer) -> dict[str, tuple[bool, bool, float]]:
    """entry id -> (rlfactory's verdict, BFCL's verdict, the reward), replaying ``turns_of(entry)``."""
    reward = bfcl_state_response.bind(None)
    bfcl_reexecuting = bfcl_state_response.bind({"checker": "bfcl"})
    out: dict[str, tuple[bool, bool, float]] = {}
    for start in range(0, len(entries), 25):
        chunk = entries[start : start + 25]
        trajectories = await asyncio.gather(*(replay(e, turns_of(e), tokenizer) for e in chunk))
        for entry, traj in zip(chunk, trajectories, strict=True):
            assert traj.error is None, (entry["id"], traj.error)
            parsed = Entry.model_validate(entry)
            ours = verdict(traj.env_state, entry["ground_truth"], parsed).valid
            theirs = reference_verdict(traj.env_state, entry["ground_truth"], parsed)["valid"]
            score = (await reward.ascore(traj)).score
            assert (await bfcl_reexecuting.ascore(traj)).score == float(theirs)
            out[entry["id"]] = (ours, theirs, score)
    return out


def ground_truth(entry):
    return entry["ground_truth"]


async def test_ground_truth_replay_of_multi_turn_base_scores_1_and_matches_bfcl(tokenizer):
    entries = backend.load_entries("multi_turn_base")
    started = time.perf_counter()
    first = await verdicts(entries, ground_truth, tokenizer)
    elapsed = time.perf_counter() - started
    print(f"\nreplayed {len(entries)} multi_turn_base entries in {elapsed:.1f}s")
    assert len(first) == 200
    disagree = [k for k, (ours, theirs, _) in first.items() if ours != theirs]
    assert disagree == []
    passed = sum(score == 1.0 for _, _, score in first.values())
    assert passed >= 190, f"{passed}/200 entries score 1.0"
    assert len(ENVIRONMENT.episodes) == 0 and backend.leftover_instances() == 0
    psutil = pytest.importorskip("psutil")
    assert psutil.Process().children(recursive=True) == []  # BFCL's classes run in-process: nothing to reap
    again = await verdicts(entries[:40], ground_truth, tokenizer)
    assert again == {k: first[k] for k in again}
    assert backend.leftover_instances() == 0


@pytest.mark.parametrize("category", ["multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context"])
async def test_ground_truth_replay_of_the_other_categories(tokenizer, category):
    entries = backend.load_entries(category)
    found = await verdicts(entries, ground_truth, tokenizer)
    assert all(ours == theirs == (score == 1.0) for ours, theirs, score in found.values()), found
    assert sum(score == 1.0 for _, _, score in found.values()) >= 190
    assert backend.leftover_instances() == 0


#: the "extra destructive call": per class, one that changes its state from the entries' states,
#: tried in this order (TicketAPI and TwitterAPI refuse writes before a login, and TradingBot
#: silently ignores an unknown stock, so those come last)
DESTRUCTIVE = {
    "GorillaFileSystem": "mkdir(dir_name='rlf_extra')",
    "MessageAPI": "add_contact(user_name='rlf_extra')",
    "VehicleControlAPI": "set_navigation(destination='1 Extra Road, Nowhere, NW')",
    "TradingBot": "fund_account(amount=1000.0)",
    "TicketAPI": "create_ticket(title='rlf extra')",
    "TwitterAPI": "post_tweet(content='rlf extra')",
}


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value[1:] if value else ["x"]
    return {}


def perturbed(entry: dict[str, Any]) -> list[list[str]]:
    """The ground truth with one call changed; the kind rotates with the entry's number."""
    from rlfactory_env_bfcl.calls import build_call

    turns = [list(t) for t in entry["ground_truth"]]
    kind = int(entry["id"].rsplit("_", 1)[1]) % 3
    first = next(i for i, t in enumerate(turns) if t)
    if kind == 0:  # wrong argument: the first call with an argument gets its first one changed
        for turn in turns:
            for j, call in enumerate(turn):
                name, args = parse_call(call, entry["involved_classes"])
                if args:
                    key = next(iter(args))
                    turn[j] = build_call(name.split("_", 1)[1], {**args, key: _changed(args[key])})
                    return turns
        kind = 1
    if kind == 1:  # skipped call: the last one of the first non-empty turn
        turns[first].pop()
        return turns
    extra = next((call for c, call in DESTRUCTIVE.items() if c in entry["involved_classes"]), None)
    if extra is None:
        turns[first].pop()
    else:
        turns[first].append(extra)
    return turns


async def test_perturbed_replay_is_rejected_by_bfcl_and_rlfactory_alike(tokenizer):
    entries = backend.load_entries("multi_turn_base")
    found = await verdicts(entries, perturbed, tokenizer)
    disagree = [k for k, (ours, theirs, _) in found.items() if ours != theirs]
    assert disagree == []
    accepted = sorted((k for k, (_, theirs, _) in found.items() if theirs), key=lambda k: int(k.rsplit("_", 1)[1]))
    print(f"\nBFCL accepts {len(accepted)}/200 perturbed replays: {accepted}")
    assert len(accepted) <= 10
    assert all(score == float(ours) for ours, _, score in found.values())
    assert backend.leftover_instances() == 0 and len(ENVIRONMENT.episodes) == 0


async def test_evaluate_scores_dumped_trajectories_in_bfcls_terms(tokenizer, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    base = backend.load_entries("multi_turn_base")[:6]
    miss = backend.load_entries("multi_turn_miss_func")[:4]
    dumps = [await replay(e, ground_truth(e), tokenizer) for e in base]
    dumps += [await replay(e, perturbed(e) if i % 2 else ground_truth(e), tokenizer) for i, e in enumerate(miss)]
    (tmp_path / "step_00001.1.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in dumps))
    script = Path(__file__).resolve().parents[3] / "examples" / "bfcl" / "evaluate.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--json"], capture_output=True, text=True,
                         check=True).stdout
    report = json.loads(out)
    assert report["accuracy"] == {"multi_turn_base": 1.0, "multi_turn_miss_func": 0.5}
    assert report["multi_turn_overall"] == 0.75 and sum(report["error_types"].values()) == 2


async def test_a_withheld_function_is_unknown_until_its_reveal_turn(tokenizer):
    entry = backend.load_entries("multi_turn_miss_func")[0]  # 'sort' is withheld until user turn 3
    (turn, (hidden,)), = entry["missed_function"].items()
    gt = [list(t) for t in entry["ground_truth"]]
    reveal = int(turn)
    early = next(c for c in gt[reveal] if c.startswith(hidden + "("))
    gt[reveal - 2] = [*gt[reveal - 2], early]  # called two turns before it is revealed
    traj = await replay(entry, gt, tokenizer)
    calls = [(t.index, c.name, c.result.status.value) for t in traj.turns for c in t.tool_calls]
    name = f"GorillaFileSystem_{hidden}"
    statuses = [status for _, n, status in calls if n == name]
    assert statuses == ["unknown_tool", "ok"], calls
    revealing = next(t for t in traj.turns if t.tools_added)
    assert revealing.tools_added == [name] and name in revealing.env_message
    assert name in traj.tools
