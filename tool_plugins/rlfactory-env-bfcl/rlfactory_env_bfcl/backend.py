"""The one module that imports ``bfcl_eval``: BFCL's function docs, data files and executor.

Only the light parts of the package are imported (the executable API classes, ``multi_turn_utils``,
``multi_turn_checker`` and two constant modules: ``mpmath`` beyond the standard library), never
``bfcl_eval.constants.model_config``, ``eval_checker.eval_runner`` or ``bfcl_eval.utils``, which pull
every model SDK or write into site-packages.

BFCL's executor keeps each class instance in ``multi_turn_utils``' module globals under a name
made of a model name, the entry id and the class, and never frees it. Every caller here passes a
key of its own (one per trajectory, one per scoring) and calls :func:`purge` when done; the
executor's module-wide side effects (``mpmath`` and ``decimal`` precision set by ``MathAPI``) are
saved and restored around each call, under one lock, so concurrent trajectories and scorings
cannot see each other's settings.
"""

from __future__ import annotations

import decimal
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import bfcl_eval
import mpmath
from bfcl_eval.constants.default_prompts import DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING
from bfcl_eval.constants.executable_backend_config import MULTI_TURN_FUNC_DOC_FILE_MAPPING
from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker, response_checker

from rlfactory_plugins.errors import ConfigError

__all__ = [
    "CATEGORIES",
    "CLASSES",
    "REVEAL_PROMPT",
    "bfcl_checker",
    "data_dir",
    "execute",
    "function_docs",
    "leftover_instances",
    "new_key",
    "purge",
    "response_checker",
]

#: the executable classes of BFCL's multi-turn categories (WebSearchAPI and the memory classes of the
#: agentic categories need the network or sentence-transformers and are not offered)
CLASSES: tuple[str, ...] = (
    "GorillaFileSystem", "MathAPI", "MessageAPI", "TicketAPI", "TradingBot", "TravelAPI", "TwitterAPI",
    "VehicleControlAPI",
)
#: the multi-turn categories whose entries use only :data:`CLASSES`
CATEGORIES: tuple[str, ...] = (
    "multi_turn_base", "multi_turn_miss_func", "multi_turn_miss_param", "multi_turn_long_context",
)
#: what BFCL says (to prompting models) at a miss_func entry's reveal turn; ``{functions}`` is the docs
REVEAL_PROMPT: str = DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_PROMPTING
#: the prefix of every key this pack hands BFCL's executor (so leftovers can be counted)
KEY_PREFIX = "rlfactory_"

_LOCK = threading.RLock()


def data_dir() -> Path:
    """The data shipped in the installed ``bfcl-eval`` (entries, possible answers, function docs)."""
    return Path(bfcl_eval.__file__).parent / "data"


def new_key(kind: str = "t") -> str:
    """A model name no other trajectory or scoring uses (BFCL's instance cache is keyed on it)."""
    return f"{KEY_PREFIX}{kind}_{uuid.uuid4().hex}"


def check_classes(classes: list[str], where: str) -> None:
    for name in classes:
        if name not in CLASSES:
            raise ConfigError(f"{where}: BFCL class {name!r} is not offered by rlfactory-env-bfcl; it runs {CLASSES}")


@cache
def function_docs(class_name: str) -> tuple[dict[str, Any], ...]:
    """BFCL's function docs of one class, as shipped (``data/multi_turn_func_doc``)."""
    check_classes([class_name], "function_docs")
    path = data_dir() / "multi_turn_func_doc" / MULTI_TURN_FUNC_DOC_FILE_MAPPING[class_name]
    return tuple(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@contextmanager
def _guarded() -> Iterator[None]:
    """One executor call at a time, with the process-wide precision BFCL's MathAPI sets put back."""
    with _LOCK:
        dps, prec = mpmath.mp.dps, decimal.getcontext().prec
        try:
            yield
        finally:
            mpmath.mp.dps, decimal.getcontext().prec = dps, prec


def execute(calls: list[str], entry: dict[str, Any], key: str) -> tuple[list[str], dict[str, Any]]:
    """Run call strings built by :mod:`rlfactory_env_bfcl.calls` on the instances of ``(key, entry)``
    (created from ``entry["initial_config"]`` on first use): BFCL's executor, results as BFCL renders them."""
    with _guarded():
        return multi_turn_utils.execute_multi_turn_func_call(
            calls, entry["initial_config"], entry["involved_classes"], key, entry["id"],
            long_context=is_long_context(entry["id"]),
        )


def bfcl_checker(turns: list[list[str]], ground_truth: list[list[str]], entry: dict[str, Any]) -> dict[str, Any]:
    """BFCL's own verdict on one entry: ``turns`` is the calls executed in each completed user turn.

    As BFCL's eval runner does: a run whose number of turns differs from the ground truth's was
    force-terminated (invalid); otherwise ``multi_turn_checker`` re-executes both sides from the
    initial state. The instances it creates are purged before returning.
    """
    if len(turns) != len(ground_truth):
        return {
            "valid": False, "error_type": "multi_turn:force_terminated",
            "error_message": f"{len(turns)} completed turns for {len(ground_truth)} ground-truth turns",
        }
    key = new_key("check")
    decoded = [[list(calls)] if calls else [] for calls in turns]
    try:
        with _guarded():
            return multi_turn_checker(decoded, ground_truth, entry, category_of(entry["id"]), key)
    finally:
        purge(f"{key}_eval", entry)
        purge(f"{key}_ground_truth_eval", entry)


def _instance_name(key: str, entry_id: str, class_name: str) -> str:
    # as multi_turn_utils.execute_multi_turn_func_call names its globals
    return re.sub(r"[-./:]", "_", f"{key}_{entry_id}_{class_name}_instance")


def purge(key: str, entry: dict[str, Any]) -> int:
    """Drop the instances BFCL's executor cached for ``(key, entry)``; returns how many there were."""
    names = [_instance_name(key, entry["id"], c) for c in entry["involved_classes"]]
    found = vars(multi_turn_utils)
    with _LOCK:
        return sum(found.pop(name, None) is not None for name in names)


def leftover_instances() -> int:
    """How many instances created under this pack's keys BFCL's executor still holds (0 when all purged)."""
    return sum(1 for name in list(vars(multi_turn_utils)) if name.startswith(KEY_PREFIX))


def category_of(entry_id: str) -> str:
    """``multi_turn_base_12`` -> ``multi_turn_base`` (BFCL's own rule)."""
    return entry_id.rsplit("_", 1)[0]


def is_long_context(entry_id: str) -> bool:
    category = category_of(entry_id)
    return "long_context" in category or "composite" in category


def load_entries(category: str) -> list[dict[str, Any]]:
    """The shipped entries of a category, each with its ``ground_truth`` (possible answer) attached."""
    if category not in CATEGORIES:
        raise ConfigError(f"BFCL category {category!r} is not supported; use one of {CATEGORIES}")
    name = f"BFCL_v4_{category}.json"
    entries = _jsonl(data_dir() / name)
    answers = {a["id"]: a["ground_truth"] for a in _jsonl(data_dir() / "possible_answer" / name)}
    for entry in entries:
        entry["ground_truth"] = answers[entry["id"]]
    return entries


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
