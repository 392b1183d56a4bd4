"""The state of BFCL's API instances as JSON-able digests that compare as BFCL compares instances.

BFCL's state check (``_compare_instances``) takes every public attribute of the ground-truth
instance and compares it with the model instance's by ``!=``. A trajectory's record cannot hold
the instances, so each attribute is encoded canonically and hashed: two values get the same
digest exactly when ``==`` holds between them for the values these classes hold (strings,
numbers, booleans, None, lists, tuples, sets, dicts, and the file system's ``File``/``Directory``,
whose ``__eq__`` compares name and content(s) — the parent link is not compared, so not encoded).
Numbers are normalised as Python compares them (``1 == 1.0 == True``); an object of another class
with the default ``__eq__`` compares by identity in BFCL, so it gets a digest of its own that
never matches.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["digests", "encode"]


def _number(value: int | float) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return ["nan", id(value)]  # nan != nan
        if value.is_integer():
            return ["num", str(int(value))]
        return ["num", repr(value)]
    return ["num", str(int(value))]


def encode(value: Any) -> Any:
    """A JSON structure equal for two values exactly when they are ``==`` (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return _number(value)
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, list):
        return ["list", [encode(v) for v in value]]
    if isinstance(value, tuple):
        return ["tuple", [encode(v) for v in value]]
    if isinstance(value, set | frozenset):
        return ["set", sorted((encode(v) for v in value), key=_key)]
    if isinstance(value, dict):
        return ["dict", sorted(([encode(k), encode(v)] for k, v in value.items()), key=_key)]
    kind = type(value).__name__
    if kind == "File" and hasattr(value, "content"):
        return ["File", value.name, value.content]
    if kind == "Directory" and hasattr(value, "contents"):
        return ["Directory", value.name, encode(value.contents)]
    if type(value).__eq__ is object.__eq__:
        return ["identity", f"{type(value).__qualname__}@{id(value)}"]
    return ["value", type(value).__qualname__, repr(value)]


def _key(item: Any) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def digests(instances: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``{class: {public attribute: digest}}`` of BFCL instances (what the state check compares)."""
    out: dict[str, dict[str, str]] = {}
    for class_name, instance in instances.items():
        out[class_name] = {
            attr: hashlib.sha256(_key(encode(value)).encode()).hexdigest()[:20]
            for attr, value in vars(instance).items()
            if not attr.startswith("_")
        }
    return out
