"""Tool-call parsers (``rlfactory.parser``): hermes, search_r1, llama3_json.

Third-party parsers subclass :class:`ToolCallParser` and register the class through
the ``register_parsers`` hook.
"""

from rlfactory_plugins.rollout.parsers.base import ParseResult, ParsedCall, ToolCallParser
from rlfactory_plugins.rollout.parsers.hermes import HermesParser
from rlfactory_plugins.rollout.parsers.llama3_json import Llama3JsonParser
from rlfactory_plugins.rollout.parsers.search_r1 import SearchR1Parser

BUILTIN_PARSERS: tuple[type[ToolCallParser], ...] = (HermesParser, SearchR1Parser, Llama3JsonParser)

__all__ = [
    "BUILTIN_PARSERS",
    "HermesParser",
    "Llama3JsonParser",
    "ParseResult",
    "ParsedCall",
    "SearchR1Parser",
    "ToolCallParser",
]
