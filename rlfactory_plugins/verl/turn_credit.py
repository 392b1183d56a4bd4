"""Turn-level credit: the math of the ``rlfactory_turn_grpo`` advantage estimator.

A trajectory's response is its assistant turns (``response_mask`` 1) separated by observations
(``response_mask`` 0), so turn ``k`` of sample ``i`` is the ``k``-th maximal run of ones. The
rewards arrive as verl's ``token_level_rewards`` in the layout :mod:`.turn_rewards` writes: the
reward of each turn but the last on that turn's last token, the rest of the total on the last
response token, so that a row sums to the composite total (verl's own scalar). Read back:

- outcome ``R_i = sum_t token_level_rewards[i, t]`` (the total every other estimator trains on);
- turn reward ``r_i^k = sum of token_level_rewards[i, t]`` over turn ``k``'s tokens, ``k < K_i``
  (the last turn's credit is the outcome, as in MT-GRPO).

With ``g`` the group (verl's ``uid``) and ``T_g`` every turn reward ``r_j^k`` of the group:

    A_O(i)   = (R_i - mean_g R) / (std_g R + eps)                      verl's grpo, unchanged
    z(i, k)  = (r_i^k - mean(T_g)) / (std(T_g) + eps)                  0 when |T_g| < 2
    A(i, t)  = A_O(i) + turn_weight * sum_{j = k .. K_i - 1} z(i, j)    for t in turn k; 0 on observations

The turn part is DeepSeekMath's process-supervision GRPO (arXiv 2402.03300, sec. 4.1.3: every step
reward of the group normalised together, a token's advantage the sum of the normalised rewards of
its step and the steps after it); adding the outcome advantage to every turn follows MT-GRPO
(arXiv 2505.11821). Without the std (``norm_adv_by_std_in_grpo=False``) both are mean-centred only.
Given verl's plain layout (the scalar on the last token) every ``r`` is 0, so ``z = 0`` and this
is exactly verl's ``grpo``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

from rlfactory_plugins.verl.group_norm import AdvantageError, group_normalise


def turn_index(response_mask: torch.Tensor) -> torch.Tensor:
    """Per token: ``k`` (1-based) of the turn it belongs to, 0 on observations and padding."""
    on = response_mask.bool()
    before = torch.zeros_like(on)
    before[:, 1:] = on[:, :-1]
    starts = on & ~before
    return torch.cumsum(starts.long(), dim=1) * on.long()


def turn_sums(token_level_rewards: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """``(bs, K_max + 1)``: column ``k`` the sum of the rewards on turn ``k``'s tokens (column 0: off-turn tokens)."""
    width = int(turns.max().item()) + 1 if turns.numel() else 1
    sums = torch.zeros(turns.shape[0], width, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
    return sums.scatter_add_(1, turns, token_level_rewards)


def turn_grpo_advantages(
    token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Sequence[Hashable], *,
    turn_weight: float = 1.0, epsilon: float = 1e-6, by_std: bool = True,
) -> torch.Tensor:
    """``A(i, t)`` of the module docstring, shape ``(bs, response_length)``."""
    if token_level_rewards.shape != response_mask.shape:
        raise AdvantageError(
            f"token_level_rewards {tuple(token_level_rewards.shape)} and response_mask "
            f"{tuple(response_mask.shape)} differ in shape: both are (batch, response_length)"
        )
    rewards = token_level_rewards.float()
    turns = turn_index(response_mask)
    outcome = group_normalise(rewards.sum(dim=-1), index, epsilon, by_std)

    sums = turn_sums(rewards, turns)
    last = turns.max(dim=1).values  # K_i
    k = torch.arange(sums.shape[1], device=sums.device).unsqueeze(0)
    scored = (k >= 1) & (k < last.unsqueeze(1))  # every turn but the last carries a turn reward
    rows, cols = scored.nonzero(as_tuple=True)
    z = torch.zeros_like(sums)
    if rows.numel():
        groups = [index[int(i)] for i in rows]
        z[rows, cols] = group_normalise(sums[rows, cols], groups, epsilon, by_std, single="zero")
    to_go = torch.flip(torch.cumsum(torch.flip(z, dims=[1]), dim=1), dims=[1])  # sum over j >= k
    advantages = outcome.unsqueeze(1) + turn_weight * torch.gather(to_go, 1, turns)
    return advantages * response_mask.to(advantages.dtype)
