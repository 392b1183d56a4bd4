"""rlfactory tool pack ``calculator``: exact arithmetic for agents.

Install: ``pip install rlfactory-tool-calculator``; enable with ``rlfactory.tools: [calculator]``.
"""

from __future__ import annotations

from rlfactory_plugins import hookimpl
from rlfactory_plugins.tools import tool
from rlfactory_tool_calculator.expression import CalculatorError, Limits, calculate

__all__ = ["CalculatorError", "Limits", "calculate", "calculator", "register_tools"]


@tool(timeout=5.0, cache=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly. Supports + - * / // % ** and parentheses,
    integers and decimals (computed as exact fractions), and the functions abs, min, max,
    sqrt, floor, ceil, round, gcd, lcm, factorial, comb, perm. Example: "(3 + 4) * 2 ** 10"."""
    return calculate(expression)


@hookimpl
def register_tools(register):
    register(calculator)
