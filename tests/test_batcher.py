"""The pretraining input pipeline: array tokenization, batched masking noise, prefetching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genoml.config import PretrainConfig
from genoml.corpus import Corpus, build_corpus_cache
from genoml.masking import grow_spans
from genoml.mlm_batches import ArrayEncoder, MaskedBatcher, Prefetcher
from genoml.tokenizers import build_tokenizer


@pytest.mark.parametrize("spec", ["char", "kmer:3", "kmer:6", "esm", "protbert", "nt-kmer:6"])
def test_array_encoder_matches_encode(spec):
    tok = build_tokenizer(spec)
    rng = np.random.default_rng(0)
    letters = "ACGTN" if tok.alphabet == "dna" else "ACDEFGHIKLMNPQRSTVWYXBZUO"
    rows = []
    for n in [0, 1, 2, 5, 7, 40, 63, 64, 65, 90]:
        seq = "".join(rng.choice(list(letters + letters.lower()), size=n))
        rows.append(seq)
    rows.append("ACGT" * 20)
    for max_tokens in (12, 66):
        enc = ArrayEncoder.for_tokenizer(tok)
        ids, special, lengths = enc.encode([np.frombuffer(s.encode(), np.uint8) for s in rows], max_tokens)
        for r, seq in enumerate(rows):
            want = tok.encode(seq, max_tokens)
            n = int(lengths[r])
            assert ids[r, :n].tolist() == want.ids, (spec, seq, max_tokens)
            assert special[r, :n].tolist() == want.special_mask
            assert (ids[r, n:] == tok.pad_id).all() and special[r, n:].all()


def test_vectorised_span_growth_matches_the_loop():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand((6, 50), generator=g) < 0.1
    for span in range(1, 7):
        left = (span - 1) // 2
        ref = torch.zeros_like(centres)
        for shift in range(-left, span - left):
            if shift < 0:
                ref[:, :shift] |= centres[:, -shift:]
            elif shift > 0:
                ref[:, shift:] |= centres[:, :-shift]
            else:
                ref |= centres
        assert torch.equal(grow_spans(centres, span), ref)


@pytest.fixture
def batcher(tmp_path):
    rng = np.random.default_rng(1)
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 3000))}\n" for i in range(3)))
    data, index = build_corpus_cache([Path(fa)], "dna", tmp_path / "cache")
    corpus = Corpus(data, index, window=48, eval_fraction=0.2)

    def make(spec="char", **kw):
        tok = build_tokenizer(spec)
        cfg = PretrainConfig(inputs=[str(fa)], batch_size=8, window=48, seed=3, **kw)
        from genoml.pretrain_model import tokens_for_window

        return MaskedBatcher(corpus, tok, tokens_for_window(tok, 48), cfg, None)

    return make


@pytest.mark.parametrize("spec", ["char", "kmer:4"])
def test_a_row_depends_only_on_seed_step_and_row(batcher, spec):
    b = batcher(spec)
    one = b.train_batch(5, 0, 1)
    again = b.train_batch(5, 0, 1)
    assert all(torch.equal(one[k], again[k]) for k in one)
    for world in (2, 4):
        for rank in range(world):
            part = b.train_batch(5, rank, world)
            for k in one:
                assert torch.equal(part[k], one[k][rank::world]), (world, rank, k)
    other = b.train_batch(6, 0, 1)
    assert not torch.equal(one["labels"], other["labels"])
    chosen = one["labels"] != -100
    assert chosen.any(1).all()  # every row has a target
    assert (one["input_ids"][chosen] == b.tok.mask_id).float().mean() > 0.5


def test_grad_accum_micro_batches_split_the_step(batcher):
    b = batcher(grad_accum=2)
    assert b.train_batch(2, 0, 1)["input_ids"].shape[0] == 4
    a, c = b.train_batch(2, 0, 1), b.train_batch(3, 0, 1)
    assert not torch.equal(a["input_ids"], c["input_ids"])


@pytest.mark.parametrize("workers", [1, 3])
def test_prefetcher_gives_the_same_batches_restarts_on_a_jump_and_reraises(batcher, workers):
    b = batcher()
    pf = Prefetcher(b.train_batch, depth=2, limit=20, workers=workers)
    try:
        for micro in [0, 1, 2, 3, 10, 11, 4]:
            got, want = pf(micro, 0, 1), b.train_batch(micro, 0, 1)
            assert all(torch.equal(got[k], want[k]) for k in want)
    finally:
        pf.close()

    def failing(micro, rank, world):
        if micro == 2:
            raise KeyboardInterrupt("simulated kill")
        return {"x": torch.tensor([micro])}

    pf = Prefetcher(failing, depth=3, limit=10, workers=workers)
    assert int(pf(0, 0, 1)["x"]) == 0 and int(pf(1, 0, 1)["x"]) == 1
    with pytest.raises(KeyboardInterrupt):
        pf(2, 0, 1)
    pf.close()


def test_sample_batch_draws_training_windows_row_by_row(tmp_path):
    from genoml.io import reverse_complement

    seqs = ["".join(np.random.default_rng(i).choice(list("ACGT"), 2000)) for i in range(2)]
    seqs.append("N" * 1500 + "ACGT" * 50)  # mostly N: windows there are redrawn
    fa = tmp_path / "g.fa"
    fa.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    data, index = build_corpus_cache([Path(fa)], "dna", tmp_path / "cache")
    corpus = Corpus(data, index, window=64, eval_fraction=0.1)
    rng = lambda: np.random.default_rng([1, 2, 3])  # noqa: E731
    full = corpus.sample_batch(rng(), 200)
    part = corpus.sample_batch(rng(), 200, take=[5, 17, 199])
    assert np.array_equal(part.letters, full.letters[[5, 17, 199]][:, : part.letters.shape[1]])
    assert full.minus.any() and (~full.minus).any()
    for i in range(200):
        text = full.letters[i, : full.length[i]].tobytes().decode()
        rec, start = int(full.record[i]), int(full.start[i])
        fwd = seqs[rec][start : start + full.length[i]]
        assert text == (reverse_complement(fwd) if full.minus[i] else fwd)
        assert start + full.length[i] <= len(seqs[rec]) - int(len(seqs[rec]) * 0.1)  # never the held-out tail
        assert text.count("N") <= 32
    held = corpus.sample_batch(rng(), 50, heldout=True)
    assert all(
        int(s) >= len(seqs[int(r)]) - int(len(seqs[int(r)]) * 0.1) for r, s in zip(held.record, held.start)
    )
