from rlfactory_plugins.testing import ToolPackTests


class TestPythonPack(ToolPackTests):
    tool_name = "python"
    valid_arguments = {"code": "print(sum(range(10)))"}
    invalid_arguments = {"source": "print(1)"}
    expected_in_output = "45"
