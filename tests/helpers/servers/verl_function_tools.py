"""verl ``@function_tool`` functions (verl 0.9.1's documented decorator; Google-style docstrings)."""

from __future__ import annotations

from verl.tools.function_tool import function_tool


@function_tool
def verl_multiply(a: int, b: int) -> str:
    """Multiply two integers.

    Args:
        a: The first factor.
        b: The second factor.
    """
    return str(a * b)


@function_tool("verl_shout")
async def shout(text: str) -> tuple[str, float]:
    """Upper-case the text.

    Args:
        text: What to shout.
    """
    return text.upper(), 1.0
