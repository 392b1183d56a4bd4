"""The benchmark scenarios: what each one changes in the workload and in the drivers' limits."""

from __future__ import annotations

from dataclasses import dataclass, replace

STATELESS_TOOL = "bench_search"
STATEFUL_TOOL = "bench_kernel"


@dataclass(frozen=True)
class ServerModel:
    """Cost model of the LLM server: a fixed time per request plus a time per generated token,
    with at most ``slots`` requests decoding at once (a continuous-batching engine's batch)."""

    slots: int = 64
    request_s: float = 0.005
    token_s: float = 0.001


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

    def __post_init__(self) -> None:
        if self.session_open_s and not self.stateful:
            raise ValueError(f"scenario {self.name!r}: session_open_s applies to a stateful tool only")

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

        server = replace(self.server, request_s=self.server.request_s * factor, token_s=self.server.token_s * factor)
        return replace(
            self,
            tool_median_s=self.tool_median_s * factor,
            tool_max_s=self.tool_max_s * factor,
            tool_timeout_s=self.tool_timeout_s * factor,
            deadline_s=opt(self.deadline_s),
            wall_budget_s=opt(self.wall_budget_s),
            session_open_s=self.session_open_s * factor,
            server=server,
        )


def same_workload(a: Scenario, b: Scenario) -> bool:
    """True when ``a`` and ``b`` differ only in rlfactory's straggler policy."""

    def key(s: Scenario) -> Scenario:
        return replace(s, name="", deadline_s=None, same_workload_as=None)

    return key(a) == key(b)


def all_scenarios(n: int, seed: int = 0) -> list[Scenario]:
    """The five scenarios of issues 10 + 12, then ``stateful`` and ``saturated``, at batch size ``n``."""
    base = Scenario(name="no_faults", n=n, seed=seed)
    long_tail = replace(base, name="long_tail", tool_sigma=2.0)
    return [
        base,
        replace(base, name="hangs", hang_rate=0.01, fail_rate=0.01, tool_timeout_s=5.0, wall_budget_s=30.0),
        long_tail,
        replace(long_tail, name="long_tail_deadline", deadline_s=5.0, same_workload_as="long_tail"),
        replace(base, name="zero_latency", zero_latency=True),
        # a per-trajectory session (open cost 0.1 s) behind the same scripted calls
        replace(base, name="stateful", stateful=True, session_open_s=0.1),
        # the server is the bottleneck: 8 slots keep it busy ~98 % of the bound (64 slots: ~16 %)
        replace(base, name="saturated", server=ServerModel(slots=8)),
    ]
