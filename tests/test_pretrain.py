"""Masked-LM pretraining end to end on tiny generated corpora: learning, outputs, resume, held-out split, DDP."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genoml.config import PretrainConfig
from genoml.corpus import Corpus, build_corpus_cache
from genoml.errors import InputError
from genoml.mlm_batches import MaskedBatcher
from genoml.pretrain import run_pretrain
from genoml.tokenizers import build_tokenizer, load_tokenizer
from genoml.train import latest_checkpoint, load_tensors

ROOT = Path(__file__).resolve().parent.parent


def periodic_dna(n: int, rng: np.random.Generator, noise: float = 0.08) -> str:
    """A learnable 'genome': a fixed 7-base motif repeated, with random substitutions."""
    motif = np.frombuffer(b"ACGTTGC", dtype=np.uint8)
    seq = np.resize(motif, n).copy()
    flip = rng.random(n) < noise
    seq[flip] = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, flip.sum())]
    return seq.tobytes().decode()


@pytest.fixture
def dna_fasta(tmp_path) -> list[str]:
    rng = np.random.default_rng(0)
    a = tmp_path / "genome_a.fa.gz"
    with gzip.open(a, "wt") as f:
        f.write(f">chr1 first\n{periodic_dna(400, rng)}\n>chr2\n{periodic_dna(300, rng)}\n")
    b = tmp_path / "genome_b.fa"
    seq = periodic_dna(350, rng)
    b.write_text(">plasmid\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    return [str(a), str(b)]


def config(inputs, out, **kw) -> PretrainConfig:
    base = dict(
        inputs=inputs,
        out=str(out),
        preset="tiny",
        window=32,
        max_steps=60,
        batch_size=16,
        lr=3e-3,
        eval_fraction=0.2,
        eval_windows=32,
        eval_every=20,
        checkpoint_every=20,
        log_every=10,
        seed=0,
        dropout=0.0,
    )
    return PretrainConfig(**{**base, **kw})


def test_tiny_pretrain_lowers_heldout_loss_and_writes_a_model_folder(tmp_path, dna_fasta):
    out = run_pretrain(config(dna_fasta, tmp_path / "run", max_steps=40))
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["kind"] == "pretrained" and meta["tokenizer"] == "char" and meta["alphabet"] == "dna"
    assert (
        meta["max_tokens"] == 34
        and meta["window"] == 32
        and meta["steps"] == 40
        and meta["stopped"] == "max_steps"
    )
    assert [c["records"] for c in meta["corpus"]] == [2, 1] and len(meta["corpus"][0]["sha256"]) == 64
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [0, 20, 40]  # the untrained model is evaluated too
    assert evals[-1]["loss"] < evals[0]["loss"] - 0.5  # from ~ln(10) (untrained) to base frequencies at least
    assert meta["heldout"]["loss"] == evals[-1]["loss"] and meta["heldout"]["masked_tokens"] > 100
    assert (out / "loss.png").stat().st_size > 1000 and not (out / "cache").exists()
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(out)
    assert model.config.model_type == "bert" and model.config.attention_probs_dropout_prob == 0.0
    assert load_tokenizer(out).spec == "char"
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))


def test_tiny_model_learns_context_beyond_the_kmer_baseline(tmp_path, dna_fasta):
    """Held-out masked accuracy must beat predicting each base from its 3+3 neighbours' k-mer counts."""
    out = run_pretrain(
        config(
            dna_fasta,
            tmp_path / "run",
            arch="esm",
            max_steps=240,
            batch_size=32,
            eval_every=240,
            checkpoint_every=240,
            log_every=40,
        )
    )
    held = json.loads((out / "genoml.json").read_text())["heldout"]
    assert held["baselines"]["context_size"] == 3
    assert (
        held["baselines"]["context_acc"] > held["baselines"]["unigram_acc"] + 0.1
    )  # the baseline is not a strawman
    assert held["masked_acc"] > held["baselines"]["context_acc"] + 0.1


