"""A safe, exact arithmetic evaluator: ``ast.parse(mode="eval")`` walked with a whitelist.

Nothing is ever passed to ``eval``. Numbers are ``int`` / :class:`fractions.Fraction`, so
``0.1 + 0.2`` is exactly ``3/10``. Only square roots and fractional powers of numbers
that have no exact root are approximated (with :mod:`decimal`, 40 significant digits),
and the result then says so. Limits on the expression's length, exponents, factorial
arguments and the size of every intermediate result keep a single call cheap.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction

from rlfactory_plugins.tools import ToolError

LOG10_2 = math.log10(2)


class CalculatorError(ToolError):
    """The expression was rejected or cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class Limits:
    max_length: int = 500
    """characters in the expression"""
    max_exponent: int = 10_000
    """absolute value of an exponent (unless the base is 0, 1 or -1)"""
    max_digits: int = 5_000
    """decimal digits of the numerator or denominator of any intermediate result"""
    max_factorial: int = 1_000
    max_depth: int = 50
    """nesting depth of the expression tree"""


@dataclass
class Value:
    number: Fraction
    exact: bool = True


_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}


def _digits(x: Fraction) -> int:
    return int(max(abs(x.numerator).bit_length(), x.denominator.bit_length()) * LOG10_2) + 1


