"""ARPO-style branching rollout (``rlfactory.rollout.branching``): a group's samples forked at high-entropy turns.

ARPO (Dong et al. 2025, arXiv 2507.19849) observes that the policy's entropy rises right after a
tool result, and samples there: of a GRPO group of ``n`` samples, ``M = global_samples`` start from the
prompt; the other ``n - M`` wait. After each tool result a running trajectory measures the entropy of
its next turn (:func:`turn_entropy`); when it exceeds the trajectory's initial entropy (its first
turn's) by more than ``margin``, up to ``Z = max_branches`` waiting samples are forked from the state
right after that tool result (:class:`Fork`: the response ids, mask and log-probs, the turn records with
their tool results, the messages). A branch regenerates that turn and goes on as any trajectory: it
never re-runs a tool call of its prefix, and it may fork in turn at a later tool result. When no
trajectory of the group can fork any more (all have ended) and samples still wait, they run from the
prompt, so the group always holds ``n`` samples.

**Entropy.** verl's servers return one log-prob per generated token, the sampled token's (verl 0.9.1's
vLLM server sets ``logprobs=0`` and keeps ``logprobs[token_id]``; rlfactory's CPU server computes
``log_softmax(logits / T)[token]``), with no top-k alternatives. So the entropy of a turn is estimated
as the mean surprisal ``-log p(x_t)`` of its first ``k`` sampled tokens: since ``x_t`` is drawn from
``p``, ``E[-log p(x_t)] = H(p)``, an unbiased one-sample estimate of each token's entropy (of the
distribution the server samples from; top-p/top-k filtering make it an estimate of the unfiltered
tempered distribution's surprisal). The log-probs are requested for every turn while branching is on
(the trajectory keeps them only if the trainer asked for them).

**Coordination.** verl's V1 worker runs the ``n`` sessions of a prompt (``session_id`` 0..n-1) as
concurrent calls of the agent loop in one process. :class:`BranchCoordinator` (one per
:class:`~rlfactory_plugins.rollout.runtime.Runtime`) keeps a :class:`BranchGroup` per ``uid``; sessions
``0..M-1`` are global, the others call :meth:`BranchGroup.wait`. A session joins its group before its
first ``await`` (:meth:`BranchCoordinator.join` is synchronous): verl creates the ``n`` tasks of a
prompt together, so every waiter has joined before any trajectory reaches a tool result.

**Stateful tools and environments** are refused (:class:`BranchingRowError`): a session (a Python
sandbox, a per-trajectory MCP server, an environment's state) cannot be copied into a branch.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlfactory_plugins.config.branching import BranchingConfig
from rlfactory_plugins.config.row import RowError, RowSettings
from rlfactory_plugins.rollout.tokens import ResponseTokens
from rlfactory_plugins.trajectory import BranchRecord, ForkRecord, Trajectory, TurnRecord

if TYPE_CHECKING:
    from rlfactory_plugins.rollout.episode import Episode

#: groups already over, remembered so a session that joins late runs globally instead of waiting forever
_CLOSED_GROUPS = 4096


class BranchingRowError(RowError):
    """A row whose trajectories cannot be branched (stateful tools, an environment)."""


def turn_entropy(log_probs: Sequence[float] | None, k: int) -> float | None:
    """Mean surprisal ``-log p`` of the first ``k`` sampled tokens (nats per token); None without log-probs."""
    if not log_probs:
        return None
    head = [float(x) for x in list(log_probs)[:k]]
    return -sum(head) / len(head)


def prefix_digest(ids: Sequence[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


def check_row(settings: RowSettings, stateful: Sequence[str]) -> None:
    """Raise :class:`BranchingRowError` for a row whose trajectories keep state a branch would share."""
    what = []
    if stateful:
        what.append(f"stateful tools {sorted(stateful)}")
    if settings.environment is not None:
        what.append(f"environment {settings.environment.name!r} (user turns)")
    if what:
        raise BranchingRowError(
            f"rlfactory.rollout.branching cannot fork this row: its {' and '.join(what)} keep per-trajectory "
            "state that a branch cannot copy from its parent. Set rlfactory.rollout.branching.enabled=false, or "
            "give these rows a tool set without stateful tools and no user turns (extra_info.rlfactory.tools)"
        )


@dataclass(frozen=True)
class Fork:
    """The state of a trajectory right after a tool result, from which a branch continues."""

    parent: str
    """The parent's session id."""
    parent_key: str
    turn: int
    """The turn the branch generates first."""
    ids: tuple[int, ...]
    mask: tuple[int, ...]
    logprobs: tuple[float, ...]
    turns: tuple[TurnRecord, ...]
    messages: tuple[dict[str, Any], ...]
    tools: tuple[str, ...] | None
    allowed: frozenset[str] | None
    initial_entropy: float

    @classmethod
    def of(cls, episode: Episode, parent: str, turn: int, initial_entropy: float) -> Fork:
        """Snapshot ``episode`` before turn ``turn`` is appended (called between generate and record)."""
        traj, tokens = episode.trajectory, episode.tokens
        return cls(
            parent=parent, parent_key=traj.key, turn=turn, ids=tuple(tokens.ids), mask=tuple(tokens.mask),
            logprobs=tuple(tokens.logprobs), turns=tuple(t.model_copy(deep=True) for t in traj.turns),
            messages=tuple(dict(m) for m in traj.messages),
            tools=None if traj.tools is None else tuple(traj.tools), allowed=episode.allowed,
            initial_entropy=initial_entropy,
        )

    def tokens(self, want_logprobs: bool) -> ResponseTokens:
        return ResponseTokens(
            want_logprobs=want_logprobs, ids=list(self.ids), mask=list(self.mask),
            logprobs=list(self.logprobs) if want_logprobs else [],
        )

    def seed(self, trajectory: Trajectory) -> None:
        """Give the branch's trajectory the parent's turns (tool results included) and messages."""
        trajectory.turns = [t.model_copy(deep=True) for t in self.turns]
        trajectory.messages = [dict(m) for m in self.messages]
        trajectory.tools = None if self.tools is None else list(self.tools)
        trajectory.branch = BranchRecord(
            parent=self.parent, parent_key=self.parent_key, prefix=len(self.ids), turn=self.turn,
        )


