"""rlfactory tool pack ``template``.

Replace the body of :func:`template` with your tool. Its name is the tool name, its
docstring the description the model reads, its type hints the JSON schema of its
arguments. Raise ``ToolError("...")`` for a failure the model should see. A sync
function runs in a thread; make it ``async def`` for network I/O.
"""

from __future__ import annotations

from rlfactory_plugins import hookimpl
from rlfactory_plugins.tools import ToolError, tool


@tool(timeout=10.0)
def template(query: str, limit: int = 3) -> str:
    """Look up QUERY and return at most LIMIT lines about it."""
    if not query.strip():
        raise ToolError("query is empty; pass the thing to look up")
    lines = [f"{i + 1}. {query}" for i in range(limit)]
    return "\n".join(lines)


@hookimpl
def register_tools(register):
    register(template)
