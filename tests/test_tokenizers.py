"""Tokenizers: exact ids by hand, offsets, N handling, save/load round trips, AutoTokenizer compatibility."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from genoml.errors import InputError
from genoml.tokenizers import (
    HFTokenizer,
    build_tokenizer,
    load_tokenizer,
    one_hot,
    spec_for_vocab,
)

SAPIENS = Path(__file__).resolve().parents[2] / "shared" / "models" / "sapiens-vh"
needs_sapiens = pytest.mark.skipif(not SAPIENS.is_dir(), reason="../shared/models/sapiens-vh is absent")
ALL_SPECS = ["kmer:3", "kmer:4", "kmer:5", "kmer:6", "nt-kmer:6", "char", "esm", "protbert"]
PROTEIN = "ACDEFGHIKLMNPQRSTVWY"


def random_seq(rng: random.Random, alphabet: str, low: int = 0, high: int = 60) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


# ---------------------------------------------------------------- kmer (DNABERT)
def test_kmer3_acgta_ids_by_hand():
    # product("ATCG") order, 5 specials first: ACG = 5 + (0*16 + 2*4 + 3) = 16,
    # CGT = 5 + (2*16 + 3*4 + 1) = 50, GTA = 5 + (3*16 + 1*4 + 0) = 57
    tok = build_tokenizer("kmer:3")
    enc = tok.encode("ACGTA")
    assert enc.ids == [2, 16, 50, 57, 3]
    assert tok.tokens(enc.ids) == ["[CLS]", "ACG", "CGT", "GTA", "[SEP]"]
    assert enc.offsets == [(0, 0), (0, 3), (1, 4), (2, 5), (0, 0)]
    assert enc.special_mask == [True, False, False, False, True]


def test_kmer6_vocab_matches_dnabert_file_head_and_size():
    tok = build_tokenizer("kmer:6")
    # first lines of DNABERT's bert-config-6/vocab.txt
    assert tok.vocab[:12] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "AAAAAA",
        "AAAAAT",
        "AAAAAC",
        "AAAAAG",
        "AAAATA",
        "AAAATT",
        "AAAATC",
    ]
    assert tok.vocab[-1] == "GGGGGG" and len(tok) == 5 + 4096
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.eos_id, tok.mask_id) == (0, 1, 2, 3, 4)
    assert tok.special_ids == {0, 1, 2, 3, 4}


def test_kmer6_offsets_cover_i_to_i_plus_6():
    enc = build_tokenizer("kmer:6").encode("AAAAAATTC")
    # AAAAAA=5, AAAAAT=6, AAAATT=10, AAATTC=5+(1*16+1*4+2)=27
    assert enc.ids == [2, 5, 6, 10, 27, 3]
    assert enc.offsets[1:-1] == [(i, i + 6) for i in range(4)]


def test_kmer_n_makes_unk_and_short_sequences():
    tok = build_tokenizer("kmer:3")
    assert tok.encode("ACGTN").ids == [2, 16, 50, 1, 3]
    assert tok.encode("ACNGT").ids == [2, 1, 1, 1, 3]
    assert tok.encode("acgta").ids == [2, 16, 50, 57, 3]  # case-insensitive
    short = tok.encode("AC")  # shorter than k: one [UNK] covering the whole sequence
    assert short.ids == [2, 1, 3] and short.offsets == [(0, 0), (0, 2), (0, 0)]
    assert tok.encode("").ids == [2, 3]


def test_kmer_long_path_matches_dict_lookup():
    rng = random.Random(3)
    vocab = ["".join(p) for p in itertools.product("ATCG", repeat=6)]
    index = {kmer: 5 + i for i, kmer in enumerate(vocab)}
    tok = build_tokenizer("kmer:6")
    for length in (100, 160, 1000):  # both sides of the dict/numpy switch
        seq = random_seq(rng, "ACGTN" + "ACGT" * 5 + "é", length, length)
        expected = [2] + [index.get(seq[i : i + 6], 1) for i in range(length - 5)] + [3]
        assert tok.encode(seq).ids == expected


def test_kmer_truncation_and_max_bases():
    tok = build_tokenizer("kmer:6")
    assert tok.max_bases(512) == 515
    seq = "ACGT" * 200
    fits = tok.encode(seq[:515], max_tokens=512)
    assert len(fits.ids) == 512 and fits.offsets[-2] == (509, 515)
    cut = tok.encode(seq, max_tokens=10)
    assert len(cut.ids) == 10 and cut.ids[-1] == 3 and cut.offsets[-2] == (7, 13)
    assert cut.ids[:-1] == tok.encode(seq).ids[:9]
    with pytest.raises(InputError, match="max_tokens=2"):
        tok.encode(seq, max_tokens=2)


# ---------------------------------------------------------------- nt-kmer (Nucleotide Transformer)
def test_nt_kmer_vocab_matches_nucleotide_transformer_ids():
    tok = build_tokenizer("nt-kmer:6")
    assert len(tok) == 4107
    assert tok.vocab[:7] == ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", "AAAAAA"]
    assert tok.vocab[4102:] == ["A", "T", "C", "G", "N"]
    assert (tok.unk_id, tok.pad_id, tok.mask_id, tok.cls_id, tok.eos_id) == (0, 1, 2, 3, None)
    assert tok.special_ids == {0, 1, 2, 3, 4, 5}


def test_nt_kmer_ids_and_offsets():
    tok = build_tokenizer("nt-kmer:6")
    assert tok.encode("").ids == [3]  # <cls> only, no <eos>
    assert tok.encode("A").ids == [3, 4102]
    enc = tok.encode("AAAAAAT")  # greedy left to right: AAAAAA + T
    assert enc.ids == [3, 6, 4103] and enc.offsets == [(0, 0), (0, 6), (6, 7)]
    assert tok.encode("TAAAAAA").ids == [3, 6 + 1024, 4102]  # TAAAAA + A
    # split at N first (as NT does): AA | N | AAAAAA A
    enc = tok.encode("AANAAAAAAA")
    assert enc.ids == [3, 4102, 4102, 4106, 6, 4102]
    assert enc.offsets == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 9), (9, 10)]
    assert enc.special_mask == [True] + [False] * 5
    assert tok.encode("ACRT").ids == [3, 4102, 4104, 0, 4103]  # other letters -> <unk>


def test_nt_kmer_truncation_and_max_bases():
    tok = build_tokenizer("nt-kmer:6")
    assert tok.max_bases(512) == 511 * 6
    seq = "A" * 60
    assert tok.encode(seq, max_tokens=3).ids == [3, 6, 6]
    assert len(tok.encode(seq[: tok.max_bases(5)], max_tokens=5).ids) == 5
    assert tok.encode("ANNNNNNNNNNNNN", max_tokens=4).offsets == [(0, 0), (0, 1), (1, 2), (2, 3)]


# ---------------------------------------------------------------- char / esm / protbert
def test_char_ids_offsets_and_unknown():
    tok = build_tokenizer("char")
    enc = tok.encode("ACGTN")
    assert enc.ids == [2, 5, 6, 7, 8, 9, 3]
    assert enc.offsets == [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 0)]
    assert tok.encode("ARé").ids == [2, 5, 1, 1, 3]
    assert tok.max_bases(512) == 510
    assert tok.encode("ACGT" * 10, max_tokens=5).ids == [2, 5, 6, 7, 3]


def test_esm_ids_equal_esm2_vocabulary():
    tok = build_tokenizer("esm")
    assert len(tok) == 33 and tok.vocab[4:8] == ["L", "A", "G", "V"] and tok.vocab[31] == "<null_1>"
    assert (tok.cls_id, tok.pad_id, tok.eos_id, tok.unk_id, tok.mask_id) == (0, 1, 2, 3, 32)
    enc = tok.encode("MKTAYIAK")
    assert enc.ids == [0, 20, 15, 11, 5, 19, 12, 5, 15, 2]
    assert enc.offsets[1:-1] == [(i, i + 1) for i in range(8)]
    assert tok.encode("MJ").ids == [0, 20, 3, 2]  # J is not in the vocabulary


def test_protbert_ids():
    tok = build_tokenizer("protbert")
    assert len(tok) == 30
    assert tok.encode("MKTAYIAK").ids == [2, 21, 12, 15, 6, 20, 11, 6, 12, 3]
    assert tok.encode("XUBZO").ids == [2, 25, 26, 27, 28, 29, 3]


def test_tokens_rejects_out_of_range_ids():
    tok = build_tokenizer("esm")
    assert tok.tokens([0, 32]) == ["<cls>", "<mask>"]
    with pytest.raises(InputError, match="outside the esm vocabulary"):
        tok.tokens([33])


def test_encode_batch_equals_encode():
    tok = build_tokenizer("kmer:4")
    seqs = ["ACGTACGT", "", "NNACGTA"]
    assert tok.encode_batch(seqs, max_tokens=4) == [tok.encode(s, max_tokens=4) for s in seqs]


@pytest.mark.parametrize("spec", ["kmer:9", "kmer", "nt-kmer:1", "foo", "esm:2", "hf"])
def test_build_tokenizer_rejects_bad_specs(spec):
    with pytest.raises(InputError):
        build_tokenizer(spec)


# ---------------------------------------------------------------- save / load / AutoTokenizer
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_save_load_round_trip_and_autotokenizer_ids(spec, tmp_path):
    tok = build_tokenizer(spec)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "genoml_tokenizer.json").read_text())["spec"] == spec
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tok) and loaded.spec == spec and loaded.vocab == tok.vocab
    hf = AutoTokenizer.from_pretrained(tmp_path)
    rng = random.Random(spec)
    alphabet = "ACGTN" if tok.alphabet == "dna" else PROTEIN + "X"
    for _ in range(30):
        seq = random_seq(rng, alphabet)
        assert loaded.encode(seq) == tok.encode(seq)
        assert hf(tok.to_hf_text(seq))["input_ids"] == tok.encode(seq).ids, seq


def test_autotokenizer_reads_kmer_and_esm_text_conventions(tmp_path):
    kmer = build_tokenizer("kmer:3")
    kmer.save_pretrained(tmp_path / "kmer")
    hf = AutoTokenizer.from_pretrained(tmp_path / "kmer")
    assert kmer.to_hf_text("ACGTA") == "ACG CGT GTA"
    assert hf("ACG CGT GTA")["input_ids"] == kmer.encode("ACGTA").ids == [2, 16, 50, 57, 3]
    esm = build_tokenizer("esm")
    esm.save_pretrained(tmp_path / "esm")
    assert AutoTokenizer.from_pretrained(tmp_path / "esm")("MKTAY")["input_ids"] == esm.encode("MKTAY").ids


@pytest.mark.parametrize("spec", ["kmer:6", "nt-kmer:6", "esm", "protbert", "char"])
def test_load_foreign_hf_vocab_maps_to_genoml_tokenizer(spec, tmp_path):
    build_tokenizer(spec).save_pretrained(tmp_path)
    (tmp_path / "genoml_tokenizer.json").unlink()  # a plain HF folder, as DNABERT/ESM-2/NT ship it
    loaded = load_tokenizer(tmp_path)
    assert loaded.spec == spec and not isinstance(loaded, HFTokenizer)


def test_load_vocab_txt_when_autotokenizer_cannot(tmp_path):
    vocab = build_tokenizer("kmer:6").vocab  # DNABERT ships a custom DNATokenizer class
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "DNATokenizer"}))
    assert load_tokenizer(tmp_path).spec == "kmer:6"
    assert spec_for_vocab(vocab[:-1]) is None


@needs_sapiens
def test_save_pretrained_removes_stale_fast_tokenizer_file(tmp_path):
    AutoTokenizer.from_pretrained(SAPIENS).save_pretrained(tmp_path)
    build_tokenizer("protbert").save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    assert hf("M K T")["input_ids"] == [2, 21, 12, 15, 3]


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(InputError, match="no tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "genoml_tokenizer.json").write_text("{not json")
    with pytest.raises(InputError, match="genoml_tokenizer.json"):
        load_tokenizer(tmp_path)
    build_tokenizer("kmer:3").save_pretrained(tmp_path)
    (tmp_path / "genoml_tokenizer.json").write_text(json.dumps({"spec": "kmer:4"}))
    with pytest.raises(InputError, match="vocabulary differs"):
        load_tokenizer(tmp_path)


# ---------------------------------------------------------------- HFTokenizer adapter
@needs_sapiens
def test_hf_adapter_on_sapiens_matches_autotokenizer():
    tok = load_tokenizer(SAPIENS)
    hf = AutoTokenizer.from_pretrained(SAPIENS)
    assert isinstance(tok, HFTokenizer) and tok.spec == "hf" and tok.mode == "raw"
    assert (tok.cls_id, tok.pad_id, tok.eos_id, tok.unk_id, tok.mask_id) == (0, 1, 2, 3, 24)
    assert tok.alphabet == "protein" and len(tok) == 25 and tok.vocab[4] == "A"
    rng = random.Random(0)
    for _ in range(20):
        seq = random_seq(rng, PROTEIN, 1, 80)
        enc = tok.encode(seq)
        assert enc.ids == hf(seq)["input_ids"]
        assert enc.offsets == [(0, 0)] + [(i, i + 1) for i in range(len(seq))] + [(0, 0)]
        assert enc.special_mask == [True] + [False] * len(seq) + [True]
    assert tok.encode("qvq").ids == hf("QVQ")["input_ids"]
    cut = tok.encode("QVQLVQSG", max_tokens=5)
    assert cut.ids == [0, 17, 21, 17, 2] and tok.max_bases(5) == 3
    assert tok.encode_batch(["QV", "EVQ"]) == [tok.encode("QV"), tok.encode("EVQ")]


@needs_sapiens
def test_hf_adapter_save_load_round_trip(tmp_path):
    tok = load_tokenizer(SAPIENS)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "genoml_tokenizer.json").read_text())["spec"] == "hf"
    again = load_tokenizer(tmp_path)
    assert isinstance(again, HFTokenizer) and again.encode("EVQLV") == tok.encode("EVQLV")


def test_hf_adapter_spaced_bert_char_vocab(tmp_path):
    # an AntiBERTy-like BERT vocabulary (not a genoml order): residues must be space-separated
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PROTEIN]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": False}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = load_tokenizer(tmp_path)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(tok, HFTokenizer) and tok.mode == "spaced" and tok.alphabet == "protein"
    enc = tok.encode("MKTAJY")
    assert enc.ids == hf("M K T A J Y")["input_ids"] == [2, 15, 13, 21, 5, 1, 24, 3]
    assert enc.offsets[1:-1] == [(i, i + 1) for i in range(6)]


def test_hf_adapter_kmer_vocab(tmp_path):
    vocab = build_tokenizer("kmer:3").vocab + ["[EXTRA]"]  # not id-for-id a genoml vocabulary
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": False}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = load_tokenizer(tmp_path)
    assert isinstance(tok, HFTokenizer) and (tok.mode, tok.k, tok.alphabet) == ("kmer", 3, "dna")
    enc = tok.encode("ACGTA")
    assert enc.ids == [2, 16, 50, 57, 3] and enc.offsets[1:-1] == [(0, 3), (1, 4), (2, 5)]
    assert tok.max_bases(512) == 512
    assert tok.encode("ACGTACGTAC", max_tokens=4).offsets == [(0, 0), (0, 3), (1, 4), (0, 0)]


def test_hf_adapter_slow_tokenizer_offsets_from_token_lengths(tmp_path):
    # a slow (pure-Python) EsmTokenizer with a vocabulary genoml does not know
    vocab = ["<cls>", "<pad>", "<eos>", "<unk>", *PROTEIN, "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "EsmTokenizer"}))
    tok = load_tokenizer(tmp_path)
    assert isinstance(tok, HFTokenizer) and not tok.hf.is_fast and tok.mode == "raw"
    enc = tok.encode("MKTAY")
    assert enc.ids == AutoTokenizer.from_pretrained(tmp_path)("MKTAY")["input_ids"]
    assert enc.offsets == [(0, 0)] + [(i, i + 1) for i in range(5)] + [(0, 0)]
    assert tok.mask_id == 24 and tok.eos_id == 2


# ---------------------------------------------------------------- one_hot
def test_one_hot_values():
    x = one_hot("ACGTNu")
    assert x.shape == (6, 4) and x.dtype == np.float32
    expected = np.array(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.25] * 4, [0, 0, 0, 1]], dtype=np.float32
    )
    np.testing.assert_array_equal(x, expected)
    assert one_hot("").shape == (0, 4)
    np.testing.assert_array_equal(one_hot("aRé"), [[1, 0, 0, 0], [0.25] * 4, [0.25] * 4])


def test_max_tokens_validation():
    tok = build_tokenizer("char")
    assert tok.encode("ACGT", max_tokens=np.int64(4)).ids == [2, 5, 6, 3]
    with pytest.raises(InputError, match="not an integer"):
        tok.encode("ACGT", max_tokens=4.5)
    with pytest.raises(InputError, match="max_tokens >= 3"):
        tok.max_bases(2)
