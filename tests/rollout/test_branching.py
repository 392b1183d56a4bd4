"""The branching rollout (rlfactory.rollout.branching): a GRPO group's sessions forked after tool results.

The group runs as verl's V1 worker runs it: the ``n`` sessions of one ``uid`` as concurrent calls of one
``rlfactory_agent`` loop, against a scripted server whose log-probs set each turn's entropy.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from verl.workers.rollout.replica import TokenOutput

from rlfactory_plugins import hookimpl, plugins
from rlfactory_plugins.config.branching import BranchingConfig
from rlfactory_plugins.errors import ConfigError
from rlfactory_plugins.rollout.branching import BranchCoordinator, prefix_digest, turn_entropy
from rlfactory_plugins.verl.advantage_context import BRANCH_KEY, branches_of
from rlfactory_plugins.verl.branch_credit import Branch, branch_grpo_advantages
from rlfactory_plugins.verl.branch_setup import VALIDATING
from tests.helpers.rollout import make_agent_loop, run_loop, section, traj_of

pytestmark = pytest.mark.timeout(60)

LOOKUP = '<tool_call>{"name": "lookup", "arguments": {"query": "capital"}}</tool_call>'


class LookupPlugin:
    """A stateless tool that records every call it runs."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def register_tools(self, register):
        def lookup(query: str) -> str:
            "Look the query up."
            self.calls.append(query)
            return f"found {query} #{len(self.calls)}"

        register(lookup)


@pytest.fixture
def lookup(tools_plugin) -> LookupPlugin:
    plugin = LookupPlugin()
    pm, registry = plugins.load_plugins()
    plugins.register_plugin(pm, registry, plugin, "branching-test-tools")
    assert not registry.errors, registry.errors
    return plugin


