"""The ``bfcl`` environment: a BFCL multi-turn entry's user side.

``reset`` opens the trajectory's episode (BFCL instances from the row's ``initial_config``); each
time the model ends a turn without a tool call, ``step`` records the state after that user turn
and sends the next one — or, at a ``miss_func`` entry's reveal turn, BFCL's "I have updated some
more functions" message with the withheld functions' docs, making those tools callable from then
on — and ends the trajectory after the last. ``final_state`` exports the per-turn record the
rewards score (``Trajectory.env_state``); ``close`` releases the instances.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rlfactory_plugins.environments import Environment, EnvTurn

from rlfactory_env_bfcl.backend import REVEAL_PROMPT, function_docs
from rlfactory_env_bfcl.calls import qualified
from rlfactory_env_bfcl.episode import Entry, Episode, Episodes
from rlfactory_env_bfcl.tools import tool_schema

if TYPE_CHECKING:
    from rlfactory_plugins.tools.session import SessionContext
    from rlfactory_plugins.trajectory import Trajectory, TurnRecord

__all__ = ["BFCLEnvironment", "question_text", "revealed"]


def question_text(messages: list[dict[str, Any]]) -> str:
    """One user turn of an entry (a list of messages, in practice one) as the text of one user message."""
    return "\n\n".join(str(m.get("content", "")) for m in messages)


def revealed(entry: Entry, turn: int) -> list[tuple[str, dict[str, Any]]]:
    """``(class, doc)`` of the functions a miss_func entry reveals at user turn ``turn`` (BFCL's order)."""
    out = []
    for name in entry.missed_function.get(str(turn), []):
        found = next(((c, d) for c in entry.involved_classes for d in function_docs(c) if d["name"] == name), None)
        if found is not None:
            out.append(found)
    return out


class BFCLEnvironment(Environment):
    """BFCL multi-turn: scripted user turns, withheld functions revealed on their turn, state per turn."""

    name_default = "bfcl"

    def __init__(self) -> None:
        super().__init__()
        self.episodes = Episodes()

    async def reset(self, ctx: SessionContext) -> Episode:
        return self.episodes.open(ctx.key, Entry.from_extra_info(ctx.extra_info))

    async def step(self, state: Episode, trajectory: Trajectory, turn: TurnRecord) -> EnvTurn:
        state.end_turn(complete=True)
        index = len(state.turns) - 1  # the user turn to send now
        if index >= len(state.entry.question):
            return EnvTurn(done=True)
        functions = revealed(state.entry, index)
        if functions:
            docs = [tool_schema(c, d).openai_schema()["function"] for c, d in functions]
            message = REVEAL_PROMPT.format(functions=json.dumps(docs, ensure_ascii=False))
            return EnvTurn(message=message, add_tools=tuple(qualified(c, d["name"]) for c, d in functions))
        return EnvTurn(message=question_text(state.entry.question[index]))

    async def final_state(self, state: Episode) -> dict[str, Any]:
        if state.turns[-1].calls:  # the trajectory stopped inside a user turn: keep what it did
            state.end_turn(complete=False)
        return state.record()

    async def close(self, state: Episode, reason: str) -> None:
        self.episodes.close(state.trajectory_key)
