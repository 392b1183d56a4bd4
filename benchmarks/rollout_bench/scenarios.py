"""The benchmark scenarios: what each one changes in the workload and in the drivers' limits."""

from __future__ import annotations

from dataclasses import dataclass, replace

STATELESS_TOOL = "bench_search"
STATEFUL_TOOL = "bench_kernel"


@dataclass(frozen=True)
class ServerModel:
    """Cost model of the LLM server (a *profile*): a fixed time per request, a time per generated
    token and per 1k prompt tokens, with at most ``slots`` requests running at once (a
    continuous-batching engine's batch; a request holds its slot for its prefill and its decode)."""

    name: str = "light"
    slots: int = 64
    request_s: float = 0.005
    token_s: float = 0.001
    #: prefill seconds per 1000 prompt tokens, the whole context every turn (no prefix caching:
    #: a server without it, or whose cache a saturated batch has evicted)
    prefill_s_per_1k: float = 0.0
    #: reasoning tokens the model writes at every assistant turn (a ``<think>`` block before the
    #: visible text): generated, so paid for, and part of the response and of later turns' context
    hidden_tokens: int = 0

    def generation_s(self, prompt_tokens: int, response_tokens: int) -> float:
        return self.request_s + self.token_s * response_tokens + self.prefill_s_per_1k * prompt_tokens / 1000


#: the two server profiles every scenario runs under. ``light``: a lightly loaded server (64 slots,
#: no prefill cost, short turns), the tools set the pace. ``saturated``: 16 slots, a re-prefill of the
#: whole context per turn and 192 reasoning tokens per turn: a no-fault batch of 256 keeps the server
#: busy for ~14 s (the held-out harness's regime), so driver delays cost slot time.
PROFILES: dict[str, ServerModel] = {
    "light": ServerModel(),
    "saturated": ServerModel(name="saturated", slots=16, prefill_s_per_1k=0.05, hidden_tokens=192),
}


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int = 256
    #: every trajectory makes 1..max_tool_turns tool calls (one per turn), then answers
    max_tool_turns: int = 3
    tool_median_s: float = 0.1
    tool_sigma: float = 1.0
    #: latencies are clipped here, so one 1-in-10^4 draw does not set the whole run's length
    tool_max_s: float = 20.0
    #: share of tool calls that never return / that raise after their latency
    hang_rate: float = 0.0
    fail_rate: float = 0.0
    zero_latency: bool = False
    #: per-call tool timeout of rlfactory's tool manager and of the turn-synchronous loop
    tool_timeout_s: float = 60.0
    #: rlfactory.rollout.trajectory_timeout_s (the straggler policy), None = off
    deadline_s: float | None = None
    #: drivers with no timeout of their own (verl's ToolAgentLoop) are stopped after this
    wall_budget_s: float | None = None
    server: ServerModel = ServerModel()
    seed: int = 0
    #: an earlier scenario with the same workload whose verl / turn-sync runs apply unchanged
    #: (only rlfactory's straggler policy differs), so they are not run twice
    same_workload_as: str | None = None
    #: the tool is per-trajectory stateful (``bench_kernel``: a session per trajectory) instead of
    #: the stateless ``bench_search``
    stateful: bool = False
    #: seconds it takes to open one session of the stateful tool (a sandbox, a browser, an env reset)
    session_open_s: float = 0.0
    #: rlfactory.rollout.straggler_fraction / straggler_grace_s (the per-step straggler policy), None = off
    straggler_fraction: float | None = None
    straggler_grace_s: float = 10.0
    #: also run verl's ToolAgentLoop with a BaseTool applying the same per-call timeout (like for like)
    verl_timeout_run: bool = False
    #: the train_overlap scenario: a modelled trainer behind the rollout (benchmarks/rollout_bench/overlap.py)
    train_overlap: bool = False

    def __post_init__(self) -> None:
        if self.session_open_s and not self.stateful:
            raise ValueError(f"scenario {self.name!r}: session_open_s applies to a stateful tool only")

    @property
    def profile(self) -> str:
        return self.server.name

    @property
    def straggler_policy(self) -> bool:
        return self.deadline_s is not None or self.straggler_fraction is not None

    @property
    def max_turns(self) -> int:
        return self.max_tool_turns + 1

    @property
    def tool_name(self) -> str:
        """The tool the scripted model calls (workload texts, prompts, ``rlfactory.tools``, verl's tool list)."""
        return STATEFUL_TOOL if self.stateful else STATELESS_TOOL

    def scaled(self, factor: float) -> Scenario:
        """Every duration times ``factor`` (``--quick`` runs the same shapes faster)."""

        def opt(x: float | None) -> float | None:
            return None if x is None else x * factor

        server = replace(
            self.server,
            request_s=self.server.request_s * factor,
            token_s=self.server.token_s * factor,
            prefill_s_per_1k=self.server.prefill_s_per_1k * factor,
        )
        return replace(
            self,
            tool_median_s=self.tool_median_s * factor,
            tool_max_s=self.tool_max_s * factor,
            tool_timeout_s=self.tool_timeout_s * factor,
            deadline_s=opt(self.deadline_s),
            wall_budget_s=opt(self.wall_budget_s),
            session_open_s=self.session_open_s * factor,
            straggler_grace_s=self.straggler_grace_s * factor,
            server=server,
        )


def same_workload(a: Scenario, b: Scenario) -> bool:
    """True when ``a`` and ``b`` differ only in rlfactory's straggler policy."""

    def key(s: Scenario) -> Scenario:
        return replace(
            s, name="", deadline_s=None, straggler_fraction=None, straggler_grace_s=0.0, same_workload_as=None
        )

    return key(a) == key(b)


def all_scenarios(n: int, seed: int = 0, profiles: tuple[str, ...] = tuple(PROFILES)) -> list[Scenario]:
    """Every scenario under each server profile (light first), at batch size ``n``: the five of
    issues 10 + 12, the straggler-fraction variant of the deadline, ``stateful`` and ``train_overlap``."""
    out: list[Scenario] = []
    for profile in profiles:
        base = Scenario(name="no_faults", n=n, seed=seed, server=PROFILES[profile])
        long_tail = replace(base, name="long_tail", tool_sigma=2.0)
        out += [
            base,
            replace(base, name="hangs", hang_rate=0.01, fail_rate=0.01, tool_timeout_s=5.0, wall_budget_s=30.0,
                    verl_timeout_run=True),
            long_tail,
            # seconds tuned to the light profile's batch (~4.9 s bound) ...
            replace(long_tail, name="long_tail_deadline", deadline_s=5.0, same_workload_as="long_tail"),
            # ... and a deadline relative to the step: once 90 % of the batch is done, the rest get 2 s
            replace(long_tail, name="long_tail_straggler", straggler_fraction=0.9, straggler_grace_s=2.0,
                    same_workload_as="long_tail"),
            replace(base, name="zero_latency", zero_latency=True),
            # a per-trajectory session (open cost 0.1 s) behind the same scripted calls
            replace(base, name="stateful", stateful=True, session_open_s=0.1),
            # a modelled trainer behind the long-tail rollout: sync / sync + recycling / fully-async
            replace(long_tail, name="train_overlap", train_overlap=True),
        ]
    return out