class EntropyServer:
    """Answers turn ``t`` of any trajectory with ``turns[t]``; each token's log-prob is ``-surprisal[t]``.

    The turn is read from the prompt (one ``<|im_start|>assistant`` per turn so far), so a branch, which
    starts with its parent's prefix, is answered like its parent at that turn.
    """

    def __init__(self, tokenizer: Any, turns: list[str], surprisal: list[float], delay: float = 0.01) -> None:
        self.tokenizer, self.turns, self.surprisal, self.delay = tokenizer, turns, surprisal, delay
        self.calls: list[dict[str, Any]] = []
        self.start = tokenizer.encode("<|im_start|>assistant", add_special_tokens=False)

    def turn_of(self, ids: list[int]) -> int:
        k = len(self.start)
        return sum(ids[i : i + k] == self.start for i in range(len(ids) - k + 1)) - 1

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kw):
        turn = self.turn_of(list(prompt_ids))
        self.calls.append({"request_id": request_id, "prompt_ids": list(prompt_ids), "turn": turn,
                           "params": dict(sampling_params)})
        await asyncio.sleep(self.delay)
        text = self.turns[min(turn, len(self.turns) - 1)].replace("{n}", str(len(self.calls)))
        ids = self.tokenizer.encode(text, add_special_tokens=False) + [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        ids = ids[: sampling_params["max_tokens"]]
        lp = -self.surprisal[min(turn, len(self.surprisal) - 1)]
        logprobs = [lp] * len(ids) if sampling_params.get("logprobs") else None
        return TokenOutput(token_ids=ids, log_probs=logprobs, stop_reason="completed", extra_fields={"global_steps": 3})


def branching_section(margin: float = 1.0, **branching: Any) -> dict[str, Any]:
    cfg = section()
    cfg["tools"] = [*cfg["tools"], "lookup"]
    cfg["rollout"] = {"branching": {"enabled": True, "global_samples": 2, "max_branches": 2, "entropy_tokens": 4,
                                    "margin": margin, **branching}}
    return cfg


async def run_group(loop, n: int, uid: str | None = None, **kwargs: Any) -> list[Any]:
    """The ``n`` sessions of one prompt, run as verl's V1 worker runs them; ``uid`` fresh by default (verl's are
    unique, and the process's coordinator remembers the groups that are over)."""
    uid = uid or uuid.uuid4().hex
    return list(await asyncio.gather(*(run_loop(loop, session_id=i, uid=uid, **kwargs) for i in range(n))))


def test_turn_entropy_is_the_mean_surprisal_of_the_first_k_tokens():
    assert turn_entropy([-1.0, -3.0, -100.0], 2) == pytest.approx(2.0)
    assert turn_entropy([-0.5], 8) == pytest.approx(0.5)
    assert turn_entropy(None, 4) is None and turn_entropy([], 4) is None


async def test_high_entropy_after_a_tool_result_forks_the_waiting_sessions(lookup, tokenizer):
    server = EntropyServer(tokenizer, [f"Let me look. {LOOKUP}", "<answer>Paris {n}</answer>"], surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section(margin=1.0)), n=4)
    trajs = [traj_of(o) for o in outs]

    # two globals ran the tool once each; the two branches reused the result of the first global to fork
    assert len(lookup.calls) == 2
    assert [t.branch is None for t in trajs] == [True, True, False, False]
    p = int(trajs[2].branch.parent)  # which global reaches its tool result first is up to the event loop
    assert p in (0, 1) and trajs[3].branch.parent == str(p)
    assert [f.sessions for f in trajs[p].forks] == [["2", "3"]] and trajs[1 - p].forks == []
    fork = trajs[p].forks[0]
    assert fork.turn == 1 and fork.entropy == pytest.approx(3.0) and fork.initial_entropy == pytest.approx(0.1)
    parent = outs[p]
    prefix = fork.prefix
    first_obs_end = next(i for i in range(len(parent.response_mask) - 1, -1, -1) if parent.response_mask[i] == 0) + 1
    assert prefix == first_obs_end  # right after the tool result
    for out, traj in zip(outs[2:], trajs[2:], strict=True):
        assert out.extra_fields[BRANCH_KEY] == {"parent": str(p), "prefix": prefix}
        assert traj.branch.turn == 1 and traj.branch.parent_key == trajs[p].key
        # the branch's response starts with the parent's ids, mask and log-probs, and its turn 0 (with the
        # tool result) is the parent's
        assert out.response_ids[:prefix] == parent.response_ids[:prefix]
        assert out.response_mask[:prefix] == parent.response_mask[:prefix]
        assert out.response_logprobs[:prefix] == parent.response_logprobs[:prefix]
        assert out.response_ids[prefix:] != parent.response_ids[prefix:]  # its own turn 1 ({n} differs)
        assert traj.branch.prefix_sha256 == fork.prefix_sha256 == prefix_digest(parent.response_ids[:prefix])
        assert traj.turns[0] == trajs[p].turns[0] and traj.turns[0].tool_calls[0].result.output.startswith("found capital #")
        assert traj.stop_reason == "answer" and traj.final_answer.startswith("Paris")
        assert traj.messages[: len(trajs[p].messages) - 1] == trajs[p].messages[:-1]
        assert out.extra_fields["rlfactory_stats"]["branch/calls_inherited"] == 1.0
    # a branch's first request is prompt + the parent's prefix, as the parent's second was
    by_request = {}
    for c in server.calls:
        by_request.setdefault(c["request_id"], []).append(c)
    firsts = sorted((calls[0] for calls in by_request.values()), key=lambda c: c["turn"])
    assert [c["turn"] for c in firsts] == [0, 0, 1, 1]
    assert all(c["prompt_ids"] == parent.prompt_ids + parent.response_ids[:prefix] for c in firsts[2:])
    assert len(server.calls) == 6  # 2 turns per global, 1 per branch

    # what rlfactory_branch_grpo reads: the records turn into batch rows of the parent
    keys = [f"{trajs[0].uid}_{i}_0" for i in range(4)]
    branches = branches_of(keys, [o.extra_fields for o in outs])
    assert branches == [Branch(), Branch(), Branch(parent=p, prefix=prefix), Branch(parent=p, prefix=prefix)]


