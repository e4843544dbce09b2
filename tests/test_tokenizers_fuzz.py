"""Property tests: every tokenizer encodes any text without raising, with in-range, ordered, covering offsets."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genoml.tokenizers import build_tokenizer, load_tokenizer, one_hot

SAPIENS = Path(__file__).resolve().parents[2] / "shared" / "models" / "sapiens-vh"
SPECS = ["kmer:3", "kmer:6", "nt-kmer:6", "nt-kmer:3", "char", "esm", "protbert"]
DNA = st.text(alphabet="ACGTN", max_size=300)
PROTEIN = st.text(alphabet="ACDEFGHIKLMNPQRSTVWYXBZUO", max_size=120)
ANY = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
TEXT = st.one_of(DNA, PROTEIN, ANY, st.text(alphabet="acgtnACGTN-*. ", max_size=50))
FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def tokenizer(spec: str):
    return load_tokenizer(SAPIENS) if spec == "hf" else build_tokenizer(spec)


def check_encoding(enc, seq: str, full: bool) -> None:
    assert len(enc.ids) == len(enc.offsets) == len(enc.special_mask)
    content = [span for span, special in zip(enc.offsets, enc.special_mask) if not special]
    assert all(span == (0, 0) for span, special in zip(enc.offsets, enc.special_mask) if special)
    assert all(0 <= start <= end <= len(seq) for start, end in content)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(content))  # non-decreasing
    reach = 0
    for start, end in content:  # no gaps between consecutive tokens
        assert start <= reach
        reach = max(reach, end)
    if full and seq:
        assert content[0][0] == 0 and reach == len(seq)  # every base is covered


@FUZZ
@given(
    spec=st.sampled_from([*SPECS, "hf"] if SAPIENS.is_dir() else SPECS),
    seq=TEXT,
    max_tokens=st.integers(3, 40),
)
def test_encode_never_raises_and_offsets_cover(spec, seq, max_tokens):
    tok = tokenizer(spec)
    full = tok.encode(seq)
    check_encoding(full, seq, full=True)
    assert all(0 <= i < len(tok) for i in full.ids)
    cut = tok.encode(seq, max_tokens=max_tokens)
    check_encoding(cut, seq, full=False)
    assert len(cut.ids) <= max_tokens
    n = len(cut.ids) - tok.n_suffix  # the truncated encoding is a prefix of the full one, then specials
    assert cut.ids[:n] == full.ids[:n] and cut.offsets[:n] == full.offsets[:n]
    if len(full.ids) <= max_tokens:
        assert cut == full


@FUZZ
@given(spec=st.sampled_from(SPECS), seq=DNA | PROTEIN, max_tokens=st.integers(3, 200))
def test_max_bases_fit_in_max_tokens(spec, seq, max_tokens):
    tok = tokenizer(spec)
    window = seq[: tok.max_bases(max_tokens)]
    enc = tok.encode(window)
    if spec.startswith("nt-kmer"):
        # an upper bound only: N, other letters and a tail shorter than k become single-base tokens
        if set(window) <= set("ACGT") and len(window) == tok.max_bases(max_tokens):
            assert len(enc.ids) == max_tokens
        assert len(tok.encode(window, max_tokens=max_tokens).ids) <= max_tokens
    else:
        assert len(enc.ids) <= max_tokens
        if len(window) == tok.max_bases(max_tokens):  # a full window fills max_tokens exactly
            assert len(enc.ids) == max_tokens


@FUZZ
@given(seq=st.text(alphabet="ACGTN", min_size=100, max_size=700))
def test_kmer_long_and_short_paths_agree(seq):
    tok = tokenizer("kmer:6")
    get = tok.token_to_id.get
    expected = [get(seq[i : i + 6], tok.unk_id) for i in range(len(seq) - 5)]
    assert tok.encode(seq).ids[1:-1] == expected


@pytest.mark.skipif(not SAPIENS.is_dir(), reason="../shared/models/sapiens-vh is absent")
@FUZZ
@given(seqs=st.lists(PROTEIN, max_size=5), max_tokens=st.none() | st.integers(3, 30))
def test_hf_encode_batch_equals_encode(seqs, max_tokens):
    tok = tokenizer("hf")
    assert tok.encode_batch(seqs, max_tokens) == [tok.encode(s, max_tokens) for s in seqs]


@FUZZ
@given(seq=TEXT)
def test_one_hot_rows_sum_to_one(seq):
    x = one_hot(seq)
    assert x.shape == (len(seq), 4) and x.dtype == np.float32
    np.testing.assert_allclose(x.sum(axis=1), 1.0)