def _iroot(n: int, k: int) -> int | None:
    """The exact integer k-th root of n >= 0, or None."""
    if n < 2:
        return n
    r = round(n ** (1.0 / k)) if n.bit_length() < 1000 else math.isqrt(n) if k == 2 else None
    if r is None:  # big n and k > 2: Newton on ints
        r = 1 << -(-n.bit_length() // k)
        while True:
            s = ((k - 1) * r + n // r ** (k - 1)) // k
            if s >= r:
                break
            r = s
    for cand in (r - 1, r, r + 1):
        if cand >= 0 and cand**k == n:
            return cand
    return None


def _to_decimal(x: Fraction, ctx: Context) -> Decimal:
    return ctx.divide(Decimal(x.numerator), Decimal(x.denominator))


class Evaluator:
    """Evaluates one expression under :class:`Limits`."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.ctx = Context(prec=40)
        self.functions: dict[str, Callable[..., Value]] = {
            "abs": lambda x: Value(abs(x.number), x.exact),
            "min": lambda *xs: min(xs, key=lambda v: v.number),
            "max": lambda *xs: max(xs, key=lambda v: v.number),
            "sqrt": lambda x: self._power(x, Value(Fraction(1, 2))),
            "floor": lambda x: Value(Fraction(math.floor(x.number)), x.exact),
            "ceil": lambda x: Value(Fraction(math.ceil(x.number)), x.exact),
            "round": self._round,
            "gcd": lambda *xs: Value(Fraction(math.gcd(*(self._int(x, "gcd") for x in xs)))),
            "lcm": lambda *xs: self._checked(Value(Fraction(math.lcm(*(self._int(x, "lcm") for x in xs))))),
            "factorial": self._factorial,
            "comb": lambda n, k: self._combinatoric(math.comb, n, k),
            "perm": lambda n, k: self._combinatoric(math.perm, n, k),
        }

    # -- entry point -----------------------------------------------------------
    def evaluate(self, expression: str) -> Value:
        text = expression.strip().replace("×", "*").replace("÷", "/").replace("−", "-")
        if not text:
            raise CalculatorError("empty expression; pass something like '2 * (3 + 4)'")
        if len(text) > self.limits.max_length:
            raise CalculatorError(f"expression is {len(text)} characters long (limit {self.limits.max_length})")
        try:
            tree = ast.parse(text, mode="eval")
        except SyntaxError as e:
            raise CalculatorError(f"cannot parse {text!r}: {e.msg} at column {e.offset}") from None
        self.source = text
        return self._eval(tree.body, depth=0)

    # -- the whitelist walk ----------------------------------------------------
    def _eval(self, node: ast.AST, depth: int) -> Value:
        if depth > self.limits.max_depth:
            raise CalculatorError(f"expression nested deeper than {self.limits.max_depth} levels")
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
            v = self._eval(node.operand, depth + 1)
            return Value(-v.number if isinstance(node.op, ast.USub) else v.number, v.exact)
        if isinstance(node, ast.BinOp):
            return self._binop(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise CalculatorError(self._rejection(node))

    def _rejection(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return f"names are not allowed: {node.id!r} (only numbers, + - * / // % **, parentheses and functions)"
        if isinstance(node, ast.Attribute):
            return f"attribute access is not allowed: '.{node.attr}'"
        if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.BitXor):
            return "'^' is not supported; write powers as a ** b"
        segment = ast.get_source_segment(self.source, node) or type(node).__name__
        return f"{type(node).__name__} is not allowed in a calculator expression: {segment!r}"

    def _constant(self, node: ast.Constant) -> Value:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError(f"only numbers are allowed, got {value!r}")
        if isinstance(value, int):
            return self._checked(Value(Fraction(value)))
        # Read the literal as written, so 0.1 is exactly 1/10 and not the nearest float.
        literal = (ast.get_source_segment(self.source, node) or repr(value)).replace("_", "")
        return self._checked(Value(Fraction(literal)))

    def _binop(self, node: ast.BinOp, depth: int) -> Value:
        op = type(node.op)
        if op is ast.BitXor:
            raise CalculatorError(self._rejection(node))
        if op is not ast.Pow and op not in _BINARY:
            raise CalculatorError(f"operator {type(node.op).__name__} is not allowed (use + - * / // % **)")
        left, right = self._eval(node.left, depth + 1), self._eval(node.right, depth + 1)
        if op is ast.Pow:
            return self._power(left, right)
        if op in (ast.Div, ast.FloorDiv, ast.Mod) and right.number == 0:
            raise CalculatorError(f"division by zero in {ast.get_source_segment(self.source, node)!r}")
        return self._checked(Value(_BINARY[op](left.number, right.number), left.exact and right.exact))

    def _call(self, node: ast.Call, depth: int) -> Value:
        if not isinstance(node.func, ast.Name):
            raise CalculatorError(self._rejection(node.func))
        name = node.func.id
        fn = self.functions.get(name)
        if fn is None:
            raise CalculatorError(f"unknown function {name!r} (available: {', '.join(sorted(self.functions))})")
        if node.keywords:
            raise CalculatorError(f"{name}() takes no keyword arguments")
        args = [self._eval(a, depth + 1) for a in node.args]
        try:
            return fn(*args)
        except TypeError:
            raise CalculatorError(f"wrong number of arguments for {name}(): got {len(args)}") from None

    # -- operations with limits -------------------------------------------------
    def _checked(self, v: Value) -> Value:
        if _digits(v.number) > self.limits.max_digits:
            raise CalculatorError(f"a result has more than {self.limits.max_digits} digits; simplify the expression")
        return v

    def _int(self, v: Value, fn: str) -> int:
        if v.number.denominator != 1:
            raise CalculatorError(f"{fn}() needs integers, got {v.number}")
        return v.number.numerator

    def _power(self, base: Value, exp: Value) -> Value:
        b, e = base.number, exp.number
        exact = base.exact and exp.exact
        if b == 0 and e < 0:
            raise CalculatorError("division by zero: 0 raised to a negative power")
        if e.denominator == 1:
            n = e.numerator
            if abs(b) not in (0, 1) and abs(n) > self.limits.max_exponent:
                raise CalculatorError(f"exponent {n} is too large (limit {self.limits.max_exponent})")
            size = max(math.log10(abs(b.numerator) or 1), math.log10(b.denominator))  # exact for big ints
            if abs(n) * size > self.limits.max_digits:
                raise CalculatorError(
                    f"the result would have about {int(abs(n) * size) + 1} digits (limit {self.limits.max_digits})"
                )
            return self._checked(Value(b**n, exact))
        if b < 0:
            raise CalculatorError(f"({b}) ** ({e}) is not a real number")
        if e.denominator > 1000 or abs(e.numerator) > self.limits.max_exponent:
            raise CalculatorError(f"exponent {e} is too complicated (denominator up to 1000)")
        num, den = _iroot(b.numerator, e.denominator), _iroot(b.denominator, e.denominator)
        if num is not None and den is not None:
            return self._power(Value(Fraction(num, den), exact), Value(Fraction(e.numerator), True))
        approx = self.ctx.power(_to_decimal(b, self.ctx), _to_decimal(e, self.ctx))
        return self._checked(Value(Fraction(approx), exact=False))

    def _round(self, x: Value, ndigits: Value | None = None) -> Value:
        nd = 0 if ndigits is None else self._int(ndigits, "round")
        return Value(Fraction(round(x.number, nd)), x.exact)

    def _factorial(self, x: Value) -> Value:
        n = self._int(x, "factorial")
        if not 0 <= n <= self.limits.max_factorial:
            raise CalculatorError(f"factorial({n}) is out of range (0 to {self.limits.max_factorial})")
        return self._checked(Value(Fraction(math.factorial(n))))

    def _combinatoric(self, fn: Callable[[int, int], int], n: Value, k: Value) -> Value:
        ni, ki = self._int(n, fn.__name__), self._int(k, fn.__name__)
        if ni < 0 or ki < 0:
            raise CalculatorError(f"{fn.__name__}() needs non-negative integers, got {ni}, {ki}")
        if ni > self.limits.max_factorial * 100:
            raise CalculatorError(f"{fn.__name__}({ni}, {ki}): n is too large (limit {self.limits.max_factorial * 100})")
        return self._checked(Value(Fraction(fn(ni, ki))))


def format_value(v: Value) -> str:
    """``42``, ``3/10 = 0.3``, ``7/3 ≈ 2.333…`` or ``≈ 1.414…`` for approximations."""
    x = v.number
    ctx = Context(prec=20)
    if not v.exact:
        return f"≈ {_to_decimal(x, Context(prec=30)).normalize()} (approximate)"
    if x.denominator == 1:
        return str(x.numerator)
    den = x.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1 and _digits(x) < 60:
        return f"{x} = {_to_decimal(x, Context(prec=100)).normalize():f}"
    return f"{x} ≈ {_to_decimal(x, ctx).normalize()}"


def calculate(expression: str, limits: Limits | None = None) -> str:
    """Evaluate ``expression`` exactly and format the result; raise :class:`CalculatorError`."""
    return format_value(Evaluator(limits).evaluate(expression))
