"""rlfactory's agent-loop workers under verl's fully-async trainer (a version-gated substitution).

``main_ppo`` and the one-step-off trainer build the agent-loop manager named by
``actor_rollout_ref.rollout.agent.agent_loop_manager_class``; verl 0.9's fully-async rollouter
(``FullyAsyncRollouter._init_async_rollout_manager``) builds its module's
``FullyAsyncAgentLoopManager`` directly and never reads the key. Until verl reads it there too
(the change proposed in docs/fully-async.md), this module replaces that module-level name, when the
rollouter's module is imported (a post-import hook registered by the ``verl.plugins`` entry point), by
a subclass that, when the config names rlfactory's manager, starts rlfactory's workers
(:class:`rlfactory_plugins.verl.worker.ClassicAgentLoopWorker`: one ``rlfactory_agent`` object per
worker) instead of verl's. Everything else is verl's class.

Guarded: only for the verl versions of :data:`SUBSTITUTED_IN` (whose rollouter was read), only if the
names it touches are there (:mod:`rlfactory_plugins.verl.compat`); otherwise it changes nothing, says
so on stderr, and the start-up check (:mod:`rlfactory_plugins.verl.fully_async_check`) refuses
rlfactory's manager with the key to set instead.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from packaging.specifiers import SpecifierSet

from rlfactory_plugins.verl import compat
from rlfactory_plugins.verl.fully_async_check import MANAGER_KEY, RLFACTORY_MANAGER

#: the module whose ``FullyAsyncAgentLoopManager`` is replaced
ROLLOUTER_MODULE = "verl.experimental.fully_async_policy.fully_async_rollouter"
#: verl releases whose rollouter ignores ``agent_loop_manager_class`` (read: 0.9.0, 0.9.1)
SUBSTITUTED_IN = SpecifierSet(">=0.9.0,<0.10")
MARK = "_rlfactory_workers"


def substitution_supported() -> bool:
    """Whether this verl gets rlfactory's workers in the fully-async rollouter."""
    return compat.version_supported() and compat.installed_version().split("+")[0] in SUBSTITUTED_IN and not (
        compat.missing([n for n in compat.PRIVATE_NAMES if n.used_by == __name__])
    )


def wants_rlfactory_workers(config: Any) -> bool:
    agent = config.actor_rollout_ref.rollout.get("agent", {}) if config is not None else {}
    return agent.get(MANAGER_KEY.rsplit(".", 1)[1]) == RLFACTORY_MANAGER


def with_rlfactory_workers(base: type) -> type:
    """``base`` (verl's ``FullyAsyncAgentLoopManager``) starting rlfactory's workers when the config asks."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        config = kwargs.get("config", args[0] if args else None)
        if wants_rlfactory_workers(config):
            import ray

            from rlfactory_plugins.verl.worker import ClassicAgentLoopWorker

            # verl's AgentLoopManager.__init__ keeps a workers class set before it runs
            self.agent_loop_workers_class = ray.remote(ClassicAgentLoopWorker)
        base.__init__(self, *args, **kwargs)

    return type(base.__name__, (base,), {
        "__init__": __init__, MARK: True, "__module__": __name__, "__doc__": base.__doc__,
        "__qualname__": f"rlfactory+{base.__qualname__}",
    })


def install(module: ModuleType) -> bool:
    """Replace ``module.FullyAsyncAgentLoopManager`` (the hook's argument); never raises."""
    current = getattr(module, "FullyAsyncAgentLoopManager", None)
    if current is None or getattr(current, MARK, False):
        return False
    if not substitution_supported():
        print(
            f"rlfactory: verl {compat.installed_version()}'s fully-async rollouter keeps its own agent-loop "
            f"workers (rlfactory substitutes them for verl {SUBSTITUTED_IN}); the start-up check refuses "
            f"{MANAGER_KEY}={RLFACTORY_MANAGER}", file=sys.stderr, flush=True,
        )
        return False
    try:
        module.FullyAsyncAgentLoopManager = with_rlfactory_workers(current)
    except Exception as e:  # noqa: BLE001 - inside verl's import: report, keep verl's class
        print(f"rlfactory: could not give verl's fully-async rollouter rlfactory's workers: {e!r}", file=sys.stderr)
        return False
    return True


def activate() -> None:
    """Have :func:`install` run when (or, if already imported, now that) the rollouter's module is imported."""
    import wrapt

    wrapt.register_post_import_hook(install, ROLLOUTER_MODULE)
