"""What a driver reports for each trajectory and for the batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    completed = "completed"  # the loop returned the trajectory (tool errors inside are fine)
    failed = "failed"  # the loop raised
    stuck = "stuck"  # still running when the wall budget ran out (cancelled, counted as failed)


@dataclass
class TrajectoryOutcome:
    status: Status
    done_s: float  # since the batch started
    answered: bool = False  # the final text has the scripted <answer>
    cut: bool = False  # ended by the straggler policy (deadline)
    error: str | None = None


@dataclass
class DriverRun:
    name: str
    wall_s: float
    cpu_s: float  # process CPU time (event loop + executor threads) during the run
    outcomes: list[TrajectoryOutcome] = field(default_factory=list)
    #: of wall_s: verl's per-trajectory ``hydra.utils.instantiate`` of the loop (verl's worker, not the loop)
    instantiate_s: float = 0.0
    #: loop objects the worker built: one per trajectory (verl's worker) or per worker (rlfactory's, shared)
    loops_built: int = 0
    #: what the scripted tool backend saw (``tools.SessionCounts``): calls started; for a stateful tool
    #: the sessions opened / closed, calls in another trajectory's session, calls whose session had lost
    #: the trajectory's earlier calls
    tool_calls: int = 0
    sessions_opened: int = 0
    sessions_closed: int = 0
    state_errors: int = 0
    state_lost: int = 0

    def count(self, *statuses: Status) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def first_error(self) -> str | None:
        return next((o.error for o in self.outcomes if o.error), None)
