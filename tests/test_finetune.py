"""finetune end to end: each strategy trains only what it should; every task type; reload in transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genoml.cli import main
from tests.tiny import planted_motif_rows, tiny_bert_folder, tiny_esm_folder, write_csv, write_fasta

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="module")
def motif_csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("motif")
    rows = planted_motif_rows(360, seed=1)
    return (
        write_csv(d / "train.csv", rows[:240]),
        write_csv(d / "valid.csv", rows[240:300]),
        write_csv(d / "test.csv", rows[300:]),
    )


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_folder(tmp_path_factory.mktemp("bert") / "model")


def run(argv: list[str]) -> int:
    return main(argv)


def finetune(csvs, out, *extra) -> dict:
    train, valid, test = csvs
    rc = run(
        [
            "-q",
            "finetune",
            str(train),
            "--valid",
            str(valid),
            "--test",
            str(test),
            "--out",
            str(out),
            "--no-attention",
            *extra,
        ]
    )
    assert rc == 0
    return json.loads((Path(out) / "metrics.json").read_text())


def encoder_weights(folder) -> dict[str, torch.Tensor]:
    return {
        k.removeprefix("bert."): v
        for k, v in load_file(str(Path(folder) / "model.safetensors")).items()
        if not k.startswith("cls.")
    }


def test_planted_motif_cnn_learns(motif_csvs, tmp_path):
    m = finetune(motif_csvs, tmp_path / "cnn", "--model", "cnn", "--epochs", "8", "--no-baselines")
    assert m["test"]["accuracy"] >= 0.9, m["test"]
    assert set(m) >= {"valid", "test"}
    assert m["test"]["headline"] == "mcc" and len(m["test"]["mcc_ci95"]) == 2


def test_ema_run_keeps_the_averaged_weights(motif_csvs, tmp_path):
    """--ema: the run learns, records the setting, and saves the weight average of its best epoch (the
    last epoch here), not the raw weights the optimizer reached."""
    out = tmp_path / "ema"
    m = finetune(motif_csvs, out, "--model", "cnn", "--epochs", "8", "--no-baselines", "--ema", "0.9")
    assert m["test"]["accuracy"] >= 0.9, m["test"]
    assert json.loads((out / "genoml.json").read_text())["config"]["ema"] == 0.9
    (ckpt,) = (out / "checkpoints").iterdir()
    saved = load_file(str(out / "model.safetensors"))
    best = load_file(str(ckpt / "best.safetensors"))
    raw = load_file(str(ckpt / "model.safetensors"))
    average = {k.removeprefix("module."): v for k, v in load_file(str(ckpt / "average.safetensors")).items()}
    assert all(torch.equal(saved[k], best[k]) for k in saved)
    assert not all(torch.equal(raw[k], average[k]) for k in raw if raw[k].is_floating_point())
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    best_step = max(evals, key=lambda r: r["mcc"])["step"]  # the first of equal maxima, as the loop keeps it
    assert (best_step == evals[-1]["step"]) == all(torch.equal(saved[k], average[k]) for k in saved)


@pytest.mark.parametrize("strategy", ["probe", "partial:1", "lora", "full"])
def test_strategy_trains_only_its_parameters(strategy, motif_csvs, bert_dir, tmp_path):
    out = tmp_path / "run"
    finetune(
        motif_csvs,
        out,
        "--model",
        str(bert_dir),
        "--strategy",
        strategy,
        "--epochs",
        "2",
        "--no-baselines",
        "--lr",
        "5e-3",
    )
    before, after = encoder_weights(bert_dir), encoder_weights(out)
    changed = {k for k in before if k in after and not torch.equal(before[k], after[k])}
    emb = {k for k in before if "embeddings" in k}
    layer0 = {k for k in before if ".layer.0." in k}
    layer1 = {k for k in before if ".layer.1." in k}
    if strategy == "probe":
        assert not changed
    elif strategy == "partial:1":
        assert not changed & (emb | layer0) and changed & layer1
    elif strategy == "lora":
        assert changed and all(any(t in k for t in ("query", "key", "value")) for k in changed), changed
    else:
        assert changed & emb and changed & layer0
    head = load_file(str(out / "head.safetensors"))
    assert head and all(torch.isfinite(v).all() for v in head.values())


def test_run_dir_reloads_in_plain_transformers(motif_csvs, bert_dir, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    out = tmp_path / "run"
    finetune(motif_csvs, out, "--model", str(bert_dir), "--epochs", "1")
    model = AutoModel.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    ids = tok("A C G T", return_tensors="pt")
    assert model(**ids).last_hidden_state.shape[-1] == 32
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["labels"]["task"] == "binary" and meta["source_model"] == str(bert_dir)
    assert meta["data"]["train"]["sha256"] and meta["seed"] == 0
    for name in ("report.md", "README.md", "metrics.json", "head.safetensors"):
        assert (out / name).stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "kmer-linear" in metrics["baselines"] and "majority" in metrics["baselines"]


def test_fasta_with_label_table_and_class_files(tmp_path):
    rows = planted_motif_rows(120, seed=2)
    fa = write_fasta(tmp_path / "seqs.fa", rows, with_labels=False)
    (tmp_path / "labels.tsv").write_text(
        "".join(f"s{i}\t{'pos' if lab == '1' else 'neg'}\n" for i, (_, lab) in enumerate(rows))
    )
    assert (
        run(
            [
                "-q",
                "finetune",
                str(fa),
                "--labels",
                str(tmp_path / "labels.tsv"),
                "--out",
                str(tmp_path / "a"),
                "--model",
                "kmer-linear",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["test"]["n"] == 12 and m["valid"]["n"] == 12
    pos = write_fasta(tmp_path / "pos.fa", [r for r in rows if r[1] == "1"], with_labels=False)
    neg = write_fasta(tmp_path / "neg.fa", [(s, lab) for s, lab in rows if lab == "0"], with_labels=False)
    # ids repeat across the two files (s0, s1 ...): genoml must refuse duplicate ids
    rc = run(
        [
            "-q",
            "finetune",
            "--class",
            f"pos={pos}",
            "--class",
            f"neg={neg}",
            "--out",
            str(tmp_path / "b"),
            "--model",
            "kmer-linear",
        ]
    )
    assert rc == 2 and not (tmp_path / "b").exists()
    neg2 = tmp_path / "neg2.fa"
    neg2.write_text(neg.read_text().replace(">s", ">n"))
    assert (
        run(
            [
                "-q",
                "finetune",
                "--class",
                f"pos={pos}",
                "--class",
                f"neg={neg2}",
                "--out",
                str(tmp_path / "b"),
                "--model",
                "kmer-linear",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "b" / "genoml.json").read_text())["labels"]["names"] == ["neg", "pos"]


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_task_types_end_to_end(task, tmp_path):
    # regression ranks G content within each class too: more rows and steps than the classification tasks need
    rows = planted_motif_rows(480 if task == "regression" else 240, seed=3)
    if task == "multiclass":
        rows = [(s, ["a", "b", "c"][i % 3] if lab == "0" else "m") for i, (s, lab) in enumerate(rows)]
    elif task == "multilabel":
        rows = [
            (s, "motif;gc" if lab == "1" and s.count("G") > 9 else "motif" if lab == "1" else "gc")
            for s, lab in rows
        ]
    else:
        rows = [(s, f"{s.count('G') / len(s) + float(lab):.4f}") for s, lab in rows]
    train = write_csv(tmp_path / "train.csv", rows)
    out = tmp_path / "run"
    batch = ["--batch-size", "32"] if task == "regression" else []
    assert (
        run(["-q", "finetune", str(train), "--out", str(out), "--model", "cnn", "--epochs", "4", *batch]) == 0
    )
    meta = json.loads((out / "genoml.json").read_text())
    m = json.loads((out / "metrics.json").read_text())
    assert meta["labels"]["task"] == task
    if task == "regression":
        assert m["test"]["headline"] == "spearman" and m["test"]["spearman"] > 0.5
    else:
        assert m["test"]["headline"] == "mcc"


def test_non_empty_out_is_refused(motif_csvs, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    train, valid, test = motif_csvs
    rc = run(["finetune", str(train), "--out", str(out), "--model", "kmer-linear"])
    assert rc == 2 and "--force" in capsys.readouterr().err
    assert (out / "keep.txt").exists()


def test_unknown_strategy_is_refused(motif_csvs, tmp_path, capsys):
    rc = run(["finetune", str(motif_csvs[0]), "--out", str(tmp_path / "r"), "--strategy", "magic"])
    assert rc == 2 and "--strategy" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_esm_protein_model_finetunes(tmp_path):
    import random

    rng = random.Random(0)
    rows = [
        (
            "".join(rng.choice("KR" if i % 2 else "DE") for _ in range(6))
            + "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(20)),
            str(i % 2),
        )
        for i in range(160)
    ]
    model = tiny_esm_folder(tmp_path / "esm")
    train = write_csv(tmp_path / "train.csv", rows)
    assert (
        run(
            [
                "-q",
                "finetune",
                str(train),
                "--out",
                str(tmp_path / "r"),
                "--model",
                str(model),
                "--epochs",
                "3",
                "--lr",
                "3e-3",
                "--no-attention",
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["test"]["accuracy"] > 0.8


@pytest.mark.skipif(
    not (SHARED / "models" / "sapiens-vh").is_dir(), reason="../shared/models/sapiens-vh absent"
)
def test_real_pretrained_roberta_finetunes(tmp_path):
    import random

    rng = random.Random(0)
    rows = [
        (
            "EVQLVESGGGLVQPGG"
            + "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(12))
            + ("KK" if i % 2 else "DD"),
            str(i % 2),
        )
        for i in range(120)
    ]
    train = write_csv(tmp_path / "train.csv", rows)
    assert (
        run(
            [
                "-q",
                "finetune",
                str(train),
                "--out",
                str(tmp_path / "r"),
                "--model",
                str(SHARED / "models" / "sapiens-vh"),
                "--strategy",
                "lora",
                "--epochs",
                "2",
                "--no-attention",
                "--no-baselines",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "r" / "genoml.json").read_text())["tokenizer"]


def test_adapt_steps_pretrains_on_train_split_only(motif_csvs, bert_dir, tmp_path):
    out = tmp_path / "run"
    finetune(
        motif_csvs, out, "--model", str(bert_dir), "--epochs", "1", "--adapt-steps", "4", "--no-baselines"
    )
    adapted = out / "adapted"
    assert (adapted / "config.json").is_file() and (adapted / "genoml.json").is_file()
    meta = json.loads((adapted / "genoml.json").read_text())
    assert meta["steps"] == 4 and meta["corpus"][0]["path"].endswith("adapt_corpus.fa")
    assert not (out / "adapt_corpus.fa").exists()
    assert json.loads((out / "genoml.json").read_text())["source_model"] == str(adapted)


def test_kmer_counts_by_hand():
    from genoml.kmer_linear import kmer_counts, kmer_vocab

    vocab = kmer_vocab("dna", (1, 2))
    m = kmer_counts(["ACGTN", "AAAA"], "dna", (1, 2)).toarray()
    assert m.shape == (2, 4 + 16)
    # ACGTN: 5 1-mers (N not counted) -> A,C,G,T each 1/5; 4 2-mers, AC CG GT counted (TN not) -> 1/4 each
    assert "N" not in vocab and m[0, vocab.index("A")] == pytest.approx(0.2)
    assert m[0, vocab.index("CG")] == pytest.approx(0.25) and m[0].sum() == pytest.approx(0.8 + 0.75)
    assert m[1, vocab.index("AA")] == pytest.approx(1.0) and m[1, vocab.index("A")] == pytest.approx(1.0)


def test_report_has_motif_logos_matching_the_planted_motif(motif_csvs, tmp_path):
    from genoml.motifs import consensus_match
    from tests.tiny import MOTIF

    train, valid, test = motif_csvs
    out = tmp_path / "run"
    assert (
        run(
            [
                "-q",
                "finetune",
                str(train),
                "--valid",
                str(valid),
                "--test",
                str(test),
                "--out",
                str(out),
                "--model",
                "cnn",
                "--epochs",
                "8",
                "--no-baselines",
            ]
        )
        == 0
    )
    motifs = json.loads((out / "motifs" / "motifs.json").read_text())["motifs"]
    assert motifs and consensus_match(motifs[0]["consensus"], MOTIF)
    assert (out / "motifs" / motifs[0]["logo"]).stat().st_size > 0
    assert "## Motifs" in (out / "report.md").read_text()
