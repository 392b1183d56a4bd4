"""BFCL call strings, built from validated JSON calls and never from model text.

BFCL's executor ``eval``\\ s each call string after prefixing known method names with their
instance (a regex that also rewrites text inside string literals) and checking the head against
a blocklist of eight names. So the strings it sees are made here from a tool's own method name
and JSON arguments, and each is proved to be exactly one call of that method with literal
arguments equal to the JSON values (``ast`` round trip) before it is handed over. Arguments that
look like code are refused outright (status ``invalid_args``): a string with a dunder name
(``__import__``), an attribute call (``os.system(``) or a call of a BFCL method or a Python
builtin (``ls(``, ``eval(``), and non-finite numbers.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import re
from functools import cache
from typing import Any

from bfcl_eval.constants.executable_backend_config import CLASS_FILE_PATH_MAPPING

from rlfactory_plugins.tools.validation import InvalidArguments

from rlfactory_env_bfcl.backend import CLASSES, function_docs

__all__ = ["build_call", "check_value", "method_names", "parse_call", "qualified"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DUNDER = re.compile(r"__[A-Za-z_]\w*")
_ATTRIBUTE_CALL = re.compile(r"\.\s*[A-Za-z_]\w*\s*\(")
_RISKY_BUILTINS = ("eval", "exec", "compile", "open", "getattr", "setattr", "delattr", "globals", "locals", "vars",
                   "input", "breakpoint", "help")


def qualified(class_name: str, method: str) -> str:
    """The tool name of a BFCL function: ``GorillaFileSystem_cd`` (class names have no ``_``)."""
    return f"{class_name}_{method}"


@cache
def method_names() -> frozenset[str]:
    """Every public method name of the offered classes (what BFCL's executor rewrites)."""
    return frozenset(doc["name"] for c in CLASSES for doc in function_docs(c))


@cache
def _bare_call() -> re.Pattern[str]:
    names = sorted({*method_names(), *_RISKY_BUILTINS}, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\s*\(")


def check_value(value: Any, where: str) -> None:
    """Raise :class:`InvalidArguments` for a JSON value BFCL's executor must not see."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArguments(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, str):
        for pattern, what in ((_DUNDER, "a dunder name"), (_ATTRIBUTE_CALL, "an attribute call"),
                              (_bare_call(), "a function call")):
            found = pattern.search(value)
            if found:
                raise InvalidArguments(
                    f"{where}: the text contains {what} ({found.group(0)!r}), which BFCL's executor would evaluate "
                    "or rewrite; pass plain data"
                )
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArguments(f"{where}: key {key!r} is not a string")
            check_value(key, f"{where} key")
            check_value(item, f"{where}[{key!r}]")
        return
    raise InvalidArguments(f"{where}: {type(value).__name__} is not a JSON value")


def build_call(method: str, arguments: dict[str, Any]) -> str:
    """``method(k=v, ...)`` with literal values, checked to parse back to exactly that call."""
    if method not in method_names():
        raise InvalidArguments(f"{method!r} is not a BFCL method")
    for key, value in arguments.items():
        if not _IDENT.match(key):
            raise InvalidArguments(f"argument name {key!r} is not an identifier")
        check_value(value, key)
    text = f"{method}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    tree = ast.parse(text, mode="eval").body
    ok = (
        isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == method and not tree.args
        and [k.arg for k in tree.keywords] == list(arguments)
        and all(ast.literal_eval(k.value) == arguments[k.arg] for k in tree.keywords)
    )
    if not ok:  # pragma: no cover - repr of JSON values always round-trips; this is the proof, not a path
        raise InvalidArguments(f"the call {text!r} does not round-trip to {method} with literal arguments")
    return text


@cache
def _signature(class_name: str, method: str) -> inspect.Signature:
    module = importlib.import_module(CLASS_FILE_PATH_MAPPING[class_name])
    return inspect.signature(getattr(getattr(module, class_name), method))


def parse_call(text: str, classes: list[str]) -> tuple[str, dict[str, Any]]:
    """A BFCL call string (a ground-truth answer: ``sort('a.txt')``, ``cd(folder='x')``) as the JSON call a
    model would make: the qualified tool name (``GorillaFileSystem_sort``) and named arguments."""
    tree = ast.parse(text.strip(), mode="eval").body
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError(f"{text!r} is not a call of a bare method name")
    method = tree.func.id
    owner = next((c for c in classes if any(d["name"] == method for d in function_docs(c))), None)
    if owner is None:
        raise ValueError(f"{text!r}: no method {method!r} in the classes {classes}")
    params = [p for p in _signature(owner, method).parameters if p != "self"]
    arguments = {params[i]: ast.literal_eval(arg) for i, arg in enumerate(tree.args)}
    arguments.update({k.arg: ast.literal_eval(k.value) for k in tree.keywords if k.arg is not None})
    return qualified(owner, method), arguments
