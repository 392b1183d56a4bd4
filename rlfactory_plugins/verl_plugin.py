"""verl's ``verl.plugins`` entry point: loaded by ``import verl`` in the driver and in
every Ray worker.

It registers rlfactory's agent loop and reward manager in verl's own registries and
turns on the CPU backend where no accelerator is present. verl hides import errors
of its plugins at debug level, so every failure here is printed to stderr with its
cause (and ``RLFACTORY_STRICT=1`` makes it fatal).
"""

from __future__ import annotations

import os
import sys
import traceback


AGENT_LOOP_NAME = "rlfactory_agent"
REWARD_MANAGER_NAME = "rlfactory"

#: module -> what it registers; each is imported for its registration side effect
_COMPONENTS = {
    "rlfactory_plugins.cpu": "the CPU backend (platform + transformers rollout)",
    "rlfactory_plugins.rollout.agent_loop": f"the {AGENT_LOOP_NAME!r} agent loop",
    "rlfactory_plugins.rewards.manager": f"the {REWARD_MANAGER_NAME!r} reward manager",
}

_failures: dict[str, str] = {}


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

    for module, what in _COMPONENTS.items():
        try:
            mod = importlib.import_module(module)
            if module == "rlfactory_plugins.cpu":
                mod.activate()
        except Exception as exc:  # noqa: BLE001 - surfaced loudly, see _report
            _report(module, what, exc)
    return dict(_failures)


def failures() -> dict[str, str]:
    return dict(_failures)


register_with_verl()
