"""rlfactory-tool-search: the ``search`` tool (embedded BM25, dense, or a remote server),
the ``rlfactory-search-server`` retrieval server, and a small synthetic corpus.

Install with ``pip install tool_plugins/rlfactory-tool-search``; rlfactory finds it
through the ``rlfactory`` entry point below and lists it in ``rlfactory plugins``.
"""

from rlfactory_plugins.hookspecs import hookimpl
from rlfactory_tool_search.tool import SearchOptions, SearchTool

__all__ = ["SearchOptions", "SearchTool", "register_tools"]


@hookimpl
def register_tools(register):
    register(SearchTool())
