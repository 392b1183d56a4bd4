from rlfactory_plugins.testing import ToolPackTests


class TestCalculatorPack(ToolPackTests):
    tool_name = "calculator"
    valid_arguments = {"expression": "(3 + 4) * 2 ** 10"}
    invalid_arguments = {"expr": "1 + 1"}
    expected_in_output = "7168"
