"""MLM masking: specials never masked, rate respected, 80/10/10, and span masking hides overlapping k-mers."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genoml.masking import mask_tokens

MASK, VOCAB = 4, 70
PLAIN = list(range(5, VOCAB))  # ids 0..4 are specials


def batch(rows: int, length: int, seed: int = 0, pad_from: list[int] | None = None):
    """Rows of `[CLS] tokens.. [SEP] [PAD]..`; pad_from[i] = index of the row's [SEP]."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (rows, length), generator=g)
    special = torch.zeros(rows, length, dtype=torch.bool)
    ids[:, 0], special[:, 0] = 2, True
    for r, end in enumerate(pad_from or [length - 1] * rows):
        ids[r, end], ids[r, end + 1 :] = 3, 0
        special[r, end:] = True
    return ids, special


def hidden_base_exists(row_ids: torch.Tensor, row_special: torch.Tensor, i: int, k: int) -> bool:
    """Token i covers bases i..i+k-1 (token j covers j..j+k-1, same segment). True if one of them is
    covered only by [MASK] tokens, i.e. cannot be read off any other token of the segment."""
    L = len(row_ids)
    for b in range(i, i + k):
        covering = [j for j in range(b - k + 1, b + 1) if 0 <= j < L and not row_special[j]]
        if all(row_ids[j] == MASK for j in covering):
            return True
    return False


@pytest.mark.parametrize("k", [3, 6])
def test_span_masking_never_leaves_a_masked_kmer_recoverable(k):
    ids, special = batch(64, 90, seed=k, pad_from=[60 + (r % 29) for r in range(64)])
    g = torch.Generator().manual_seed(1)
    out, labels = mask_tokens(
        ids, special, mask_id=MASK, vocab_size=VOCAB, rate=0.15, span=k, generator=g, random_ids=PLAIN
    )
    masked = 0
    for r in range(ids.shape[0]):
        for i in torch.nonzero(out[r] == MASK).flatten().tolist():
            masked += 1
            assert hidden_base_exists(out[r], special[r], i, k), (r, i)
    assert masked > 500


def test_per_token_masking_would_leak_which_span_masking_prevents():
    """The check above is not vacuous: plain per-token masking of 6-mers leaves recoverable tokens."""
    ids, special = batch(32, 90)
    out, _ = mask_tokens(
        ids,
        special,
        mask_id=MASK,
        vocab_size=VOCAB,
        rate=0.15,
        span=1,
        generator=torch.Generator().manual_seed(0),
        random_ids=PLAIN,
    )
    leaks = sum(
        not hidden_base_exists(out[r], special[r], i, 6)
        for r in range(32)
        for i in torch.nonzero(out[r] == MASK).flatten().tolist()
    )
    assert leaks > 0


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 6),
    length=st.integers(3, 40),
    rows=st.integers(1, 4),
    seed=st.integers(0, 2**31),
    rate=st.floats(0.05, 0.5),
)
def test_masking_properties(k, length, rows, seed, rate):
    ids, special = batch(
        rows, length, seed=seed, pad_from=[max(1, length - 1 - (seed + r) % length) for r in range(rows)]
    )
    g = torch.Generator().manual_seed(seed)
    out, labels = mask_tokens(
        ids, special, mask_id=MASK, vocab_size=VOCAB, rate=rate, span=k, generator=g, random_ids=PLAIN
    )
    chosen = labels != -100
    assert not (chosen & special).any()  # specials and padding never chosen
    assert torch.equal(out[special], ids[special])  # ... nor changed
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(out[~chosen], ids[~chosen])  # only chosen positions change
    changed = out[chosen]
    assert ((changed == MASK) | (changed >= 5)).all()  # random replacements are never specials
    maskable_rows = (~special).any(1)
    assert (chosen.any(1) == maskable_rows).all()  # every row with a maskable token has a target
    if k > 1:
        for r in range(rows):
            for i in torch.nonzero(out[r] == MASK).flatten().tolist():
                assert hidden_base_exists(out[r], special[r], i, k)


@pytest.mark.parametrize("span", [1, 6])
def test_rate_and_80_10_10_are_respected(span):
    ids, special = batch(200, 200, seed=3)
    out, labels = mask_tokens(
        ids,
        special,
        mask_id=MASK,
        vocab_size=VOCAB,
        rate=0.15,
        span=span,
        generator=torch.Generator().manual_seed(7),
        random_ids=PLAIN,
    )
    chosen = labels != -100
    rate = chosen.sum().item() / (~special).sum().item()
    assert 0.13 < rate < 0.17
    n = chosen.sum().item()
    as_mask = (out[chosen] == MASK).sum().item() / n
    unchanged = (out[chosen] == ids[chosen]).sum().item() / n
    tol = 0.02 if span == 1 else 0.05  # span=6 decides per run: fewer independent draws
    assert abs(as_mask - 0.8) < tol
    assert abs(unchanged - (0.1 + 0.1 / len(PLAIN))) < tol


def test_span_runs_get_one_decision():
    ids, special = batch(100, 120, seed=5)
    out, labels = mask_tokens(
        ids,
        special,
        mask_id=MASK,
        vocab_size=VOCAB,
        rate=0.15,
        span=6,
        generator=torch.Generator().manual_seed(2),
        random_ids=PLAIN,
    )
    chosen = labels != -100
    for r in range(100):
        run: list[int] = []
        for i in range(121):
            if i < 120 and chosen[r, i]:
                run.append(i)
            elif run:
                kinds = {
                    "mask" if out[r, j] == MASK else "same" if out[r, j] == ids[r, j] else "random"
                    for j in run
                }
                assert kinds == {"mask"} or "mask" not in kinds, (r, run, kinds)
                run = []


def test_same_generator_seed_same_masks_and_bad_arguments():
    ids, special = batch(4, 30)
    a = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, generator=torch.Generator().manual_seed(1))
    b = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="rate"):
        mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, rate=1.5)


def test_mask_only_corruption_for_evaluation():
    ids, special = batch(8, 60)
    out, labels = mask_tokens(
        ids,
        special,
        mask_id=MASK,
        vocab_size=VOCAB,
        span=3,
        mask_fraction=1.0,
        random_fraction=0.0,
        generator=torch.Generator().manual_seed(4),
    )
    chosen = labels != -100
    assert chosen.any() and (out[chosen] == MASK).all() and torch.equal(out[~chosen], ids[~chosen])
