"""State digests compare exactly as BFCL's ``_compare_instances`` (``!=`` on every public attribute), and
the executor's process-wide side effects stay contained."""

from __future__ import annotations

import decimal
import itertools
from concurrent.futures import ThreadPoolExecutor

import mpmath
import pytest

from rlfactory_env_bfcl import backend
from rlfactory_env_bfcl.episode import Entry, Episode
from rlfactory_env_bfcl.state import digests, encode

VALUES = [
    0, 1, 1.0, True, False, 0.0, 2.5, "1", "", None, [], (), [1], (1,), [1.0], {1}, {1.0}, set(), {},
    {"a": 1}, {"a": 1.0}, {"a": True}, {1: "x"}, {1.0: "x"}, {"b": [1, 2]}, {"b": [2, 1]}, [[1], {"k": (1,)}],
    frozenset({1, 2}), {2, 1},
]


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations_with_replacement(VALUES, 2)))
def test_encodings_are_equal_exactly_when_the_values_are(a, b):
    assert (encode(a) == encode(b)) == (a == b), (a, b)


def file_system(entry_id: str = "multi_turn_base_1") -> Episode:
    entry = next(e for e in backend.load_entries("multi_turn_base") if e["id"] == entry_id)
    return Episode(Entry.model_validate(entry), "state-test")


def test_file_system_digests_follow_file_and_directory_equality():
    one, two = file_system(), file_system()
    try:
        assert digests(backend.execute([], one.entry.executor_view(), one.key)[1]) == digests(
            backend.execute([], two.entry.executor_view(), two.key)[1])
        one.execute("touch(file_name='new.txt')")
        after = digests(backend.execute([], one.entry.executor_view(), one.key)[1])
        before = digests(backend.execute([], two.entry.executor_view(), two.key)[1])
        assert after["GorillaFileSystem"]["root"] != before["GorillaFileSystem"]["root"]
        two.execute("touch(file_name='new.txt')")
        two.execute("ls()")  # read-only: the state is unchanged
        assert digests(backend.execute([], two.entry.executor_view(), two.key)[1]) == after
    finally:
        one.purge()
        two.purge()
    assert backend.leftover_instances() == 0


def test_math_api_precision_does_not_leak_out_of_a_call():
    mpmath.mp.dps, decimal.getcontext().prec = 15, 28
    entry = Entry(id="multi_turn_base_0", question=[], involved_classes=["MathAPI"])
    episode = Episode(entry, "precision")
    try:
        result = episode.execute("square_root(number=2.0, precision=40)")
        assert "1.414213562373095048801688724209698078" in result  # 40 digits: precision was in force
        assert mpmath.mp.dps == 15 and decimal.getcontext().prec == 28
    finally:
        episode.purge()


def test_concurrent_scoring_in_threads_gives_the_sequential_verdicts():
    from rlfactory_env_bfcl.rewards import reference_verdict, verdict

    entries = backend.load_entries("multi_turn_base")[:40]
    records = []
    for e in entries:
        episode = Episode(Entry.model_validate(e), "threads")
        for i, calls in enumerate(e["ground_truth"]):
            for call in calls if i % 2 == 0 else calls[:-1]:  # every other turn is missing a call
                episode.execute(call)
            episode.end_turn(complete=True)
        records.append(episode.record())
        episode.purge()

    def both(i: int) -> tuple[bool, bool]:
        entry = Entry.model_validate(entries[i])
        return (verdict(records[i], entries[i]["ground_truth"], entry).valid,
                reference_verdict(records[i], entries[i]["ground_truth"], entry)["valid"])

    sequential = [both(i) for i in range(len(entries))]
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(both, range(len(entries))))
    assert threaded == sequential and all(ours == theirs for ours, theirs in sequential)
    assert backend.leftover_instances() == 0
