"""The shared conformance suite: entry point, naming, OpenAI schema, ok and invalid calls."""

from rlfactory_plugins.testing import ToolPackTests, call_tool
from rlfactory_tool_template import template


class TestPack(ToolPackTests):
    tool_name = "template"
    valid_arguments = {"query": "Paris", "limit": 2}
    invalid_arguments = {"limit": 2}
    expected_in_output = "2. Paris"


async def test_empty_query_is_a_tool_error():
    result = await call_tool(template, {"query": "  "})
    assert result.status.value == "tool_error" and "query is empty" in result.error
