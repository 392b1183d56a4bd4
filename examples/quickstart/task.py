"""The demo's embedded task: answer questions about made-up entities by calling ``search``.

The world is the demo's own (:mod:`world`: one fact per passage, answer = last word). This
module turns it into

* verl parquet files for GRPO (``prompt`` = the question as a user message,
  ``reward_model.ground_truth`` = the gold answer), and
* warm-start demonstrations in the Search-R1 tag format (``rlfactory.parser=search_r1``):
  question -> ``<search>entity</search>`` -> the real BM25 observation in
  ``<information>…</information>`` -> ``<answer>…</answer>``. The tag format keeps the
  prompt short (no JSON tool schemas in it), which is what makes CPU training quick.

Demonstrations are about *other* entities than the RL questions. The warm start's second,
short phase is deliberately partial (:func:`with_guesses`): only a fraction of its
demonstrations search, the others answer at once with a guessed place (right about one
time in twenty). The warm-started model therefore searches only sometimes; that searching
pays, and copying the answer exactly, is what GRPO has to find out from the reward.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from world import PLACES, Fact

DATA_SOURCE = "rlfactory_demo_search"
PARSER = "search_r1"


def search_options(corpus: Path) -> dict[str, Any]:
    """The ``rlfactory.tools`` options of the demo: its own corpus, one passage per query."""
    return {"backend": "bm25", "topk": 1, "corpus": str(corpus), "cache_dir": str(corpus.parent / "index")}


def prompt_messages(fact: Fact) -> list[dict[str, str]]:
    return [{"role": "user", "content": fact.question}]


def verl_rows(facts: list[Fact], split: str) -> list[dict[str, Any]]:
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": prompt_messages(f),
            "ability": "search",
            "reward_model": {"style": "rule", "ground_truth": [f.answer]},
            "extra_info": {"index": i, "split": split, "id": f.id, "question": f.question},
        }
        for i, f in enumerate(facts)
    ]


def write_parquet(facts: list[Fact], path: Path, split: str) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(verl_rows(facts, split)).to_parquet(path)
    return path


@dataclass
class Demonstration:
    fact: Fact
    query: str | None  # None: answers without searching
    observation: str
    answer: str

    # A space before the query and the answer: the name and the answer are then the very tokens
    # the question and the passage hold (byte-level BPE's 'ĠLima', not 'Lima'), a plain copy.
    def call_text(self) -> str:
        """The assistant's first turn: one ``search`` call (the parser's stop string ends it)."""
        return f"<search> {self.query}</search>"

    def answer_text(self) -> str:
        return f"<answer> {self.answer}</answer>"

    def text(self) -> str:
        """The whole exchange as plain text (for training the tokenizer)."""
        if self.query is None:
            return f"{self.fact.question}\n{self.answer_text()}"
        observation = f"<information>{self.observation}</information>"
        return f"{self.fact.question}\n{self.call_text()}\n{observation}\n{self.answer_text()}"


async def _observations(queries: list[str], corpus: Path) -> list[str]:
    from rlfactory_plugins.plugins import get_registry

    tool = get_registry().tool("search").configure(search_options(corpus))
    try:
        return [await tool.acall({"query": q}) for q in queries]
    finally:
        await tool.aclose()


def demonstrations(worlds: list[tuple[list[Fact], Path]]) -> list[Demonstration]:
    """One demonstration per fact of each (facts, corpus) world: search for the entity, copy the
    answer out of the real BM25 observation over that world's corpus."""
    out = []
    for facts, corpus in worlds:
        observations = asyncio.run(_observations([f.name for f in facts], corpus))
        out += [Demonstration(f, f.name, obs, f.answer) for f, obs in zip(facts, observations, strict=True)]
    return out


def with_guesses(demos: list[Demonstration], search_rate: float, seed: int) -> list[Demonstration]:
    """The same questions, but only a fraction ``search_rate`` searches; the rest answer at once
    with a guessed place (right about one time in ``len(PLACES)``)."""
    rng = random.Random(seed)
    return [d if rng.random() < search_rate else Demonstration(d.fact, None, "", rng.choice(PLACES)) for d in demos]