@dataclass
class BranchGroup:
    """The sessions of one GRPO group (one ``uid``) in this process."""

    running: int
    """Trajectories of the group that may still fork: the globals, then every branch handed a fork."""
    waiting: deque[tuple[str, asyncio.Future[Fork | None]]] = field(default_factory=deque)

    def wait(self, session: str) -> asyncio.Future[Fork | None]:
        """A future that gets this waiting session's :class:`Fork`, or None when it should run from the prompt."""
        future: asyncio.Future[Fork | None] = asyncio.get_running_loop().create_future()
        self.waiting.append((session, future))
        return future

    def offer(self, make: Callable[[], Fork], limit: int) -> list[str]:
        """Fork up to ``limit`` waiting sessions from the state ``make`` snapshots; the sessions forked."""
        taken = []
        while self.waiting and len(taken) < limit:
            session, future = self.waiting.popleft()
            if not future.done():  # a waiter cancelled meanwhile is skipped
                taken.append((session, future))
        if not taken:
            return []
        fork = make()
        for _, future in taken:
            future.set_result(fork)
        self.running += len(taken)
        return [s for s, _ in taken]

    def done(self) -> None:
        """One trajectory that could fork has ended; with none left, the waiting sessions run from the prompt."""
        self.running -= 1
        if self.running > 0:
            return
        while self.waiting:
            _, future = self.waiting.popleft()
            if not future.done():
                future.set_result(None)
                self.running += 1

    @property
    def idle(self) -> bool:
        return self.running <= 0 and not self.waiting


