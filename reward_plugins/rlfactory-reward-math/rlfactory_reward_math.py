"""``math_equiv``: 1 if the answer is mathematically equal to the ground truth (math-verify).

The answer is the trajectory's ``final_answer``, else the last ``<answer>`` block, else
the last assistant text (math-verify finds ``\\boxed{}`` or the last expression in it).
Ground truth is a str, a list of acceptable answers, or ``{"target": [...]}``.
math-verify's own signal-based timeouts only work in the main thread, so they are off
here (scoring runs in a worker thread); the part's ``timeout`` in ``rlfactory.rewards``
bounds how long a step waits.
"""

from __future__ import annotations

import logging

from math_verify import parse, verify
from pydantic import BaseModel, ConfigDict

from rlfactory_plugins import hookimpl
from rlfactory_plugins.rewards import reward
from rlfactory_plugins.rewards.answer import answer_text, gold_answers
from rlfactory_plugins.trajectory import Trajectory

logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled" on every call


class MathOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = "answer"
    float_rounding: int = 6
    strict: bool = True


def _as_math(text: str, whole: bool) -> list:
    """Parse ``text``; a bare answer (``whole``, e.g. from ``<answer>``) is read as one LaTeX formula."""
    if whole and "$" not in text and "\\boxed" not in text and "\\(" not in text:
        text = f"${text}$"
    return parse(text, parsing_timeout=None)


def equivalent(prediction: str, golds: list[str], float_rounding: int = 6, strict: bool = True,
               whole: bool = True) -> bool:
    parsed = _as_math(prediction, whole)
    if not parsed:
        return False
    return any(
        verify(_as_math(g, True), parsed, float_rounding=float_rounding, strict=strict, timeout_seconds=None)
        for g in golds
    )


@reward(name="math_equiv", options=MathOptions)
def math_equiv(trajectory: Trajectory, tag: str = "answer", float_rounding: int = 6, strict: bool = True) -> float:
    """1 if the answer equals a ground-truth answer mathematically (math-verify), else 0."""
    answer = answer_text(trajectory, tag)
    prediction = answer or trajectory.last_assistant_text() or trajectory.response_text
    golds = gold_answers(trajectory.ground_truth)
    return float(bool(prediction) and equivalent(prediction, golds, float_rounding, strict, whole=answer is not None))


@hookimpl
def register_rewards(register):
    register(math_equiv)
