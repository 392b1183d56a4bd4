"""The shipped corpus and QA set: reproducible, one passage per answer, findable by BM25."""

from __future__ import annotations

import json
import re

import pytest

from rlfactory_tool_search.bm25 import BM25Retriever
from rlfactory_tool_search.data import shipped_corpus, shipped_qa
from rlfactory_tool_search.synthetic import answer_occurrences, write_synthetic

pytestmark = pytest.mark.timeout(60)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_committed_files_are_the_generator_output(tmp_path):
    corpus, qa = write_synthetic(tmp_path)
    assert corpus.read_bytes() == shipped_corpus().read_bytes()
    assert qa.read_bytes() == shipped_qa().read_bytes()


def test_corpus_and_qa_shape():
    corpus, qa = _rows(shipped_corpus()), _rows(shipped_qa())
    assert 200 <= len(corpus) <= 400 and len(qa) == 2 * len(corpus)
    assert all(set(doc) == {"id", "contents"} and re.match(r'^"[^"\n]+"\n\S', doc["contents"]) for doc in corpus)
    assert {row["split"] for row in qa} == {"train", "test"}
    test_docs = {row["metadata"]["doc_id"] for row in qa if row["split"] == "test"}
    train_docs = {row["metadata"]["doc_id"] for row in qa if row["split"] == "train"}
    assert not test_docs & train_docs  # test questions are about entities never trained on
    for row in qa:
        (answer,) = row["golden_answers"]
        assert re.fullmatch(r"[A-Za-z0-9]+", answer), answer  # one short word
        assert answer_occurrences(answer, corpus) == 1, answer
        assert answer in corpus[int(row["metadata"]["doc_id"])]["contents"]


def test_bm25_finds_the_answer_passage_first(tmp_path):
    qa = _rows(shipped_qa())
    retriever = BM25Retriever(shipped_corpus(), tmp_path)
    ranked = retriever.search([row["question"] for row in qa], topk=1)
    top1 = sum(hits[0].id == row["metadata"]["doc_id"] for hits, row in zip(ranked, qa) if hits)
    assert top1 / len(qa) >= 0.95