async def test_attribution_over_a_branched_group_from_the_loop_outputs(lookup, tokenizer):
    import torch

    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>{n}</answer>"], surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section()), n=4)
    width = max(len(o.response_ids) for o in outs)
    mask = torch.tensor([o.response_mask + [0] * (width - len(o.response_mask)) for o in outs])
    rewards = torch.zeros(4, width)
    for i, r in enumerate([1.0, 0.0, 1.0, 0.0]):
        rewards[i, len(outs[i].response_ids) - 1] = r
    branches = branches_of([f"g_{i}_0" for i in range(4)], [o.extra_fields for o in outs])
    adv = branch_grpo_advantages(rewards, mask, ["g1"] * 4, branches)
    grpo = branch_grpo_advantages(rewards, mask, ["g1"] * 4)
    p, prefix = branches[2].parent, branches[2].prefix
    assert p in (0, 1) and branches[3] == Branch(parent=p, prefix=prefix), branches
    shared = (adv[p, :prefix][mask[p, :prefix] == 1])
    # the parent's prefix is shared by it and both branches: the mean of their GRPO advantages
    expected = (grpo[p, 0] + grpo[2, 0] + grpo[3, 0]) / 3
    assert torch.allclose(shared, expected.expand_as(shared))
    assert torch.allclose(adv[2, :prefix][mask[2, :prefix] == 1], expected.expand(int(mask[2, :prefix].sum())))
    tail = mask[2, prefix:] == 1
    assert torch.allclose(adv[2, prefix:][tail], grpo[2, prefix:][tail])  # its own tokens: its own advantage
    tail = mask[p, prefix:] == 1
    assert torch.allclose(adv[p, prefix:][tail], grpo[p, prefix:][tail])
    assert torch.equal(adv[1 - p], grpo[1 - p])  # the other global shares nothing


async def test_without_an_entropy_rise_the_waiting_sessions_run_from_the_prompt(lookup, tokenizer):
    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>x</answer>"], surprisal=[1.0, 1.2])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section(margin=1.0)), n=4)
    trajs = [traj_of(o) for o in outs]
    assert all(t.branch is None and not t.forks for t in trajs)
    assert all(BRANCH_KEY not in o.extra_fields for o in outs)
    assert len(lookup.calls) == 4 and all(t.stop_reason == "answer" for t in trajs)
    # the waiting sessions started only once both globals had ended (they could have forked until then)
    order = [c["turn"] for c in server.calls]
    assert order == [0, 0, 1, 1, 0, 0, 1, 1]


async def test_a_fork_per_high_entropy_point_up_to_max_branches(lookup, tokenizer):
    """max_branches=1: each global forks one branch at its tool result; n=5 leaves a fifth session that
    either a branch forks later (never: one tool call per trajectory here) or runs from the prompt."""
    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>{n}</answer>"], surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section(max_branches=1)), n=5)
    trajs = [traj_of(o) for o in outs]
    assert [len(f.sessions) for t in trajs[:2] for f in t.forks] == [1, 1]
    assert sorted(t.branch.parent for t in trajs if t.branch) == ["0", "1"]
    assert sum(t.branch is None for t in trajs) == 3  # two globals and the released fifth
    assert len(lookup.calls) == 3


async def test_trainer_without_log_probs_still_branches_and_keeps_none(lookup, tokenizer):
    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>{n}</answer>"], surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section()), n=4, logprobs=False)
    assert all(c["params"]["logprobs"] is True for c in server.calls)
    assert all(o.response_logprobs is None for o in outs)
    assert [traj_of(o).branch is not None for o in outs] == [False, False, True, True]


async def test_validation_samples_never_branch(lookup, tokenizer):
    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>{n}</answer>"], surprisal=[0.1, 3.0])
    loop = make_agent_loop(server, tokenizer, branching_section())

    async def validate(i: int):
        VALIDATING.set(True)
        return await run_loop(loop, session_id=i, uid="validation-group", logprobs=False)

    outs = await asyncio.gather(*(validate(i) for i in range(4)))
    assert all(traj_of(o).branch is None for o in outs) and len(lookup.calls) == 4
    assert all(c["params"]["logprobs"] is False for c in server.calls)


