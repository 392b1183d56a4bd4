"""The demo's embedded task: answer questions about a synthetic world by calling ``search``.

Questions and passages are the ones ``rlfactory-tool-search`` ships (made-up people,
cities and inventions, so a model can only answer by searching). This module turns
them into

* verl parquet files for GRPO (``prompt`` = the question as a user message,
  ``reward_model.ground_truth`` = the gold answers), and
* warm-start demonstrations in the Search-R1 tag format (``rlfactory.parser=search_r1``):
  question -> ``<search>question</search>`` -> the real BM25 observation in
  ``<information>…</information>`` -> ``<answer>…</answer>``. The tag format keeps the
  prompt short (no JSON tool schemas in it), which is what makes CPU training quick.

Demonstrations are deliberately partial: a fraction ``1 - answer_accuracy`` of them
answer with the passage's *other* fact (a person's town instead of the year asked for,
and so on), so the warm-started model calls the tool and copies a fact from the
observation, but does not yet know which fact the question asks for. That is what RL
has to learn from the exact-match reward.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_SOURCE = "rlfactory_demo_search"
PARSER = "search_r1"
#: the ``rlfactory.tools`` entry of the demo: one passage per query keeps observations short
SEARCH_OPTIONS: dict[str, Any] = {"backend": "bm25", "topk": 1}


@dataclass(frozen=True)
class QA:
    id: str
    question: str
    answers: list[str]
    split: str
    doc_id: str
    attribute: str


def load_qa() -> list[QA]:
    from rlfactory_tool_search.data import shipped_qa

    rows = [json.loads(line) for line in shipped_qa().read_text().splitlines() if line.strip()]
    return [
        QA(r["id"], r["question"], list(r["golden_answers"]), r["split"], r["metadata"]["doc_id"],
           r["metadata"]["attribute"])
        for r in rows
    ]


def corpus_texts() -> list[str]:
    from rlfactory_tool_search.data import shipped_corpus

    return [json.loads(line)["contents"] for line in shipped_corpus().read_text().splitlines() if line.strip()]


def search_tool():
    """The registered ``search`` tool with the demo's options (same schema the rollout renders)."""
    from rlfactory_plugins.plugins import get_registry

    return get_registry().tool("search").configure(SEARCH_OPTIONS)


def split_rows(rows: list[QA], n_sft: int, seed: int) -> tuple[list[QA], list[QA], list[QA]]:
    """Disjoint (warm-start, RL train, RL validation) questions; validation = the held-out entities."""
    train = [r for r in rows if r.split == "train"]
    random.Random(seed).shuffle(train)
    return train[:n_sft], train[n_sft:], [r for r in rows if r.split == "test"]


def prompt_messages(qa: QA) -> list[dict[str, str]]:
    return [{"role": "user", "content": qa.question}]


def verl_rows(rows: list[QA], split: str) -> list[dict[str, Any]]:
    return [
        {
            "data_source": DATA_SOURCE,
            "prompt": prompt_messages(r),
            "ability": "search",
            "reward_model": {"style": "rule", "ground_truth": r.answers},
            "extra_info": {"index": i, "split": split, "id": r.id, "question": r.question},
        }
        for i, r in enumerate(rows)
    ]


def write_parquet(rows: list[QA], path: Path, split: str) -> Path:
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(verl_rows(rows, split)).to_parquet(path)
    return path


@dataclass
class Demonstration:
    qa: QA
    query: str
    observation: str
    answer: str

    def call_text(self) -> str:
        """The assistant's first turn: one ``search`` call (the parser's stop string ends it)."""
        return f"<search>{self.query}</search>"

    def answer_text(self) -> str:
        return f"<answer>{self.answer}</answer>"

    def text(self) -> str:
        """The whole exchange as plain text (for training the tokenizer)."""
        return f"{self.qa.question}\n{self.call_text()}\n<information>{self.observation}</information>\n{self.answer_text()}"


def warm_start_world(out_dir: Path, worlds: int, first_seed: int = 1) -> tuple[Path, list[QA]]:
    """Questions about *other* made-up worlds (the pack's generator, other seeds), for demonstrations.

    Copying a name it has never seen into the query is the skill the warm start must teach;
    a few hundred demonstrations about the training world's own names are memorised instead.
    The returned corpus is the shipped one plus these worlds, so the demonstrations' observations
    come from the real BM25 tool; RL and validation questions stay about the shipped world only.
    """
    from rlfactory_tool_search.data import shipped_corpus
    from rlfactory_tool_search.synthetic import make_entities, passages, questions

    lines = [line for line in shipped_corpus().read_text().splitlines() if line.strip()]
    rows: list[QA] = []
    for seed in range(first_seed, first_seed + worlds):
        entities = make_entities(seed)
        for doc in passages(entities):
            lines.append(json.dumps({"id": f"w{seed}-{doc['id']}", "contents": doc["contents"]}))
        for r in questions(entities, seed):
            rows.append(QA(f"w{seed}-{r['id']}", r["question"], list(r["golden_answers"]), "warm_start",
                           f"w{seed}-{r['metadata']['doc_id']}", r["metadata"]["attribute"]))
    corpus = out_dir / "warm_start_corpus.jsonl"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n".join(lines) + "\n")
    return corpus, rows


async def _observations(queries: list[str], corpus: Path | None) -> list[str]:
    options = {**SEARCH_OPTIONS, **({"corpus": str(corpus), "cache_dir": str(corpus.parent / "index")} if corpus else {})}
    from rlfactory_plugins.plugins import get_registry

    tool = get_registry().tool("search").configure(options)
    try:
        return [await tool.acall({"query": q}) for q in queries]
    finally:
        await tool.aclose()


def demonstrations(
    rows: list[QA], answer_accuracy: float, seed: int, corpus: Path | None = None
) -> list[Demonstration]:
    """One demonstration per question (observations from BM25 over ``corpus``, default the shipped one);
    the answer is the asked fact with probability ``answer_accuracy``, else the passage's other fact."""
    by_doc: dict[str, dict[str, str]] = {}
    for r in rows:
        by_doc.setdefault(r.doc_id, {})[r.attribute] = r.answers[0]
    rng = random.Random(seed)
    observations = asyncio.run(_observations([r.question for r in rows], corpus))
    demos = []
    for r, obs in zip(rows, observations, strict=True):
        answer = r.answers[0]
        if rng.random() >= answer_accuracy:
            others = [a for attr, a in sorted(by_doc[r.doc_id].items()) if attr != r.attribute]
            answer = rng.choice(others) if others else answer
        demos.append(Demonstration(r, r.question, obs, answer))
    return demos
