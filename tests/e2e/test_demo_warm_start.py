"""``make demo``'s warm start is deterministic: same seed, same weights, whatever the caller's thread
count; the cached model is keyed on everything it depends on."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples/quickstart"

# One process per run (the caller's thread count set before the warm start): the weights' digest,
# then the cache key.
RUN = f"""
import hashlib, sys
sys.path.insert(0, {str(QUICKSTART)!r})
import torch
torch.set_num_threads(int(sys.argv[2]))
from pathlib import Path
import task, warm_start, world
out = Path(sys.argv[1])
w = world.build(out / "world", 0, warm=150, warm_size=150)
demos = task.demonstrations(w.warm)
mixed = task.with_guesses(demos, 0.2, 0)
warm_start.build_model(out / "model", demos + mixed, w.texts(), vocab_size=1024, seed=0)
warm_start.train(out / "model", warm_start.encode_all(out / "model", demos), steps=12, batch_size=8, lr=3e-3,
                 seed=0, log=lambda _: None)
assert torch.get_num_threads() == int(sys.argv[2])  # restored
print(hashlib.sha256((out / "model" / "model.safetensors").read_bytes()).hexdigest())
print(warm_start.cache_key({{"seed": 0}}, demos + mixed, w.texts()))
"""


def _run(out: Path, threads: int) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", RUN, str(out), str(threads)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()[-2:]


@pytest.mark.timeout(300)
def test_same_seed_same_weights_whatever_the_thread_count(tmp_path):
    one = _run(tmp_path / "a", 1)
    two = _run(tmp_path / "b", 2)
    assert one == two  # weights bit for bit, and the cache key (separate processes: hash seeds differ)


def test_cache_key_changes_with_settings_and_data():
    sys.path.insert(0, str(QUICKSTART))
    try:
        import task
        import warm_start
        from world import Fact
    finally:
        sys.path.remove(str(QUICKSTART))
    fact = Fact("warm0-0000", "Red Fox", "ship", "Lima")
    demos = [task.Demonstration(fact, fact.name, fact.contents, fact.answer)]
    key = warm_start.cache_key({"sft_mix_steps": 300}, demos, [fact.contents])
    assert key == warm_start.cache_key({"sft_mix_steps": 300}, demos, [fact.contents])
    assert key != warm_start.cache_key({"sft_mix_steps": 150}, demos, [fact.contents])
    other = [task.Demonstration(fact, fact.name, fact.contents, "Rome")]
    assert key != warm_start.cache_key({"sft_mix_steps": 300}, other, [fact.contents])
    assert key != warm_start.cache_key({"sft_mix_steps": 300}, demos, [fact.contents + "!"])
