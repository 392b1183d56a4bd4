"""Group normalisation, the step every GRPO-style estimator shares.

``(x - mean_g) / (std_g + epsilon)`` over the values of each group ``g`` (``x - mean_g`` when
``by_std`` is off, Dr. GRPO), with torch's unbiased std as verl's ``grpo`` uses. A group of one
value has no baseline: verl's ``grpo`` keeps it as is (mean 0, std 1), which is ``single="keep"``;
``single="zero"`` gives it no signal instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Literal

import torch

from rlfactory_plugins.errors import RLFactoryError


class AdvantageError(RLFactoryError):
    """An advantage estimator got inputs that do not fit together (shapes, groups, branch links)."""


def group_normalise(
    values: torch.Tensor, groups: Sequence[Hashable], epsilon: float, by_std: bool = True,
    single: Literal["keep", "zero"] = "keep",
) -> torch.Tensor:
    """``values`` (1-D) normalised within the groups named by ``groups`` (one name per value)."""
    if len(groups) != values.shape[0]:
        raise AdvantageError(f"{values.shape[0]} values but {len(groups)} group names: pass one group per sample")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = torch.zeros_like(values)
    for rows in members.values():
        idx = torch.tensor(rows, dtype=torch.long, device=values.device)
        x = values[idx]
        if len(rows) == 1:
            mean, std = torch.zeros((), dtype=x.dtype), torch.ones((), dtype=x.dtype)
            if single == "zero":
                continue
        else:
            mean, std = x.mean(), x.std()
        out[idx] = (x - mean) / (std + epsilon) if by_std else x - mean
    return out
