"""Masked-LM corruption: choose positions, then 80% [MASK] / 10% random token / 10% unchanged.

Takes ids `(B, L)` and a special-token mask `(B, L)`; returns corrupted ids `(B, L)` and labels `(B, L)`
(the original id at chosen positions, -100 elsewhere). Special tokens and padding are never chosen.
With `span=k` (overlapping k-mer tokenizers) positions are chosen as contiguous spans of k tokens,
as DNABERT does, and each maximal run of chosen tokens gets one 80/10/10 decision. Guarantee: every
token replaced by [MASK] contains at least one base that no unmasked token covers, so it cannot be
read off its overlapping neighbours (proof in `mask_tokens`).

All randomness comes from a `MaskNoise` (four uniform (B, L) tensors). `mask_tokens` draws it from a
generator; the pretraining batcher draws it once per step for the whole global micro-batch and hands
each process its rows, so row g of step s is masked the same on 1 or W processes and on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class MaskNoise:
    """Uniform [0, 1) noise, each (B, L): span/token centres, the forced centre of an otherwise empty row,
    the 80/10/10 decision, and the pick of the random replacement token."""

    centre: torch.Tensor
    forced: torch.Tensor
    decision: torch.Tensor
    pick: torch.Tensor

    @classmethod
    def draw(cls, shape: tuple[int, int], generator: torch.Generator | None = None) -> MaskNoise:
        u = torch.rand((4, *shape), generator=generator)  # one call: (4, B, L)
        return cls(u[0], u[1], u[2], u[3])

    def take(self, rows, length: int) -> MaskNoise:
        """The noise of `rows` (index list/tensor), cut to the first `length` columns."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return MaskNoise(*(t[rows, :length] for t in (self.centre, self.forced, self.decision, self.pick)))


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    rate: float = 0.15,
    span: int = 1,
    generator: torch.Generator | None = None,
    random_ids: Sequence[int] | torch.Tensor | None = None,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    noise: MaskNoise | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids (B, L), special_mask (B, L) bool -> (corrupted ids (B, L), labels (B, L)).

    `rate`: expected fraction of non-special tokens chosen. `span=k`: span centres are drawn with
    probability p = 1 - (1 - rate)^(1/k), so a token is covered by some span with probability `rate`
    away from the ends. Each row with a maskable token gets at least one chosen position.
    `random_ids`: ids used for the 10% random replacement (default: all of range(vocab_size));
    pass the non-special ids so a random replacement is never [CLS] or [PAD].
    `mask_fraction`/`random_fraction`: the 80/10/10 split (evaluation uses 1.0/0.0: every target is
    [MASK], so accuracy measures prediction from context, not copying the visible 10%).
    `noise`: the (B, L) uniforms to use (see MaskNoise); drawn from `generator` when not given.
    Everything is batched tensor code: no Python loop over rows or positions.

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
    if noise is None:
        noise = MaskNoise.draw(tuple(input_ids.shape), generator)
    elif noise.centre.shape != input_ids.shape:
        raise ValueError(
            f"noise {tuple(noise.centre.shape)} does not match input_ids {tuple(input_ids.shape)}"
        )
    maskable = ~special_mask.bool()  # (B, L)
    chosen = _choose(maskable, rate, span, noise)  # (B, L)
    decision = noise.decision
    if span > 1:
        decision = _per_run(chosen, decision)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    if random_ids is None:
        pool = torch.arange(vocab_size, dtype=input_ids.dtype)
    else:
        pool = torch.as_tensor(random_ids, dtype=input_ids.dtype)
    pick = (noise.pick * len(pool)).long().clamp_(max=len(pool) - 1)  # (B, L)
    random_tok = pool[pick]  # (B, L)
    to_mask = chosen & (decision < mask_fraction)
    to_random = chosen & (decision >= mask_fraction) & (decision < mask_fraction + random_fraction)
    out = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    out = torch.where(to_random, random_tok, out)
    return out, labels


def _choose(maskable: torch.Tensor, rate: float, span: int, noise: MaskNoise) -> torch.Tensor:
    """(B, L) bool of chosen positions: Bernoulli(rate) tokens, or spans of `span` tokens around centres."""
    B, L = maskable.shape
    p = rate if span == 1 else 1.0 - (1.0 - rate) ** (1.0 / span)
    centres = (noise.centre < p) & maskable  # (B, L)
    # a row with nothing chosen still gets one centre, so every row contributes to the loss
    empty = ~centres.any(1) & maskable.any(1)  # (B,)
    scores = noise.forced.masked_fill(~maskable, -1.0)
    forced = torch.zeros_like(centres).scatter_(1, scores.argmax(1, keepdim=True), True)
    centres = centres | (forced & empty.unsqueeze(1))
    if span == 1:
        return centres
    return grow_spans(centres, span) & maskable


def grow_spans(centres: torch.Tensor, span: int) -> torch.Tensor:
    """(B, L) bool centres -> (B, L) bool: a centre c covers c-left .. c-left+span-1, left = (span-1)//2.
    Position i is covered when a centre lies in [i+left-span+1, i+left]: one cumulative sum per row."""
    B, L = centres.shape
    left = (span - 1) // 2
    csum = torch.zeros((B, L + 1), dtype=torch.int32)
    csum[:, 1:] = torch.cumsum(centres.to(torch.int32), 1)  # csum[:, j] = centres before column j
    pos = torch.arange(L)
    hi = (pos + left + 1).clamp(max=L)
    lo = (pos + left - span + 1).clamp(min=0, max=L)
    return (csum[:, hi] - csum[:, lo]) > 0


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
