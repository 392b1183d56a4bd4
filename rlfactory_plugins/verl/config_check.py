"""The start-up checks of :mod:`rlfactory_plugins.config.check` on a composed verl DictConfig.

The core check takes plain data; this reads from the DictConfig only the keys it looks at
(:data:`~rlfactory_plugins.config.check.READ_KEYS`), each resolved on its own as the workers
resolve it, so an interpolation elsewhere in verl's config that cannot resolve here is no error.
verl's own tool files (``multi_turn.tool_config_path`` / ``function_tool_path``) are loaded here,
by verl's loader, so a bad file and a name clash with rlfactory's tools fail the check.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from rlfactory_plugins.config import RLFactoryConfig
from rlfactory_plugins.config import check as core
from rlfactory_plugins.config.recycle import check_recycle
from rlfactory_plugins.config.section import SECTION_KEY, read_section
from rlfactory_plugins.verl.branch_setup import check_branching
from rlfactory_plugins.verl.fully_async_check import check_fully_async, is_fully_async
from rlfactory_plugins.verl.section import to_plain
from rlfactory_plugins.verl.verl_tools import load_verl_tools


def plain_view(cfg: Any) -> dict[str, Any]:
    """The keys the core check reads, as nested plain dicts (missing or unresolvable keys left out)."""
    view: dict[str, Any] = {}
    for dotted in core.READ_KEYS:
        value = core.get_key(cfg, dotted)  # None where missing or unresolvable, as the workers see it
        if value is None:
            continue
        value = to_plain(value)
        node = view
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return view


def check_config(cfg: Any) -> RLFactoryConfig:
    """:func:`rlfactory_plugins.config.check.check_config` on a DictConfig (or plain mapping), with
    verl's own ``multi_turn`` tools loaded from their files as verl's worker loads them."""
    plain = plain_view(cfg) if OmegaConf.is_config(cfg) else cfg
    tool_config, function_tools = (core.get_key(plain, key) for key in core.VERL_TOOL_KEYS)
    section = read_section(core.get_key(plain, SECTION_KEY))  # recycling's refusals first: they name the cause
    check_recycle(cfg, section.rollout.recycle, section.rollout)  # (docs/recycling.md)
    checked = core.check_config(plain, verl_tools=load_verl_tools(tool_config, function_tools))
    if is_fully_async(cfg):  # verl's fully-async trainer: what rlfactory cannot do there
        from rlfactory_plugins.verl.fully_async import substitution_supported

        check_fully_async(cfg, checked, manager_substituted=substitution_supported())
    elif checked.rollout.branching.enabled:  # reads trainer keys the core check does not
        check_branching(cfg, checked.rollout.branching)
    return checked