class BranchCoordinator:
    """Per process: the branch group of every ``uid`` with a session running or waiting."""

    def __init__(self) -> None:
        self._groups: dict[str, BranchGroup] = {}
        self._closed: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._groups)

    def join(self, uid: str, session: int, global_samples: int) -> BranchGroup | None:
        """The group of ``uid`` for session ``session``; None when the group is over (run from the prompt).
        Synchronous on purpose: see the module docstring."""
        if uid in self._closed:
            return None
        group = self._groups.get(uid)
        if group is None:
            group = self._groups[uid] = BranchGroup(running=global_samples)
        return group

    def enter(self, uid: str, session: int, config: BranchingConfig) -> Slot | None:
        """Join session ``session`` of ``uid``'s group: global for sessions below ``global_samples``, else waiting
        for a fork. None when the group is over (run from the prompt). Call before the session's first await."""
        group = self.join(uid, session, config.global_samples)
        if group is None:
            return None
        waiting = group.wait(str(session)) if session >= config.global_samples else None
        return Slot(self, uid, group, str(session), waiting)

    def leave(self, uid: str, group: BranchGroup, counted: bool) -> None:
        """A session of ``uid`` ended (``counted``: it was a global or a branch, not a cancelled waiter)."""
        if counted:
            group.done()
        if group.idle and self._groups.get(uid) is group:
            del self._groups[uid]
            self._closed[uid] = None
            while len(self._closed) > _CLOSED_GROUPS:
                self._closed.popitem(last=False)


@dataclass
class Slot:
    """One session's place in its branch group, from :meth:`BranchCoordinator.enter` to :meth:`leave`."""

    coordinator: BranchCoordinator
    uid: str
    group: BranchGroup
    session: str
    waiting: asyncio.Future[Fork | None] | None
    """None for a global session."""
    counted: bool = False

    def __post_init__(self) -> None:
        self.counted = self.waiting is None  # a global may fork from the start

    async def fork(self) -> Fork | None:
        """A waiting session's fork (None: run from the prompt); None at once for a global one."""
        if self.waiting is None:
            return None
        fork = await self.waiting
        self.counted = True  # forked or released: it may fork in turn, and must be counted out when it ends
        return fork

    def brancher(self, config: BranchingConfig, fork: Fork | None) -> Brancher:
        return Brancher(config, self.group, self.session, fork)

    def leave(self) -> None:
        waiting = self.waiting
        if waiting is not None and not waiting.done():
            waiting.cancel()  # ended before a fork came (a row error, a cancelled task)
        # handed a fork (or released) but cancelled before it resumed: the group counted it in all the same
        handed = waiting is not None and waiting.done() and not waiting.cancelled()
        self.coordinator.leave(self.uid, self.group, self.counted or handed)


class Brancher:
    """One trajectory's side of the branching: measures entropies and forks at high-entropy tool results.

    :class:`~rlfactory_plugins.rollout.episode.Episode` calls :meth:`generated` after each generation,
    before the turn is recorded.
    """

    def __init__(self, config: BranchingConfig, group: BranchGroup, session: str, fork: Fork | None = None) -> None:
        self.config = config
        self.group = group
        self.session = session
        self.initial: float | None = fork.initial_entropy if fork is not None else None
        self.start_turn = fork.turn if fork is not None else 0

    def generated(self, episode: Episode, index: int, log_probs: Sequence[float] | None) -> None:
        h = turn_entropy(log_probs, self.config.entropy_tokens)
        if h is None:
            return
        if self.initial is None:  # a global trajectory's first turn
            self.initial = h
            return
        if index <= self.start_turn or not episode.trajectory.turns[index - 1].tool_calls:
            return  # a branch's first turn is its fork point; only turns right after a tool result fork
        if h - self.initial <= self.config.margin:
            return
        initial = self.initial
        sessions = self.group.offer(lambda: Fork.of(episode, self.session, index, initial), self.config.max_branches)
        if sessions:
            episode.trajectory.forks.append(ForkRecord(
                turn=index, prefix=len(episode.tokens), entropy=h, initial_entropy=initial, sessions=sessions,
                prefix_sha256=prefix_digest(episode.tokens.ids),
            ))
