"""`--model auto` (the default): candidates on the same splits, the winner chosen on validation only."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from genoml.cli import main
from tests.tiny import MOTIF, planted_motif_rows, write_csv


def flipped(rows):
    return [(s, "0" if lab == "1" else "1") for s, lab in rows]


def test_auto_chooses_on_validation_not_test(tmp_path):
    rows = planted_motif_rows(300, length=40, seed=2)
    train = write_csv(tmp_path / "train.csv", rows[:220])
    valid = write_csv(tmp_path / "valid.csv", rows[220:])
    # the test split holds the validation sequences with every label flipped: a model's test MCC is minus its
    # validation MCC, so choosing on test would pick the validation loser
    test = write_csv(tmp_path / "test.csv", flipped(rows[220:]))
    out = tmp_path / "auto"
    assert (
        main(
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
                "--time-budget",
                "30",  # never binding: 3 epochs end every candidate, so the run is the same on any machine
                "--epochs",
                "3",
                "--no-attention",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    names = [r["candidate"] for r in m["candidates"]]
    assert names == ["kmer-linear", "cnn-attn", "cnn-shallow"]
    valid_mcc = [r["valid"]["mcc"] for r in m["candidates"]]
    test_mcc = [r["test"]["mcc"] for r in m["candidates"]]
    assert len(set(np.round(valid_mcc, 6))) == 3, valid_mcc  # distinct, so the two choices can differ
    by_valid, by_test = names[int(np.argmax(valid_mcc))], names[int(np.argmax(test_mcc))]
    assert by_valid != by_test
    assert m["chosen"] == by_valid
    assert [r["chosen"] for r in m["candidates"]] == [n == by_valid for n in names]
    for r in m["candidates"]:
        assert (
            r["parameters"]["trainable"] > 0
            and r["wall_s"] > 0
            and (out / r["run_dir"] / "genoml.json").is_file()
        )
        assert not (out / r["run_dir"] / "checkpoints").exists()
    # the output folder is the winner's run: same arch, same validation metrics, loadable by predict
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["arch"] == by_valid and meta["auto"]["chosen"] == by_valid
    assert m["valid"]["mcc"] == max(valid_mcc)
    report = (out / "report.md").read_text()
    assert "## Model selection (`--model auto`)" in report and "| candidate | valid MCC | test MCC" in report
    assert f"| {by_valid} **(chosen)** |" in report
    for n in names:
        assert f"| {n}" in report
    preds = tmp_path / "p.tsv"
    assert main(["-q", "predict", str(valid), "--model", str(out), "-o", str(preds)]) == 0
    assert len(preds.read_text().splitlines()) == 1 + 80


def test_auto_refuses_what_it_cannot_do(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", planted_motif_rows(60, seed=3))
    argv = ["finetune", str(train), "--out", str(tmp_path / "o")]
    assert main([*argv, "--valid-fraction", "0"]) == 2
    assert "--model auto chooses on the validation split" in capsys.readouterr().err
    assert main([*argv, "--model", "cnn", "--candidates", "rnn"]) == 2
    assert "--candidates: only with --model auto" in capsys.readouterr().err
    assert main([*argv, "--rc", "maybe"]) == 2
    assert "--rc: must be auto, on or off, got 'maybe'" in capsys.readouterr().err
    assert main([*argv, "--candidates", "cnn:lora"]) == 2
    assert "--candidates cnn:lora: 'cnn' is a baseline" in capsys.readouterr().err
    assert main([*argv, "--candidates", str(tmp_path / "no-such-run")]) == 2
    assert "--candidates" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def _strand_rows(n: int, strand_specific: bool, seed: int) -> list[tuple[str, str]]:
    """Positives carry MOTIF; negatives carry its reverse complement (strand-specific task) or nothing.
    In the strand-symmetric task a positive's motif is on either strand."""
    from genoml.io import reverse_complement

    rng = random.Random(seed)
    rc = reverse_complement(MOTIF)
    rows = []
    for i in range(n):
        seq = "".join(rng.choice("ACGT") for _ in range(50))
        label = i % 2
        site = MOTIF if (strand_specific or rng.random() < 0.5) else rc
        if not label:
            site = rc if strand_specific else None
        if site:
            p = rng.randrange(0, 50 - len(site))
            seq = seq[:p] + site + seq[p + len(site) :]
        rows.append((seq, str(label)))
    return rows


