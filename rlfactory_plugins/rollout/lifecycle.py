"""Calls the ``on_turn_finished`` / ``on_trajectory_finished`` hooks of every plugin,
one implementation at a time, logging (never raising) what a plugin raises."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("rlfactory")


def call_each(pm: Any, hook_name: str, **kwargs: Any) -> int:
    """Call every implementation of ``hook_name``; return how many raised."""
    failures = 0
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        args = {k: v for k, v in kwargs.items() if k in impl.argnames}
        try:
            impl.function(**args)
        except Exception:
            failures += 1
            logger.exception("rlfactory plugin %r raised in %s (ignored)", impl.plugin_name, hook_name)
    return failures
