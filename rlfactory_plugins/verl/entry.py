"""verl's ``verl.plugins`` entry point: loaded by ``import verl`` in the driver and in
every Ray worker.

It registers rlfactory's agent loop and reward manager in verl's own registries and
turns on the CPU backend where no accelerator is present. verl hides import errors
of its plugins at debug level, so every failure here is printed to stderr with its
cause (and ``RLFACTORY_STRICT=1`` makes it fatal). Each component checks the verl names it
uses as it is imported (:mod:`rlfactory_plugins.verl.compat`), so a verl without one is
reported here by name.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any


AGENT_LOOP_NAME = "rlfactory_agent"
REWARD_MANAGER_NAME = "rlfactory"

#: module -> what it registers; each is imported for its registration side effect
_COMPONENTS = {
    "rlfactory_plugins.verl.compose": "the ${rlfactory_recycle:} resolver of +plugins=rlfactory's config",
    "rlfactory_plugins.verl.cpu": "the CPU backend (platform + transformers rollout)",
    "rlfactory_plugins.verl.agent_loop": f"the {AGENT_LOOP_NAME!r} agent loop",
    "rlfactory_plugins.verl.reward_manager": f"the {REWARD_MANAGER_NAME!r} reward manager",
    # before training_metrics: the metrics mixin then comes first in each trainer's MRO
    "rlfactory_plugins.verl.advantage_context": "options and branch records for rlfactory's estimators (V1)",
    "rlfactory_plugins.verl.training_metrics": "rlfactory's metrics in verl's per-step metrics (V1 trainers)",
    "rlfactory_plugins.verl.estimators": "the rlfactory_turn_grpo and rlfactory_branch_grpo advantage estimators",
    "rlfactory_plugins.verl.fully_async": "rlfactory's agent-loop workers in verl's fully-async rollouter",
    "rlfactory_plugins.verl.fully_async_metrics": "rlfactory's metrics in verl's fully-async trainer's step metrics",
}

_failures: dict[str, str] = {}
_warned_version = False


def _warn_version(compat: Any) -> None:
    global _warned_version
    _warned_version = True
    print(
        f"rlfactory: verl {compat.installed_version()} is outside the range rlfactory supports ({compat.SUPPORTED}); "
        "the verl names it uses are checked as each part loads (`python -m rlfactory_plugins.verl.compat`)",
        file=sys.stderr, flush=True,
    )


def _report(module: str, what: str, exc: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    msg = (
        f"rlfactory: could not register {what} ({module}): {detail}. "
        "`+plugins=rlfactory` will not work until this is fixed; run `rlfactory doctor` for details."
    )
    _failures[module] = detail
    if os.environ.get("RLFACTORY_STRICT") == "1":
        raise RuntimeError(msg) from exc
    print(msg, file=sys.stderr, flush=True)


def register_with_verl() -> dict[str, str]:
    """Import every component so it registers itself; return the failures (module -> error)."""
    import importlib

    from rlfactory_plugins.verl import compat

    if not compat.version_supported() and not _warned_version:
        _warn_version(compat)
    for module, what in _COMPONENTS.items():
        try:
            mod = importlib.import_module(module)
            activate = getattr(mod, "activate", None)  # the CPU backend, the trainer metrics hook, estimators
            if callable(activate):
                activate()
        except Exception as exc:  # noqa: BLE001 - surfaced loudly, see _report
            _report(module, what, exc)
    return dict(_failures)


def failures() -> dict[str, str]:
    return dict(_failures)


register_with_verl()
