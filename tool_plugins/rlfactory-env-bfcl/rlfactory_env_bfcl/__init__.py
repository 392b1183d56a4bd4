"""rlfactory environment pack ``bfcl``: BFCL v4 multi-turn (the Berkeley Function Calling Leaderboard's
executable API classes, from the installed ``bfcl-eval``) as stateful tools, an environment and rewards.

- tools: every function of the eight multi-turn classes, named ``Class_method``
  (``GorillaFileSystem_cd``, ``TradingBot_place_order``...), one ``bfcl`` session per trajectory;
  enable them with ``rlfactory.tools: ["GorillaFileSystem_*", "MathAPI_*", ...]`` or ``["*_*"]``.
- environment ``bfcl``: the row's BFCL entry (``extra_info.bfcl_entry``) as user turns, withheld
  functions revealed on their turn, the state after each turn recorded.
- rewards ``bfcl_state_response`` (BFCL's accuracy) and ``bfcl_partial`` (dense credit).

Rows come from ``examples/bfcl/prepare_data.py``; see the pack's README for the install (``bfcl-eval``
goes in without its dependencies).
"""

from __future__ import annotations

from rlfactory_plugins import hookimpl

from rlfactory_env_bfcl.environment import BFCLEnvironment
from rlfactory_env_bfcl.rewards import bfcl_partial, bfcl_state_response
from rlfactory_env_bfcl.tools import tools

__all__ = ["ENVIRONMENT", "register_environments", "register_rewards", "register_tools"]

#: the worker's one ``bfcl`` environment; its episodes are what the tools run on
ENVIRONMENT = BFCLEnvironment()


@hookimpl
def register_tools(register):
    for t in tools(ENVIRONMENT):
        register(t)


@hookimpl
def register_environments(register):
    register(ENVIRONMENT)


@hookimpl
def register_rewards(register):
    register(bfcl_state_response)
    register(bfcl_partial)
