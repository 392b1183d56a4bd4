"""The environment contract: the non-assistant side of a multi-turn conversation.

A plugin registers an :class:`Environment` through the ``register_environments`` hook; a
dataset row selects it with ``extra_info.rlfactory.environment`` (``user_turns`` alone selects
the built-in ``scripted`` one). For each trajectory the episode calls :meth:`Environment.reset`
once, :meth:`Environment.step` each time the model ends a turn without a tool call, and
:meth:`Environment.final_state` then :meth:`Environment.close` when the trajectory ends, for
every ending. The message a step returns is appended as observation tokens (mask 0) in the
chat template's ``user`` role, so the model is never trained on it.

One instance serves every trajectory of a worker process: keep per-trajectory state in the
object :meth:`reset` returns, never on ``self``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rlfactory_plugins.errors import PluginError
from rlfactory_plugins.pluggable import Pluggable

if TYPE_CHECKING:
    from rlfactory_plugins.tools.session import SessionContext
    from rlfactory_plugins.trajectory import Trajectory, TurnRecord


@dataclass
class EnvTurn:
    """What the environment says after an assistant turn without a tool call."""

    message: str | None = None
    """User text appended as observation tokens (mask 0); None with ``done=False`` ends the trajectory (no_call)."""
    done: bool = False
    """End the trajectory: ``stop_reason="env_done"`` (``answer`` when that turn gave a final answer)."""
    add_tools: tuple[str, ...] = ()
    """Tools the row's trajectory may call from now on (a function withheld until this turn, as in
    BFCL's ``miss_func``). They must be tools of the worker; the message should describe them, since
    the prompt's tool list is rendered once. Ignored for a row that already sees every tool."""


class Environment(Pluggable["Environment"]):
    """Base class of environments. Subclasses set ``name`` and implement :meth:`step`."""

    kind: ClassVar[str] = "environment"
    section: ClassVar[str] = "environments"
    #: the registered name (``register(env)`` uses it unless given ``name=``)
    name_default: ClassVar[str] = ""

    def __init__(self, name: str | None = None, description: str = "") -> None:
        super().__init__(name or self.name_default or type(self).__name__.lower(), description or (self.__doc__ or ""))

    async def reset(self, ctx: SessionContext) -> Any:
        """This trajectory's state. ``ctx.kwargs`` is the row's ``environment.kwargs``."""
        return None

    async def step(self, state: Any, trajectory: Trajectory, turn: TurnRecord) -> EnvTurn:
        """The next user message (or the end) after ``turn``, which had no tool call."""
        raise NotImplementedError(f"environment {self.name!r} must implement step()")

    async def final_state(self, state: Any) -> dict[str, Any] | None:
        """A JSON-able final state for the rewards (``Trajectory.env_state``); None: nothing."""
        return None

    async def close(self, state: Any, reason: str) -> None:
        """Release what :meth:`reset` acquired. ``reason`` is the trajectory's stop reason (or ``shutdown``)."""

    def _bind(self, options: Any) -> Environment:
        return self


def as_environment(obj: Any, name: str | None = None) -> Environment:
    """What ``register(env, name=None)`` accepts: an :class:`Environment` instance or a subclass
    (built with no arguments)."""
    if isinstance(obj, type) and issubclass(obj, Environment):
        try:
            obj = obj(name) if name else obj()
        except TypeError as e:
            raise PluginError(
                f"environment class {obj.__name__} cannot be built without arguments ({e}); register an instance"
            ) from None
    if not isinstance(obj, Environment):
        raise PluginError(
            f"register() expects an rlfactory_plugins.environments.Environment (instance or subclass), got {obj!r}"
        )
    return obj
