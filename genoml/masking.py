"""Masked-LM corruption: choose positions, then 80% [MASK] / 10% random token / 10% unchanged.

Takes ids `(B, L)` and a special-token mask `(B, L)`; returns corrupted ids `(B, L)` and labels `(B, L)`
(the original id at chosen positions, -100 elsewhere). Special tokens and padding are never chosen.
With `span=k` (overlapping k-mer tokenizers) positions are chosen as contiguous spans of k tokens,
as DNABERT does, and each maximal run of chosen tokens gets one 80/10/10 decision. Guarantee: every
token replaced by [MASK] contains at least one base that no unmasked token covers, so it cannot be
read off its overlapping neighbours (proof in `mask_tokens`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    rate: float = 0.15,
    span: int = 1,
    generator: torch.Generator | None = None,
    random_ids: Sequence[int] | None = None,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids (B, L), special_mask (B, L) bool -> (corrupted ids (B, L), labels (B, L)).

    `rate`: expected fraction of non-special tokens chosen. `span=k`: span centres are drawn with
    probability p = 1 - (1 - rate)^(1/k), so a token is covered by some span with probability `rate`
    away from the ends. Each row with a maskable token gets at least one chosen position.
    `random_ids`: ids used for the 10% random replacement (default: all of range(vocab_size));
    pass the non-special ids so a random replacement is never [CLS] or [PAD].
    `mask_fraction`/`random_fraction`: the 80/10/10 split (evaluation uses 1.0/0.0: every target is
    [MASK], so accuracy measures prediction from context, not copying the visible 10%).

    Why span masking hides every [MASK]ed k-mer: a maximal run of chosen tokens t_a..t_b inside one
    segment has b - a + 1 >= k unless clipped by the segment end; token t_j covers bases j..j+k-1.
    Unchosen neighbours t_{a-1} and t_{b+1} cover bases up to a+k-2 and from b+1, so bases
    a+k-1..b are hidden and every t_j (a <= j <= b) contains one of them; a run clipped at a
    segment start (end) hides its first (last) bases, which only tokens of the run cover. The run
    gets one decision, so it is all [MASK], all random, or all unchanged.
    """
    if input_ids.shape != special_mask.shape or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and special_mask {tuple(special_mask.shape)} must be (B, L)"
        )
    if not 0.0 < rate < 1.0 or span < 1:
        raise ValueError(f"rate must be in (0, 1) and span >= 1, got rate={rate}, span={span}")
    if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
        raise ValueError(
            f"mask_fraction {mask_fraction} + random_fraction {random_fraction} must be in [0, 1]"
        )
    maskable = ~special_mask.bool()  # (B, L)
    chosen = _choose(maskable, rate, span, generator)  # (B, L)
    decision = torch.rand(input_ids.shape, generator=generator)  # (B, L)
    if span > 1:
        decision = _per_run(chosen, decision)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    pool = torch.as_tensor(
        list(random_ids) if random_ids is not None else range(vocab_size), dtype=input_ids.dtype
    )
    random_tok = pool[torch.randint(len(pool), input_ids.shape, generator=generator)]  # (B, L)
    out = input_ids.clone()
    to_random = (decision >= mask_fraction) & (decision < mask_fraction + random_fraction)
    out = torch.where(chosen & (decision < mask_fraction), torch.full_like(out, mask_id), out)
    out = torch.where(chosen & to_random, random_tok, out)
    return out, labels


def _choose(
    maskable: torch.Tensor, rate: float, span: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(B, L) bool of chosen positions: Bernoulli(rate) tokens, or spans of `span` tokens around centres."""
    B, L = maskable.shape
    p = rate if span == 1 else 1.0 - (1.0 - rate) ** (1.0 / span)
    centres = (torch.rand((B, L), generator=generator) < p) & maskable  # (B, L)
    # a row with nothing chosen still gets one centre, so every row contributes to the loss
    empty = ~centres.any(1) & maskable.any(1)  # (B,)
    if empty.any():
        scores = torch.rand((B, L), generator=generator).masked_fill(~maskable, -1.0)
        forced = torch.zeros_like(centres).scatter_(1, scores.argmax(1, keepdim=True), True)
        centres = centres | (forced & empty.unsqueeze(1))
    if span == 1:
        return centres
    left = (span - 1) // 2  # span covers centre-left .. centre-left+span-1
    grown = torch.zeros_like(centres)
    for shift in range(-left, span - left):
        if shift < 0:
            grown[:, :shift] |= centres[:, -shift:]
        elif shift > 0:
            grown[:, shift:] |= centres[:, :-shift]
        else:
            grown |= centres
    return grown & maskable


def _per_run(chosen: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Give every token of a maximal run of `chosen` the value drawn at the run's first token."""
    prev = torch.zeros_like(chosen)
    prev[:, 1:] = chosen[:, :-1]
    starts = (chosen & ~prev).flatten()  # (B*L,) runs never cross rows: column 0 has no predecessor
    run_index = torch.cumsum(starts.long(), 0) - 1  # (B*L,) index of the run each position belongs to
    run_values = values.flatten()[starts]  # (R,) in row-major order, matching run_index
    if run_values.numel() == 0:
        return values
    spread = run_values[run_index.clamp(min=0)].view_as(values)
    return torch.where(chosen, spread, values)
