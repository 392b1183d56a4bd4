"""One trajectory's BFCL entry: its instances (inside BFCL's executor, under a key of its own), the
calls executed in each user turn and the state after each, and the registry the environment and
the tools share to find it by trajectory key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rlfactory_plugins.errors import ConfigError

from rlfactory_env_bfcl import backend
from rlfactory_env_bfcl.state import digests

__all__ = ["ENTRY_FIELD", "Entry", "Episode", "Episodes", "TurnLog"]

#: the ``extra_info`` key of a row's BFCL entry (a JSON string: parquet keeps it exactly)
ENTRY_FIELD = "bfcl_entry"


class Entry(BaseModel):
    """The parts of a BFCL multi-turn entry the rollout needs."""

    model_config = ConfigDict(extra="ignore")

    id: str
    question: list[list[dict[str, Any]]]
    initial_config: dict[str, Any] = Field(default_factory=dict)
    involved_classes: list[str]
    missed_function: dict[str, list[str]] = Field(default_factory=dict)

    @classmethod
    def from_extra_info(cls, extra_info: Mapping[str, Any]) -> Entry:
        raw = extra_info.get(ENTRY_FIELD)
        if raw is None:
            raise ConfigError(
                f"a BFCL row needs extra_info.{ENTRY_FIELD} (the entry as JSON); make the data with "
                "examples/bfcl/prepare_data.py"
            )
        entry = cls.model_validate(json.loads(raw) if isinstance(raw, str) else dict(raw))
        backend.check_classes(entry.involved_classes, f"extra_info.{ENTRY_FIELD} ({entry.id})")
        return entry

    def executor_view(self) -> dict[str, Any]:
        return {"id": self.id, "initial_config": self.initial_config, "involved_classes": self.involved_classes}


@dataclass
class TurnLog:
    """One user turn: the call strings BFCL executed (in order), their results, the state after it."""

    calls: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    state: dict[str, dict[str, str]] = field(default_factory=dict)
    complete: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"calls": self.calls, "results": self.results, "state": self.state, "complete": self.complete}


@dataclass
class Episode:
    entry: Entry
    trajectory_key: str = ""
    key: str = field(default_factory=backend.new_key)
    turns: list[TurnLog] = field(default_factory=lambda: [TurnLog()])
    purged: bool = False

    def __post_init__(self) -> None:
        backend.execute([], self.entry.executor_view(), self.key)  # the instances, from the initial state

    def execute(self, call: str) -> str:
        if self.purged:
            raise ConfigError(f"BFCL entry {self.entry.id}: the trajectory's instances were already released")
        (result,), _ = backend.execute([call], self.entry.executor_view(), self.key)
        turn = self.turns[-1]
        turn.calls.append(call)
        turn.results.append(result)
        return result

    def end_turn(self, complete: bool) -> None:
        """Record the state after the current user turn; a complete one opens the next."""
        _, instances = backend.execute([], self.entry.executor_view(), self.key)
        turn = self.turns[-1]
        turn.state, turn.complete = digests(instances), complete
        if complete:
            self.turns.append(TurnLog())

    def record(self) -> dict[str, Any]:
        """What lands in ``Trajectory.env_state``: the entry id and every user turn the model worked on."""
        turns = self.turns if self.turns[-1].calls else self.turns[:-1]  # an open turn without calls: nothing
        return {"entry_id": self.entry.id, "turns": [t.as_json() for t in turns]}

    def purge(self) -> None:
        if not self.purged:
            backend.purge(self.key, self.entry.executor_view())
            self.purged = True


class Episodes:
    """The running trajectories' episodes by trajectory key (one per worker, owned by the environment)."""

    def __init__(self) -> None:
        self._by_key: dict[str, Episode] = {}

    def open(self, trajectory_key: str, entry: Entry) -> Episode:
        if trajectory_key in self._by_key:
            raise ConfigError(f"trajectory {trajectory_key!r} already has a BFCL episode")
        episode = self._by_key[trajectory_key] = Episode(entry, trajectory_key)
        return episode

    def get(self, trajectory_key: str) -> Episode:
        found = self._by_key.get(trajectory_key)
        if found is None:
            raise ConfigError(
                "a BFCL tool was called in a trajectory without a BFCL episode: the row needs "
                "extra_info.rlfactory.environment: bfcl (examples/bfcl/prepare_data.py writes it)"
            )
        return found

    def close(self, trajectory_key: str) -> None:
        episode = self._by_key.pop(trajectory_key, None)
        if episode is not None:
            episode.purge()

    def __len__(self) -> int:
        return len(self._by_key)