def test_kill_then_resume_gives_identical_weights(tmp_path, dna_fasta, monkeypatch):
    kw = dict(max_steps=12, eval_every=4, checkpoint_every=4)
    ref = run_pretrain(config(dna_fasta, tmp_path / "ref", **kw))
    original = MaskedBatcher.train_batch

    def dying(self, micro, rank, world):
        if micro == 9:
            raise KeyboardInterrupt("simulated kill")  # not caught by anything: like SIGKILL, no final save
        return original(self, micro, rank, world)

    monkeypatch.setattr(MaskedBatcher, "train_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(config(dna_fasta, tmp_path / "run", **kw))
    assert latest_checkpoint(tmp_path / "run").name == "step-000008"
    with pytest.raises(InputError, match="not empty"):
        run_pretrain(config(dna_fasta, tmp_path / "run", **kw))
    monkeypatch.setattr(MaskedBatcher, "train_batch", original)
    run = run_pretrain(config(dna_fasta, tmp_path / "run", resume=True, **kw))
    a, b = load_tensors(ref / "model.safetensors"), load_tensors(run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((d / "genoml.json").read_text())["heldout"] for d in (ref, run))
    assert ma["loss"] == mb["loss"] and ma["masked_acc"] == mb["masked_acc"]


def test_training_windows_never_touch_the_heldout_part(tmp_path, dna_fasta):
    data, index = build_corpus_cache([Path(p) for p in dna_fasta], "dna", tmp_path / "cache")
    corpus = Corpus(data, index, window=32, eval_fraction=0.2)
    assert len(corpus.heldout) == 3  # the tail of each record (0.2 x length >= 32)
    held = {
        (int(r), int(o) - int(corpus.offsets[r]), int(o) - int(corpus.offsets[r]) + int(n))
        for r, o, n in zip(corpus.heldout.record, corpus.heldout.offset, corpus.heldout.length, strict=True)
    }
    rng = np.random.default_rng(0)
    strands = set()
    for _ in range(2000):
        w = corpus.sample(rng)
        strands.add(w.strand)
        assert len(w.seq) == 32
        for rec, lo, hi in held:
            assert w.record != rec or w.start + 32 <= lo or w.start >= hi
    for _ in range(200):
        w = corpus.sample(rng, heldout=True)
        assert any(w.record == rec and lo <= w.start and w.start + len(w.seq) <= hi for rec, lo, hi in held)
    assert strands == {"+", "-"}
    # reverse-strand windows are reverse complements of the stored sequence
    w = next(w for w in (corpus.sample(rng) for _ in range(50)) if w.strand == "-")
    from genoml.io import reverse_complement

    fwd = corpus.text(int(corpus.offsets[w.record]) + w.start, 32)
    assert w.seq == reverse_complement(fwd)


def test_protein_corpus_holds_out_whole_sequences_by_hash(tmp_path):
    rng = np.random.default_rng(1)
    aa = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
    seqs = [aa[rng.integers(0, 20, rng.integers(20, 80))].tobytes().decode() for _ in range(60)]
    seqs += seqs[:10]  # exact duplicates must land on the same side as their original
    path = tmp_path / "prot.faa"
    path.write_text("".join(f">p{i}\n{s}*\n" for i, s in enumerate(seqs)))
    data, index = build_corpus_cache([path], "protein", tmp_path / "cache")
    corpus = Corpus(data, index, window=40, eval_fraction=0.2)
    side = {}
    for segs, name in ((corpus.train, "train"), (corpus.heldout, "held")):
        for r, n in zip(segs.record, segs.length, strict=True):
            assert n == corpus.lengths[r]  # whole records only
            side.setdefault(seqs[r], set()).add(name)
    assert all(len(v) == 1 for v in side.values())
    assert 5 <= len(corpus.heldout) <= 25
    w = corpus.sample(np.random.default_rng(3))
    assert w.strand == "+" and 1 <= len(w.seq) <= 40 and "*" not in w.seq


def test_protein_esm_pretrain_then_continued_pretraining(tmp_path):
    rng = np.random.default_rng(2)
    motif = "MKTAYIAKQRQISFVKSHFSRQ"
    aa = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
    path = tmp_path / "prot.fa"
    path.write_text(
        "".join(f">p{i}\n{aa[rng.integers(0, 20, 6)].tobytes().decode()}{motif}\n" for i in range(40))
    )
    first = run_pretrain(config([str(path)], tmp_path / "esm", max_steps=6, eval_every=3, checkpoint_every=6))
    meta = json.loads((first / "genoml.json").read_text())
    assert meta["tokenizer"] == "esm" and meta["arch"] == "esm" and meta["alphabet"] == "protein"
    again = run_pretrain(config([str(path)], tmp_path / "cont", model=str(first), max_steps=3, eval_every=3))
    meta2 = json.loads((again / "genoml.json").read_text())
    assert meta2["base_model"] == str(first) and meta2["preset"] is None and meta2["steps"] == 3
    with pytest.raises(InputError, match="--window 40: needs 42 tokens"):
        run_pretrain(config([str(path)], tmp_path / "long", model=str(first), window=40, max_steps=1))


def test_kmer_tokenizer_uses_span_masking(tmp_path, dna_fasta):
    data, index = build_corpus_cache([Path(p) for p in dna_fasta], "dna", tmp_path / "cache")
    corpus = Corpus(data, index, window=32, eval_fraction=0.2)
    tok = build_tokenizer("kmer:4")
    batcher = MaskedBatcher(corpus, tok, 31, config(dna_fasta, tmp_path / "x", tokenizer="kmer:4"), None)
    batch = batcher.train_batch(0, 0, 1)
    assert batch["input_ids"].shape == (16, 31)
    chosen = (batch["labels"] != -100).int()
    for row in chosen:  # runs of chosen tokens are at least k long unless they touch [CLS]/[SEP]
        bounds = torch.diff(
            torch.cat([torch.zeros(1, dtype=torch.int), row, torch.zeros(1, dtype=torch.int)])
        )
        starts, ends = torch.nonzero(bounds == 1).flatten(), torch.nonzero(bounds == -1).flatten()
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            assert e - s >= 4 or s == 1 or e == 30


def test_bad_inputs_are_refused_before_writing(tmp_path, dna_fasta):
    with pytest.raises(InputError, match="no such file"):
        run_pretrain(config([str(tmp_path / "missing.fa")], tmp_path / "out"))
    with pytest.raises(InputError, match="--window"):
        run_pretrain(config(dna_fasta, tmp_path / "out", window=2))
    with pytest.raises(InputError, match="--preset"):
        run_pretrain(config(dna_fasta, tmp_path / "out", preset="huge"))
    with pytest.raises(InputError, match="held-out part of the corpus is empty"):
        run_pretrain(config(dna_fasta, tmp_path / "out", eval_fraction=0.01))
    assert not (tmp_path / "out" / "genoml.json").exists()


def test_torchrun_two_ranks_disjoint_rows_same_data_as_one_process(tmp_path, dna_fasta, monkeypatch):
    env = {**os.environ, "GENOML_DEBUG_SAMPLES": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--standalone",
        str(ROOT / "tests" / "_ddp_pretrain_entry.py"),
        str(tmp_path / "ddp"),
        *dna_fasta,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = tmp_path / "ddp"
    assert [p.name for p in (ddp / "checkpoints").iterdir()] == ["step-000004"]
    assert (ddp / "checkpoints" / "step-000004" / "COMPLETE").is_file()
    ranks = [(ddp / "debug" / f"samples-rank{r}.tsv").read_text().splitlines() for r in (0, 1)]
    rows = [{tuple(line.split("\t")[:2]) for line in lines} for lines in ranks]
    assert rows[0] and rows[1] and not rows[0] & rows[1]  # no (step, row) drawn twice
    assert len(rows[0] | rows[1]) == 4 * 8  # every row of every step drawn exactly once
    # the same rows, drawn by one process, are the same windows: data does not depend on the world size
    single = tmp_path / "single"
    monkeypatch.setenv("GENOML_DEBUG_SAMPLES", "1")
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from _ddp_pretrain_entry import main as entry
    finally:
        sys.path.remove(str(ROOT / "tests"))
    entry([str(single), *dna_fasta])
    assert sorted(ranks[0] + ranks[1]) == sorted(
        (single / "debug" / "samples-rank0.tsv").read_text().splitlines()
    )
    meta = json.loads((ddp / "genoml.json").read_text())
    assert meta["processes"] == 2 and meta["steps"] == 4


def test_bpe_tokenizer_learned_from_the_corpus_then_finetune(tmp_path, dna_fasta):
    """--tokenizer bpe:V learns merges of the periodic genome, trains, and the folder fine-tunes and reloads."""
    from transformers import AutoTokenizer

    from genoml.cli import main

    out = run_pretrain(config(dna_fasta, tmp_path / "bpe", tokenizer="bpe:40", max_steps=4))
    tok = load_tokenizer(out)
    assert len(tok) == 40 and tok.alphabet == "dna"
    merged = [t for t in tok.vocab if t and t[0] != "[" and len(t) > 1]
    assert merged and all(set(t) <= set("ACGTN") for t in merged)
    assert any(m in "ACGTTGC" * 3 for m in merged if len(m) >= 3)  # merges follow the repeated motif
    enc = tok.encode("ACGTTGCACGTTGC")
    assert AutoTokenizer.from_pretrained(out)("ACGTTGCACGTTGC").input_ids == enc.ids
    content = [o for o, sp in zip(enc.offsets, enc.special_mask) if not sp]
    assert (
        content[0][0] == 0
        and content[-1][1] == 14
        and all(a[1] == b[0] for a, b in zip(content, content[1:]))
    )
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["tokenizer"] == "bpe:40"
    rows = "sequence,label\n" + "".join(
        f"{'ACGTTGC' * 4 if i % 2 else 'GGCCAAT' * 4},{i % 2}\n" for i in range(40)
    )
    (tmp_path / "train.csv").write_text(rows)
    ft = tmp_path / "ft"
    assert (
        main(
            [
                "-q",
                "finetune",
                str(tmp_path / "train.csv"),
                "--model",
                str(out),
                "--out",
                str(ft),
                "--epochs",
                "1",
                "--no-baselines",
                "--no-attention",
            ]
        )
        == 0
    )
    assert json.loads((ft / "genoml.json").read_text())["source_model"] == str(out)


def test_bpe_spec_errors():
    with pytest.raises(InputError, match="pretrain --tokenizer bpe:300"):
        build_tokenizer("bpe:300")  # learned by pretrain, not built from a spec
    with pytest.raises(InputError, match="32..65536"):
        PretrainConfig(inputs=["x.fa"], tokenizer="bpe:3").validate()
    with pytest.raises(InputError, match="--model"):
        PretrainConfig(inputs=["x.fa"], tokenizer="bpe:100", model="some/folder").validate()
