"""The demo's tiny model and its supervised warm start (a plain PyTorch loop).

``build_model`` trains the tokenizer on the corpus and the rendered demonstrations
(:func:`rlfactory_plugins.testing.tiny_model.build_tiny_model`) and re-initialises a somewhat
larger random Qwen2 than the default one. ``encode`` lays a demonstration out token by
token exactly as the rollout will: the chat-template prompt, the assistant's call, the
observation wrapped by the parser's own
:class:`~rlfactory_plugins.rollout.observation.ObservationFormat`, and the answer; only
the assistant's tokens carry loss. ``train`` runs a few hundred AdamW steps over them.

Same seed, same weights, bit for bit on one machine: the data, the tokenizer and the initial
weights are deterministic, and ``train`` runs on a fixed number of intra-op threads
(:data:`THREADS`), because float sums are split by thread count and the rounding differences
grow over hundreds of steps (with the default seed phase (a) stopped at step 350 with 1 thread,
367 with 2). ``cache_key`` fingerprints everything the warm-started model depends on, so that a
cached model is reused only when it would come out the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from task import PARSER, Demonstration, prompt_messages
from world import ADJECTIVES, NOUNS, PLACES

#: the model RL starts from: ~1.4M parameters, fast enough for 2 CPU cores
MODEL_SIZE: dict[str, int] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}

#: intra-op threads of ``train``, whatever the machine or OMP_NUM_THREADS says, because the weights
#: depend on it. One: on 2 idle cores two threads are ~1.6x faster (phase (a) ~23 s vs ~37 s), but
#: on cores shared with other work they wait on each other at every barrier: with 2 threads phase
#: (a) took 570 s under other sessions' load and 870 s next to one busy process; one thread next to
#: a busy process runs ~1.5x slower than idle
THREADS = 1


@contextlib.contextmanager
def fixed_threads(n: int | None = None) -> Iterator[None]:
    """Run on ``n`` (default :data:`THREADS`) intra-op threads, then restore the caller's count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS if n is None else n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def cache_key(settings: dict[str, Any], demos: list[Demonstration], corpus: list[str]) -> str:
    """What the warm-started model depends on: the settings, the training data itself (corpus and
    demonstrations with their BM25 observations), the code that builds and trains it, the library
    versions and the thread count. A cached model is reused only under the same key."""
    import tokenizers
    import torch
    import transformers

    from rlfactory_plugins.testing import tiny_model

    h = hashlib.sha256()
    h.update(json.dumps({**settings, "threads": THREADS, "torch": torch.__version__,
                         "transformers": transformers.__version__, "tokenizers": tokenizers.__version__},
                        sort_keys=True).encode())
    for source in (__file__, tiny_model.__file__):
        h.update(Path(source).read_bytes())
    for text in corpus + [d.text() for d in demos]:
        h.update(text.encode() + b"\0")
    return h.hexdigest()[:16]


def build_model(out_dir: Path, demos: list[Demonstration], corpus: list[str], *, vocab_size: int, seed: int) -> Path:
    """Tokenizer trained on corpus + rendered demonstrations; a fresh random model of ``MODEL_SIZE``."""
    import torch
    from transformers import AutoConfig, Qwen2Config, Qwen2ForCausalLM

    from rlfactory_plugins.testing.tiny_model import build_tiny_model

    build_tiny_model(out_dir, vocab_size=vocab_size, seed=seed, corpus=corpus + [d.text() for d in demos])
    _check_single_tokens(out_dir)
    base = AutoConfig.from_pretrained(out_dir).to_dict()
    for derived in ("layer_types", "head_dim", "max_window_layers"):  # recomputed from the new sizes
        base.pop(derived, None)
    config = Qwen2Config(**{**base, **MODEL_SIZE})
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _check_single_tokens(model_dir: Path) -> None:
    """Answers and name words must be whole tokens: copying single tokens from a fixed place is what
    a tiny model learns in minutes."""
    from transformers import AutoTokenizer

    from rlfactory_plugins.errors import ConfigError

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    words = PLACES + ADJECTIVES + NOUNS
    split = {w: tokenizer.tokenize(" " + w) for w in words if len(tokenizer.tokenize(" " + w)) != 1}
    if split:
        raise ConfigError(f"answers split into several tokens by the demo tokenizer: {split}; "
                          "raise --vocab-size or use other words in world.py")


