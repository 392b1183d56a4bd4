"""The shipped synthetic corpus: facts about made-up people, cities and inventions.

A tiny model cannot know any of these facts, so it can only answer the questions by
searching. Every answer is a single word (a year or a made-up place name) that occurs
in exactly one passage, and every question names its entity, so BM25 on the question
finds the right passage. ``make_synthetic(seed)`` is deterministic; the committed
``data/corpus.jsonl`` and ``data/qa.jsonl`` are its output (``scripts/make_synthetic.py``).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "th"]
VOWELS = ["a", "e", "i", "o", "u", "a", "o"]
CODAS = ["", "", "", "n", "r", "l", "s"]

PROFESSIONS = ["clockmaker", "cartographer", "glassblower", "astronomer", "shipwright", "weaver", "botanist", "painter"]
TRAITS = [
    "a patient teacher",
    "a famous storyteller",
    "a collector of old maps",
    "a tireless traveller",
    "a skilled musician",
    "a keen gardener",
]
EXPORTS = ["copper", "wool", "salt", "timber", "silk", "honey", "glass", "amber"]
DEVICE_KINDS = ["machine", "instrument", "engine", "lamp", "loom", "compass"]
POWER = ["water", "steam", "wind", "springs", "weights", "sunlight"]

QUESTIONS = {
    ("person", "year"): "In which year was {name} born?",
    ("person", "town"): "In which town was {name} born?",
    ("city", "year"): "In which year was the city of {name} founded?",
    ("city", "river"): "Which river flows through the city of {name}?",
    ("invention", "year"): "In which year was the {name} invented?",
    ("invention", "village"): "In which village was the {name} first built?",
}


@dataclass(frozen=True)
class Entity:
    kind: str  # person | city | invention
    name: str
    text: str
    answers: dict[str, str]  # attribute -> single-word answer


class _Words:
    """Made-up capitalised words, each used once across the whole corpus."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def new(self, syllables: int = 2) -> str:
        while True:
            word = "".join(
                self.rng.choice(ONSETS) + self.rng.choice(VOWELS) + self.rng.choice(CODAS) for _ in range(syllables)
            )
            if len(word) >= 5 and word not in self.used:
                self.used.add(word)
                return word.capitalize()


def _person(words: _Words, rng: random.Random, year: int) -> Entity:
    name = f"{words.new()} {words.new(3)}"
    town = words.new()
    first = name.split()[0]
    text = (
        f"{name} was a {rng.choice(PROFESSIONS)} born in {year} in the town of {town}. "
        f"{first} was known as {rng.choice(TRAITS)}."
    )
    return Entity("person", name, text, {"year": str(year), "town": town})


def _city(words: _Words, rng: random.Random, year: int) -> Entity:
    name, river = words.new(), words.new()
    text = (
        f"{name} is a city on the river {river}. The city of {name} was founded in {year}. "
        f"Its main export is {rng.choice(EXPORTS)}."
    )
    return Entity("city", name, text, {"year": str(year), "river": river})


def _invention(words: _Words, rng: random.Random, year: int) -> Entity:
    name, village = words.new(3).lower(), words.new()
    text = (
        f"The {name} is a {rng.choice(DEVICE_KINDS)} invented in {year}. "
        f"The first {name} was built in the village of {village}. It is powered by {rng.choice(POWER)}."
    )
    return Entity("invention", name, text, {"year": str(year), "village": village})


def make_entities(seed: int = 0, people: int = 150, cities: int = 80, inventions: int = 70) -> list[Entity]:
    rng = random.Random(seed)
    words = _Words(rng)
    total = people + cities + inventions
    years = rng.sample(range(1500, 2000), total)  # unique: each year answers one question only
    makers = [_person] * people + [_city] * cities + [_invention] * inventions
    return [make(words, rng, year) for make, year in zip(makers, years)]


def passages(entities: list[Entity]) -> list[dict[str, str]]:
    """Search-R1's corpus format: ``contents`` is the quoted title, a newline, the text."""
    return [{"id": str(i), "contents": f'"{e.name}"\n{e.text}'} for i, e in enumerate(entities)]


def questions(entities: list[Entity], seed: int = 0, test_fraction: float = 0.2) -> list[dict]:
    """FlashRAG-style QA rows; the split is by entity, so test entities are unseen in training."""
    order = list(range(len(entities)))
    random.Random(seed + 1).shuffle(order)
    test = set(order[: int(len(order) * test_fraction)])
    rows = []
    for i, e in enumerate(entities):
        for attribute, answer in e.answers.items():
            rows.append(
                {
                    "id": f"syn-{len(rows):04d}",
                    "question": QUESTIONS[(e.kind, attribute)].format(name=e.name),
                    "golden_answers": [answer],
                    "split": "test" if i in test else "train",
                    "metadata": {"doc_id": str(i), "kind": e.kind, "attribute": attribute},
                }
            )
    return rows


def answer_occurrences(answer: str, corpus: list[dict[str, str]]) -> int:
    """How many passages contain ``answer`` as a whole word (case-insensitive)."""
    pattern = re.compile(rf"\b{re.escape(answer)}\b", re.IGNORECASE)
    return sum(1 for doc in corpus if pattern.search(doc["contents"]))


def make_synthetic(seed: int = 0) -> tuple[list[dict[str, str]], list[dict]]:
    entities = make_entities(seed)
    corpus, qa = passages(entities), questions(entities, seed)
    for row in qa:
        n = answer_occurrences(row["golden_answers"][0], corpus)
        if n != 1:
            raise AssertionError(f"answer {row['golden_answers'][0]!r} occurs in {n} passages, expected 1")
    return corpus, qa


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_synthetic(out_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    corpus, qa = make_synthetic(seed)
    write_jsonl(corpus, out_dir / "corpus.jsonl")
    write_jsonl(qa, out_dir / "qa.jsonl")
    return out_dir / "corpus.jsonl", out_dir / "qa.jsonl"