def test_rc_auto_is_off_for_strand_specific_labels_and_on_otherwise():
    from genoml.auto import decide_rc

    for specific, expected in ((True, "off"), (False, "on")):
        rows = _strand_rows(900, specific, seed=4)
        seqs, y = [s for s, _ in rows], np.array([int(lab) for _, lab in rows])
        info = decide_rc(seqs[:700], y[:700], seqs[700:], y[700:], "binary", seed=0)
        assert info["decision"] == expected, info
    assert info["valid_metric_strand_symmetric"] > 0.5  # the symmetric model does see an either-strand motif


def test_rc_decision_is_recorded_and_used(tmp_path):
    rows = _strand_rows(240, True, seed=5)
    files = [
        write_csv(tmp_path / f"{n}.csv", part)
        for n, part in (("train", rows[:160]), ("valid", rows[160:200]), ("test", rows[200:]))
    ]
    out = tmp_path / "cnn"
    assert (
        main(
            [
                "-q",
                "finetune",
                str(files[0]),
                "--valid",
                str(files[1]),
                "--test",
                str(files[2]),
                "--model",
                "cnn",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--no-baselines",
                "--no-attention",
            ]
        )
        == 0
    )
    m = json.loads((out / "metrics.json").read_text())
    meta = json.loads((out / "genoml.json").read_text())
    assert m["rc"]["mode"] == "auto" and m["rc"]["decision"] in ("on", "off")
    assert meta["rc_average"] == (m["rc"]["decision"] == "on") == meta["config"]["rc_augment"]
    assert meta["config"]["batch_size"] == 64 and meta["config"]["patience"] == 30  # the cnn recipe
    assert meta["config"]["ema"] is None  # weight averaging is opt-in
    out2 = tmp_path / "cnn-on"
    assert (
        main(
            [
                "-q",
                "finetune",
                str(files[0]),
                "--valid",
                str(files[1]),
                "--model",
                "cnn",
                "--rc",
                "on",
                "--epochs",
                "1",
                "--out",
                str(out2),
                "--no-baselines",
                "--no-attention",
            ]
        )
        == 0
    )
    assert json.loads((Path(out2) / "genoml.json").read_text())["rc_average"] is True


def test_choose_ignores_test_and_failed_candidates_and_table_shows_them():
    import math

    import pytest

    from genoml.auto import choose, comparison_table
    from genoml.errors import GenomlError

    rows = [
        {
            "candidate": "kmer-linear",
            "valid": {"mcc": 0.5},
            "test": {"mcc": 0.9},
            "parameters": {"trainable": 10},
            "arch": "kmer-linear",
            "wall_s": 1.0,
            "train_seconds": 1.0,
            "stopped": "completed",
        },
        {"candidate": "cnn", "error": "InputError: boom", "wall_s": 2.0},
        {
            "candidate": "cnn-shallow",
            "valid": {"mcc": 0.6},
            "test": {"mcc": 0.1},
            "parameters": {"trainable": 5},
            "arch": "cnn-shallow",
            "rc_average": True,
            "wall_s": 3.0,
            "train_seconds": 2.0,
            "stopped": "time_budget",
        },
    ]
    assert choose(rows, "mcc") == 2
    rows[2]["chosen"] = True
    table = comparison_table(rows, "mcc")
    assert "| cnn | failed: InputError: boom |" in table
    assert "| cnn-shallow **(chosen)** | 0.6000 | 0.1000 | – | augment + average |" in table
    with pytest.raises(GenomlError, match="no candidate finished"):
        choose([rows[1], {"candidate": "x", "valid": {"mcc": math.nan}}], "mcc")


def test_candidates_get_pooling_only_where_it_applies(tmp_path):
    """--pooling reaches the encoder candidates; the nets and kmer-linear keep their own pooling (a forced one
    would be refused by them)."""
    from genoml.auto import _candidate_config
    from genoml.config import DataConfig, FinetuneConfig

    cfg = FinetuneConfig(data=DataConfig(train="t.csv"), pooling="meanmax")
    pooled = {
        m: _candidate_config(cfg, m, tmp_path / m, 1.0, 1).pooling for m in ("cnn", "kmer-linear", "embedded")
    }
    assert pooled == {"cnn": "auto", "kmer-linear": "auto", "embedded": "meanmax"}
