import pytest

from rlfactory_plugins.testing import call_tool
from rlfactory_plugins.tools import ToolStatus
from rlfactory_tool_calculator import CalculatorError, Limits, calculate, calculator


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2", "3/10 = 0.3"),
        ("7 / 3", "7/3 ≈ 2.3333333333333333333"),
        ("2 ** 100", str(2**100)),
        ("-(3) ** 2", "-9"),
        ("17 // 5 + 17 % 5", "5"),
        ("sqrt(16/9)", "4/3 ≈ 1.3333333333333333333"),
        ("8 ** (1/3)", "2"),
        ("factorial(20)", "2432902008176640000"),
        ("comb(50, 25)", "126410606437752"),
        ("1e3 / 4", "250"),
        ("max(1, 2.5, -3) * 2", "5"),
        ("round(7/3, 3)", "2333/1000 = 2.333"),
        ("3 × 4 ÷ 6", "2"),
        ("2 ** -2", "1/4 = 0.25"),
    ],
)
def test_exact_results(expression, expected):
    assert calculate(expression) == expected


def test_irrational_results_are_marked_approximate():
    assert calculate("sqrt(2)").startswith("≈ 1.41421356237309504880")
    assert calculate("sqrt(2)").endswith("(approximate)")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "attribute access is not allowed: '.system'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("().__class__.__bases__", "attribute access is not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("x + 1", "names are not allowed: 'x'"),
        ("2 ^ 10", "'^' is not supported; write powers as a ** b"),
        ("9 ** 9 ** 9", "exponent 387420489 is too large (limit 10000)"),
        ("2 ** 2 ** 2 ** 2 ** 2", "exponent 65536 is too large"),
        ("7 ** 9999", "digits (limit 5000)"),
        ("factorial(100000)", "out of range"),
        ("1 / 0", "division by zero"),
        ("(-8) ** 0.5", "not a real number"),
        ("'a' * 3", "only numbers are allowed"),
        ("[1, 2]", "List is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("1 +", "cannot parse"),
        ("1" * 600, "characters long (limit 500)"),
        ("", "empty expression"),
    ],
)
def test_rejected_input_has_clear_message(expression, message):
    with pytest.raises(CalculatorError, match=None) as info:
        calculate(expression)
    assert message in str(info.value)


def test_intermediate_results_are_bounded():
    with pytest.raises(CalculatorError, match="more than 50 digits"):
        calculate("10 ** 40 * 10 ** 40", Limits(max_digits=50))


@pytest.mark.timeout(10)
async def test_malicious_input_is_a_tool_error_observation():
    result = await call_tool(calculator, {"expression": "__import__('os').system('touch /tmp/pwned')"})
    assert result.status is ToolStatus.tool_error
    assert result.render() == "[tool_error] calculator: attribute access is not allowed: '.system'"
