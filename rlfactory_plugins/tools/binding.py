"""What an ``rlfactory.tools`` entry becomes: a registry tool bound to its options, or overrides of an
MCP or verl tool. The worker (:meth:`~rlfactory_plugins.tools.manager.ToolManager.from_config`) and
``check-config`` (:mod:`rlfactory_plugins.config.check`) both decide it here, so the check cannot
pass what the worker refuses.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from rlfactory_plugins.config.tools import ToolEntry
from rlfactory_plugins.errors import ConfigError, PluginError, UnknownNameError
from rlfactory_plugins.tools.base import Tool

if TYPE_CHECKING:
    from rlfactory_plugins.registry import Registry

__all__ = ["EXTERNAL_SOURCES", "bind_entry", "config_entries", "external_sources", "registry_tools"]


#: the sources of tools that do not come from the registry: what to call one, how to rename one that clashes
EXTERNAL_SOURCES = {
    "MCP": ("an MCP tool", 'set a "prefix" on the MCP server in the rlfactory.mcp file'),
    "verl": ("a verl tool", "rename it in its tool_schema (actor_rollout_ref.rollout.multi_turn.tool_config_path)"),
}


def external_sources(mcp_names: Iterable[str], verl_names: Iterable[str]) -> dict[str, str]:
    """Name -> source (``MCP``/``verl``) of the tools the registry does not build; a name in both is an error."""
    external = dict.fromkeys(mcp_names, "MCP")
    for name in verl_names:
        if name in external:
            raise PluginError(f"tool {name!r} is both an MCP tool and a verl tool; {EXTERNAL_SOURCES['MCP'][1]}")
        external[name] = "verl"
    return external


def is_pattern(name: str) -> bool:
    """A ``rlfactory.tools`` name with ``*``, ``?`` or ``[`` is a shell-style pattern (``GorillaFileSystem.*``)."""
    return any(c in name for c in "*?[")


def config_entries(entries: Sequence[ToolEntry], known: Iterable[str], strict: bool = True) -> dict[str, ToolEntry]:
    """``rlfactory.tools`` by tool name, patterns expanded over ``known`` (registry, MCP and verl tool names).

    A pattern enables every tool it matches with its options and overrides; a tool also listed by
    its own name takes that entry, and the first of several patterns matching it wins. A name
    listed twice, or (``strict``) a pattern matching nothing, is a :class:`ConfigError`.
    """
    known = sorted(set(known))
    named: dict[str, ToolEntry] = {}
    patterns: list[ToolEntry] = []
    for entry in entries:
        if entry.name in named or any(p.name == entry.name for p in patterns):
            raise ConfigError(f"rlfactory.tools[{entry.name}]: listed twice; keep one entry")
        if is_pattern(entry.name):
            patterns.append(entry)
        else:
            named[entry.name] = entry
    found: dict[str, ToolEntry] = {}
    for pattern in patterns:
        matches = fnmatch.filter(known, pattern.name)
        if not matches and strict:
            raise ConfigError(
                f"rlfactory.tools[{pattern.name}]: the pattern matches no installed tool; `rlfactory plugins` lists "
                "them (a pack's tools appear once it is installed)"
            )
        for name in matches:
            found.setdefault(name, pattern.model_copy(update={"name": name}))
    return {**found, **named}


def registry_tools(registry: Registry, entries: dict[str, ToolEntry], external: Mapping[str, str]) -> dict[str, Tool]:
    """Configure the registry tools named in the config (MCP and verl tools named there only get overrides)."""
    tools: dict[str, Tool] = {}
    for name, entry in entries.items():
        if name not in external and name not in registry.tools:
            raise UnknownNameError("tool", name, {*registry.tools, *external})
        tool = bind_entry(registry, entry, external)
        if tool is not None:
            tools[name] = tool
    return tools


def bind_entry(registry: Registry, entry: ToolEntry, external: Mapping[str, str]) -> Tool | None:
    """The registry tool one ``rlfactory.tools`` entry names, bound to its options (wrapped for Ray when
    ``ray_actor`` is set); None when the entry names an MCP or verl tool (``external``: name -> source),
    which takes only overrides.

    The one place the worker (:meth:`ToolManager.from_config`) and ``check-config`` decide this, so the
    check cannot pass what the worker refuses. The caller has made sure the name exists.
    """
    name, key = entry.name, f"rlfactory.tools[{entry.name}]"
    if name in external:
        what, fix = EXTERNAL_SOURCES[external[name]]
        if name in registry.tools:
            raise PluginError(
                f"{key}: {name!r} is both a registry tool ({registry.tools[name].plugin.name}) and {what}; {fix}"
            )
        if entry.options or entry.ray_actor:
            raise ConfigError(f"{key}: {name!r} is {what}; 'options' and 'ray_actor' do not apply")
        return None
    tool = registry.tool(name).bind(entry.options)
    if not entry.ray_actor:
        return tool
    if tool.stateful:
        raise ConfigError(
            f"{key}: {name!r} is a stateful tool; its sessions live in the worker, so "
            "'ray_actor: true' does not apply to it. Remove it"
        )
    from rlfactory_plugins.tools.ray_actor import RayActorTool  # Ray is imported only for such a tool

    return RayActorTool(tool, entry.options)
