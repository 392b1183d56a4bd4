"""The trajectory record: what a rollout produced, as rewards, hooks and dumps see it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from rlfactory_plugins.tools.base import ToolResult

StopReason = Literal[
    "answer", "no_call", "max_turns", "max_length", "deadline", "error", "env_done", "max_user_turns"
]


class ToolCallRecord(BaseModel):
    """One tool call the model wrote, parsed or not, with its outcome."""

    turn: int
    name: str | None = None
    arguments: dict[str, Any] | None = None
    raw: str = ""
    parse_error: str | None = None
    """Set when the call could not be parsed (bad JSON, missing name); no tool ran."""
    result: ToolResult | None = None
    repaired: bool = False
    """The call was almost-JSON and was repaired (json-repair) before it ran."""
    over_limit: bool = False
    """Valid, but beyond ``rollout.max_calls_per_turn``: not run, the model saw an error."""

    @property
    def ok(self) -> bool:
        return self.parse_error is None and self.result is not None and self.result.ok

    @property
    def error_kind(self) -> str | None:
        if self.parse_error is not None:
            return "parse_error"
        if self.over_limit:
            return "over_limit"
        if self.result is None:
            return "not_run"
        return None if self.result.ok else self.result.status.value


class TurnRecord(BaseModel):
    """One assistant turn and the observation that followed it."""

    index: int
    assistant_text: str = ""
    response_tokens: int = 0
    observation_tokens: int = 0
    observation_truncated: bool = False
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    generate_s: float = 0.0
    tools_s: float = 0.0
    env_message: str | None = None
    """The user text the environment added after this turn (environment turns), if any."""
    tools_added: list[str] = Field(default_factory=list)
    """Tools the environment made callable after this turn (``EnvTurn.add_tools``)."""
    min_global_steps: int | None = None
    """Weight version (the trainer's ``global_steps`` the rollout server reported) this turn's generation
    started on; None where the server reports none."""
    max_global_steps: int | None = None
    """Weight version this turn's generation ended on: above :attr:`min_global_steps` when a weight sync
    aborted it and verl's client resumed it on the new weights (fully-async partial rollout)."""


class BranchRecord(BaseModel):
    """Where a branched trajectory comes from (``rlfactory.rollout.branching``)."""

    parent: str
    """The parent's session id within the group (verl's V1 ``session_id``)."""
    parent_key: str
    """The parent trajectory's :attr:`Trajectory.key`."""
    prefix: int
    """Response tokens shared with the parent (its ids, mask and log-probs, copied)."""
    turn: int
    """Turns inherited from the parent: ``turns[:turn]`` were generated, and their tool calls run, by the parent."""
    prefix_sha256: str = ""
    """SHA-256 of the shared response ids, as this trajectory's final response starts."""


class ForkRecord(BaseModel):
    """A high-entropy point where branches were forked from this trajectory."""

    turn: int
    """The turn the branches generate first (they share everything before it)."""
    prefix: int
    entropy: float
    """Estimated entropy of this trajectory's turn ``turn`` (nats per token, first ``entropy_tokens`` tokens)."""
    initial_entropy: float
    sessions: list[str] = Field(default_factory=list)
    """Session ids of the branches."""
    prefix_sha256: str = ""


class Trajectory(BaseModel):
    """A whole rollout of one prompt."""

    uid: str = ""
    prompt: list[dict[str, Any]] = Field(default_factory=list)
    """The prompt messages (chat format)."""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    """Prompt + assistant + tool messages, as text."""
    response_text: str = ""
    """Everything after the prompt (assistant text and observations) as the model saw it."""
    final_answer: str | None = None
    """The answer the parser extracted (e.g. ``<answer>…</answer>``), if any."""
    turns: list[TurnRecord] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    error: str | None = None
    ground_truth: Any = None
    data_source: str | None = None
    extra_info: dict[str, Any] = Field(default_factory=dict)
    step: int | None = None
    key: str = ""
    """Per-trajectory id (sessions are keyed on it; GRPO siblings share ``uid`` but not ``key``)."""
    tools: list[str] | None = None
    """The row's tool set (None: every tool of the worker), with those environment turns added."""
    tool_state: dict[str, Any] = Field(default_factory=dict)
    """``{session_group: final state}`` exported by stateful tools before their sessions closed."""
    close_errors: dict[str, str] = Field(default_factory=dict)
    """``{session_group or environment: why}`` when exporting a state or closing failed."""
    env_state: dict[str, Any] | None = None
    """The environment's final state (``Environment.final_state``), if the row had one."""
    user_turns: int = 0
    """Environment (user) turns appended to this trajectory."""
    branch: BranchRecord | None = None
    """Set on a branch of the branching rollout: its parent and the prefix it shares."""
    forks: list[ForkRecord] = Field(default_factory=list)
    """Branches forked from this trajectory (branching rollout)."""

    @computed_field  # in the dumps; verl's staleness metrics read the same span from the agent loop's output
    @property
    def min_global_steps(self) -> int | None:
        """The oldest weight version any turn was generated on (None where the server reports none)."""
        versions = [t.min_global_steps for t in self.turns if t.min_global_steps is not None]
        return min(versions) if versions else None

    @computed_field
    @property
    def max_global_steps(self) -> int | None:
        """The newest weight version any turn was generated on."""
        versions = [t.max_global_steps for t in self.turns if t.max_global_steps is not None]
        return max(versions) if versions else None

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        return [c for t in self.turns for c in t.tool_calls]

    @property
    def num_turns(self) -> int:
        return len(self.turns)

    def last_assistant_text(self) -> str:
        return self.turns[-1].assistant_text if self.turns else ""
