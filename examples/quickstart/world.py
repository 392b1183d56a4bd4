"""The demo's own synthetic world: made-up entities, one fact each, in a regular layout.

Every passage states one fact about one made-up entity, and the fact is the passage's last
word, e.g. ``"Blue Falcon"\\nThe ship Blue Falcon sails from Lima.``; the question ends with
the entity's name (``Which city is home to the ship Blue Falcon?``). Answers come from a fixed
list of city names, so a model cannot know which one belongs to a made-up entity (a guess is
right about 1 time in ``len(PLACES)``): it has to search for the entity and copy the answer out
of the observation. Names and answers are single tokens of the demo tokenizer and sit in fixed
places, which is what makes both copies learnable for a ~1.4M-parameter model in under a minute
of CPU. The shipped ``rlfactory-tool-search`` world (two facts per passage, multi-token made-up
answers) is left to the pack and its tests.

``build(out_dir, seed)`` is deterministic. RL and validation entities never share a name with
the warm-start worlds (the warm start teaches copying, not the RL world's facts).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

#: entity names are two words, ``ADJECTIVES x NOUNS`` (2000 combinations), each a single token
ADJECTIVES = [
    "Red", "Blue", "Green", "Black", "White", "Gold", "Silver", "Iron", "Stone", "Wild",
    "Old", "Young", "Bright", "Dark", "Swift", "Quiet", "Brave", "Tall", "Little", "Great",
    "North", "South", "East", "West", "Happy", "Lucky", "Royal", "Silent", "Golden", "Hidden",
    "Proud", "Gentle", "Frozen", "Burning", "Sleepy", "Lonely", "Clever", "Rusty", "Misty", "Sunny",
]
NOUNS = [
    "Fox", "Wolf", "Bear", "Hawk", "Owl", "Crow", "Deer", "Lion", "Tiger", "Eagle",
    "Raven", "Falcon", "Horse", "Otter", "Swan", "Moon", "Star", "Sun", "River", "Lake",
    "Hill", "Tree", "Oak", "Pine", "Rose", "Storm", "Cloud", "Wind", "Fire", "Frost",
    "Shadow", "Dragon", "Knight", "King", "Queen", "Arrow", "Crown", "Bell", "Drum", "Harp",
    "Anchor", "Sparrow", "Badger", "Heron", "Maple", "Willow", "Comet", "Thunder", "Pearl", "Lantern",
]

#: the answers: short, common, one token each in the demo tokenizer (checked by ``warm_start.build_model``)
PLACES = [
    "Lima", "Rome", "Oslo", "Kyiv", "Riga", "Bern", "Doha", "Baku", "Cork", "Nice",
    "Pisa", "Graz", "Bonn", "Kiel", "Lyon", "Turin", "Porto", "Malta", "Delhi", "Dakar",
]

#: (question, passage text) per kind of entity: the name always ends the question and the
#: answer always ends the passage, so both copies are from a fixed place
TEMPLATES = {
    "person": ("Which city is home to the person {name}?", "The person {name} lives in {answer}."),
    "ship": ("Which city is home to the ship {name}?", "The ship {name} sails from {answer}."),
    "band": ("Which city is home to the band {name}?", "The band {name} was formed in {answer}."),
}


@dataclass(frozen=True)
class Fact:
    id: str
    name: str
    kind: str
    answer: str

    @property
    def question(self) -> str:
        return TEMPLATES[self.kind][0].format(name=self.name)

    @property
    def contents(self) -> str:
        """Search-R1's corpus layout: the quoted title, a newline, the text."""
        return f'"{self.name}"\n' + TEMPLATES[self.kind][1].format(name=self.name, answer=self.answer)


ALL_NAMES = [f"{adjective} {noun}" for adjective in ADJECTIVES for noun in NOUNS]


def make_world(prefix: str, names: list[str], rng: random.Random) -> list[Fact]:
    kinds = sorted(TEMPLATES)
    return [Fact(f"{prefix}-{i:04d}", name, kinds[i % len(kinds)], rng.choice(PLACES)) for i, name in enumerate(names)]


def write_corpus(facts: list[Fact], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f.id, "contents": f.contents}) + "\n" for f in facts))
    return path


@dataclass(frozen=True)
class World:
    rl: list[Fact]  # questions for GRPO
    val: list[Fact]  # held-out entities of the same world
    corpus: Path  # the passages of both, what the search tool searches in RL
    warm: list[tuple[list[Fact], Path]]  # warm-start worlds, each with its own corpus

    def texts(self) -> list[str]:
        return [f.contents for f in self.rl + self.val] + [f.contents for facts, _ in self.warm for f in facts]


def build(out_dir: Path, seed: int, rl: int = 480, val: int = 120, warm: int = 2400, warm_size: int = 600) -> World:
    """The demo world (RL + validation entities) and ``warm`` warm-start facts in worlds of ``warm_size``.

    The warm-start worlds share a pool of names disjoint from the demo world's, but each gives
    its names fresh answers: a name's answer differs from world to world, so the warm start
    cannot memorise facts and has to learn to copy them out of the observation.
    """
    rng = random.Random(seed)
    names = rng.sample(ALL_NAMES, len(ALL_NAMES))
    demo, pool = names[: rl + val], names[rl + val :]
    world = make_world("demo", demo, rng)
    warm_worlds = []
    for k in range(-(-warm // warm_size)):
        facts = make_world(f"warm{k}", rng.sample(pool, min(warm_size, len(pool), warm - k * warm_size)), rng)
        warm_worlds.append((facts, write_corpus(facts, out_dir / f"warm{k}" / "corpus.jsonl")))
    return World(world[:rl], world[rl:], write_corpus(world, out_dir / "corpus.jsonl"), warm_worlds)