async def test_rows_with_stateful_tools_are_refused_for_every_session(counts, tokenizer):
    cfg = branching_section()
    cfg["tools"] = [*cfg["tools"][:-1], {"name": "kv", "timeout": 60}]
    server = EntropyServer(tokenizer, [LOOKUP], surprisal=[0.1])
    outs = await asyncio.wait_for(run_group(make_agent_loop(server, tokenizer, cfg), n=4), 10)
    for out in outs:
        traj = traj_of(out)
        assert traj.stop_reason == "error" and "BranchingRowError" in traj.error and "['kv']" in traj.error
        assert "rlfactory.rollout.branching.enabled=false" in traj.error
    assert server.calls == [] and counts.opens == []
    # a row whose tool set leaves the stateful tool out branches as usual
    server = EntropyServer(tokenizer, [f"Look. {LOOKUP.replace('lookup', 'search')}", "<answer>{n}</answer>"],
                           surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, cfg), n=4,
                           extra_info={"rlfactory": {"tools": ["search"]}})
    assert [traj_of(o).branch is not None for o in outs] == [False, False, True, True]


def test_configs_the_branching_cannot_serve_fail_at_start(tools_plugin, tokenizer):
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap

    from rlfactory_plugins.verl.agent_loop import RLFactoryAgentLoop

    def build(n: int, use_v1: bool = True):
        config = OmegaConf.create({
            "actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": 256, "n": n}},
            "trainer": {"use_v1": use_v1}, "data": {"continuous_token": {"enable": False}},
            "rlfactory": branching_section(global_samples=4),
        })
        return RLFactoryAgentLoop(trainer_config=DictConfigWrap(config), server_manager=None, tokenizer=tokenizer,
                                  processor=None, dataset_cls=None, data_config=DictConfigWrap(config.data),
                                  hf_model_type="qwen2")

    with pytest.raises(ConfigError, match=r"global_samples=4 leaves no sample of a group of .*rollout.n=4"):
        build(4)
    with pytest.raises(ConfigError, match=r"needs verl's V1 trainer \(trainer.use_v1=true"):
        build(8, use_v1=False)
    assert build(8).branching.global_samples == 4


async def test_a_session_joining_a_group_that_is_over_runs_from_the_prompt():
    coordinator = BranchCoordinator()
    config = BranchingConfig(enabled=True, global_samples=1)
    first = coordinator.enter("u", 0, config)
    first.leave()
    assert len(coordinator) == 0 and coordinator.enter("u", 1, config) is None
    # a waiter cancelled before any fork is skipped; the next waiter gets the fork
    g0, w1, w2 = (coordinator.enter("w", i, config) for i in range(3))
    w1.waiting.cancel()
    taken = g0.group.offer(lambda: "fork", 1)  # type: ignore[arg-type,return-value]
    assert taken == ["2"] and await w2.fork() == "fork"


async def test_step_metrics_count_each_tool_call_where_it_ran(lookup, tokenizer):
    from rlfactory_plugins.rollout.batch_metrics import batch_metrics

    server = EntropyServer(tokenizer, [f"Look. {LOOKUP}", "<answer>{n}</answer>"], surprisal=[0.1, 3.0])
    outs = await run_group(make_agent_loop(server, tokenizer, branching_section()), n=4)
    records = [o.extra_fields["rlfactory_trajectory"] for o in outs]
    stats = [o.extra_fields["rlfactory_stats"] for o in outs]
    metrics = batch_metrics(records, stats, [])
    assert metrics["tool/lookup/calls"] == 2.0 == len(lookup.calls)
    assert metrics["rollout/calls/mean"] == 1.0  # every trajectory's response holds one call
    assert metrics["rollout/branch/branched/mean"] == 0.5 and metrics["rollout/branch/forks/mean"] == 0.5


async def test_a_waiter_cancelled_after_its_fork_came_still_counts_out():
    coordinator = BranchCoordinator()
    config = BranchingConfig(enabled=True, global_samples=1, max_branches=1)
    g0, w1, w2 = (coordinator.enter("c", i, config) for i in range(3))
    task = asyncio.ensure_future(w1.fork())
    await asyncio.sleep(0)
    assert g0.group.offer(lambda: "fork", 1) == ["1"]  # type: ignore[arg-type,return-value]
    task.cancel()  # before it resumed with the fork
    w1.leave()
    g0.leave()  # the last trajectory that could fork: the other waiter runs from the prompt
    assert await asyncio.wait_for(w2.fork(), 1) is None
    w2.leave()
    assert len(coordinator) == 0