@dataclass
class Example:
    ids: list[int]
    targets: list[int]  # the token position t must predict, -100 = no loss (prompt and observation)


def encode(tokenizer: Any, obs_format: Any, demo: Demonstration) -> Example:
    """Tokens as the rollout lays them out; loss on the assistant's tokens.

    The CPU rollout does not stop at the parser's stop strings itself (the rollout cuts
    client-side), so the model is also taught to end its turn with EOS right after
    ``</search>``; the rollout drops that EOS and appends the observation, as here.
    """
    prompt = tokenizer.apply_chat_template(prompt_messages(demo.fact), add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
    answer = tokenizer.encode(demo.answer_text(), add_special_tokens=False) + [tokenizer.eos_token_id]
    if demo.query is None:  # answers without searching
        ids = prompt_ids + answer
        targets = [nxt if i + 1 >= len(prompt_ids) else -100 for i, nxt in enumerate(ids[1:])] + [-100]
        return Example(ids, targets)
    call = tokenizer.encode(demo.call_text(), add_special_tokens=False)
    obs, _ = obs_format.render(tokenizer, call, [demo.observation], max_tokens=512)
    ids = prompt_ids + call + obs + answer
    trained = [False] * len(prompt_ids) + [True] * len(call) + [False] * len(obs) + [True] * len(answer)
    targets = [nxt if train_next else -100 for nxt, train_next in zip(ids[1:], trained[1:])] + [-100]
    targets[len(prompt_ids) + len(call) - 1] = tokenizer.eos_token_id
    return Example(ids, targets)


def encode_all(model_dir: Path, demos: list[Demonstration]) -> list[Example]:
    from transformers import AutoTokenizer

    from rlfactory_plugins.plugins import get_registry

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    obs_format = get_registry().parser(PARSER)().observation_format(tokenizer)
    return [encode(tokenizer, obs_format, d) for d in demos]


def train(
    model_dir: Path, examples: list[Example], *, steps: int, batch_size: int, lr: float, seed: int, log=print,
    stop_loss: float | None = None,
) -> dict[str, float]:
    """AdamW with linear warm-up and cosine decay on the assistant tokens; saves over ``model_dir``.

    With ``stop_loss`` it stops early once the mean loss of the last 50 steps is below it.
    Runs on :data:`THREADS` intra-op threads (the same seed then gives the same weights).
    """
    with fixed_threads():
        return _train(model_dir, examples, steps=steps, batch_size=batch_size, lr=lr, seed=seed, log=log,
                      stop_loss=stop_loss)


def _train(
    model_dir: Path, examples: list[Example], *, steps: int, batch_size: int, lr: float, seed: int, log,
    stop_loss: float | None,
) -> dict[str, float]:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )
    pad = model.config.pad_token_id or 0
    start, loss_value = time.time(), math.nan
    order: list[int] = []
    recent: list[float] = []
    for step in range(1, steps + 1):
        if len(order) < batch_size:
            order += rng.sample(range(len(examples)), len(examples))
        batch = [examples[order.pop()] for _ in range(batch_size)]
        width = max(len(e.ids) for e in batch)
        ids = torch.tensor([e.ids + [pad] * (width - len(e.ids)) for e in batch])
        targets = torch.tensor([e.targets + [-100] * (width - len(e.targets)) for e in batch])
        mask = torch.tensor([[1] * len(e.ids) + [0] * (width - len(e.ids)) for e in batch])
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        recent = (recent + [loss_value])[-50:]
        done = stop_loss is not None and len(recent) == 50 and sum(recent) / 50 < stop_loss
        if step == 1 or step % 50 == 0 or step == steps or done:
            log(f"  warm start step {step:4d}/{steps}  loss {loss_value:.3f}  ({time.time() - start:.0f}s)")
        if done:
            log(f"  warm start: mean loss of the last 50 steps below {stop_loss}, stopping at step {step}")
            break
    model.save_pretrained(model_dir, safe_serialization=True)
    return {"loss": loss_value, "steps": step, "seconds": time.time() - start, "stopped_early": done}
