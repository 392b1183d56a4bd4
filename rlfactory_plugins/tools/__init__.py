"""Tools: the typed tool model, the asyncio tool manager and MCP support."""

from rlfactory_plugins.tools.base import (
    FunctionTool,
    Tool,
    ToolCrashed,
    ToolError,
    ToolResult,
    ToolSpec,
    ToolStatus,
    TransientToolError,
    as_tool,
    tool,
)

__all__ = [
    "FunctionTool",
    "Tool",
    "ToolCrashed",
    "ToolError",
    "ToolResult",
    "ToolSpec",
    "ToolStatus",
    "TransientToolError",
    "as_tool",
    "tool",
]
