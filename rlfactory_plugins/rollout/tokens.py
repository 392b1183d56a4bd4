"""The response token stream of one trajectory: ids, loss mask and logprobs kept aligned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rlfactory_plugins.errors import RLFactoryError


class RolloutError(RLFactoryError):
    """Something went wrong inside one trajectory's rollout (it ends with stop_reason=error)."""


@dataclass
class ResponseTokens:
    """Assistant tokens exactly as generated (mask 1) and observation tokens (mask 0); ``images`` are the
    observations' images (vision-language models), in the order of their tokens."""

    want_logprobs: bool
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def add_generated(self, ids: list[int], logprobs: list[float] | None) -> None:
        if self.want_logprobs:
            if logprobs is None or len(logprobs) != len(ids):
                got = "none" if logprobs is None else len(logprobs)
                raise RolloutError(f"the server returned {got} logprobs for {len(ids)} tokens although logprobs=True")
            self.logprobs += [float(x) for x in logprobs]
        self.ids += ids
        self.mask += [1] * len(ids)

    def add_observation(self, ids: list[int], images: list[Any] | None = None) -> None:
        self.images += images or []
        self.ids += ids
        self.mask += [0] * len(ids)
        if self.want_logprobs:
            self.logprobs += [0.0] * len(ids)

    def observation_spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` spans of mask-0 tokens."""
        spans, start = [], None
        for i, m in enumerate([*self.mask, 1]):
            if m == 0 and start is None:
                start = i
            elif m == 1 and start is not None:
                spans.append((start, i))
                start = None
        return spans
