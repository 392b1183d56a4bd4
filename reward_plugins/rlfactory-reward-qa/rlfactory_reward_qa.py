"""QA rewards compatible with Search-R1: ``qa_em``, ``qa_f1``, ``qa_format``; ``qa_otc`` (exact match
times OTC's tool-efficiency multiplier, :mod:`rlfactory_plugins.rewards.tool_efficiency`).

The answer is the trajectory's ``final_answer``, else the last ``<answer>…</answer>`` of
the last assistant text. Ground truth is a str, a list of acceptable answers, or
``{"target": [...]}``. Answers are compared after Search-R1's normalisation (lower
case, no punctuation, no articles a/an/the, single spaces). No answer scores 0.
"""

from __future__ import annotations

import re
import string
from collections import Counter

from pydantic import BaseModel, ConfigDict

from rlfactory_plugins import hookimpl
from rlfactory_plugins.rewards import reward
from rlfactory_plugins.rewards.answer import answer_text, extract_tagged, gold_answers
from rlfactory_plugins.rewards.base import RewardOutput
from rlfactory_plugins.rewards.tool_efficiency import EfficiencyOptions, efficiency
from rlfactory_plugins.trajectory import Trajectory

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Search-R1 / SQuAD normalisation."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, golds: list[str], substring: bool = False) -> bool:
    pred = normalize_answer(prediction)
    norm = [normalize_answer(g) for g in golds]
    return any((g in pred) if substring else (g == pred) for g in norm)


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


class EMOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = "answer"
    substring: bool = False
    """Search-R1's ``subem``: a gold answer contained in the prediction counts."""


class F1Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = "answer"


class FormatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag: str = "answer"
    require_think: bool = False
    """Also require a ``<think>…</think>`` block before the answer."""


@reward(name="qa_em", options=EMOptions)
def qa_em(trajectory: Trajectory, tag: str = "answer", substring: bool = False) -> float:
    """1 if the normalised answer equals (or, with substring, contains) a gold answer."""
    answer = answer_text(trajectory, tag)
    return float(answer is not None and exact_match(answer, gold_answers(trajectory.ground_truth), substring))


@reward(name="qa_f1", options=F1Options)
def qa_f1(trajectory: Trajectory, tag: str = "answer") -> float:
    """Best token-level F1 of the normalised answer against the gold answers."""
    answer = answer_text(trajectory, tag)
    if answer is None:
        return 0.0
    return max((token_f1(answer, g) for g in gold_answers(trajectory.ground_truth)), default=0.0)


@reward(name="qa_format", options=FormatOptions)
def qa_format(trajectory: Trajectory, tag: str = "answer", require_think: bool = False) -> float:
    """1 if the last assistant turn has a non-empty <answer> (and <think>, if required)."""
    text = trajectory.last_assistant_text() or trajectory.response_text
    answer = trajectory.final_answer if trajectory.final_answer is not None else extract_tagged(text, tag)
    if not answer:
        return 0.0
    return float(not require_think or extract_tagged(trajectory.response_text, "think") is not None)


class OTCOptions(EMOptions, EfficiencyOptions):
    """``qa_em``'s options and the efficiency multiplier's (min_calls, optimal_calls, min_calls_field, smoothing)."""


@reward(name="qa_otc", options=OTCOptions)
def qa_otc(trajectory: Trajectory, **options) -> RewardOutput:
    """Exact match times the tool-efficiency multiplier: a correct answer scores more with fewer calls,
    0 with fewer calls than the row needs (``extra_info.min_calls``)."""
    opts = OTCOptions(**options)
    answer = answer_text(trajectory, opts.tag)
    correct = float(answer is not None and exact_match(answer, gold_answers(trajectory.ground_truth), opts.substring))
    factor, info = efficiency(trajectory, opts)
    return RewardOutput(score=correct * factor, info={**info, "correct": correct})


@hookimpl
def register_rewards(register):
    for fn in (qa_em, qa_f1, qa_format, qa_otc):
        register(fn)
