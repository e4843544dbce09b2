"""Issue 12: splits without leakage (--split-by region | chrom | similarity), the leakage table (overlaps and
near-duplicates), the positive class, and the report parts a biologist reads (curves, predictions table)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from genoml.cli import main
from genoml.plots import curve_rows
from genoml.positive import choose_positive
from genoml.splits import (
    chrom_groups,
    leakage,
    near_duplicates,
    overlapping,
    region_groups,
    similarity_groups,
    split_indices,
)
from tests.tiny import planted_motif_rows, write_csv

FAST = ["--model", "kmer-linear", "--epochs", "1", "--no-attention", "--threads", "1"]


def run_cli(argv, capsys):
    capsys.readouterr()
    rc = main(["-q", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _rand(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


def _mutate(rng: random.Random, seq: str, n: int) -> str:
    s = list(seq)
    for p in rng.sample(range(len(s)), n):
        s[p] = rng.choice("ACGT".replace(s[p], ""))
    return "".join(s)


# --------------------------------------------------------------------------- units


def test_region_groups_join_overlapping_and_nearby_intervals():
    ivs = [("c", 0, 10, "+"), ("c", 5, 20, "+"), ("c", 30, 40, "+"), ("d", 0, 10, "+"), ("c", 22, 25, "+")]
    assert region_groups(ivs, 0) == [0, 0, 2, 3, 4]
    assert region_groups(ivs, 5) == [0, 0, 2, 3, 0]  # 22 is within 5 bases of 20
    assert chrom_groups(ivs) == [0, 0, 0, 1, 0]


def test_overlap_and_near_duplicate_counts():
    assert overlapping([("c", 0, 10, "+")], [("c", 9, 12, "+"), ("c", 10, 12, "+"), ("x", 0, 5, "+")]) == 1
    assert overlapping([("c", 0, 10, "+")], [("c", 12, 14, "+")], gap=3) == 1
    rng = random.Random(0)
    a, c = _rand(rng, 300), _rand(rng, 300)
    b = _mutate(rng, a, 3)  # 99% identical
    assert near_duplicates([a], [b, c], dna=True) == 1
    counts = leakage([a], [a, b, c], dna=True)
    assert counts == {"exact": 1, "revcomp": 0, "near": 1, "overlap": 0}


def test_similarity_groups_keep_families_and_reverse_complements_together():
    rng = random.Random(1)
    base = _rand(rng, 200)
    rc = base[::-1].translate(str.maketrans("ACGT", "TGCA"))
    groups = similarity_groups([base, _mutate(rng, base, 2), rc, _rand(rng, 200)], dna=True)
    assert groups[0] == groups[1] == groups[2] != groups[3]


@pytest.mark.parametrize("n", [3, 4, 5, 10, 11])
def test_small_files_split_without_error(n):
    labels = [str(i % 2) for i in range(n)]
    train, valid, test = split_indices(labels, (0.1, 0.1), 0)
    assert sorted([*train, *valid, *test]) == list(range(n))  # nothing lost, nothing twice
    assert len(valid) >= 1 and len(test) >= 1 and len(train) >= 1
    if n >= 5:
        assert {labels[i] for i in train} == {"0", "1"}  # training keeps both classes


def test_group_split_never_straddles():
    rng = np.random.default_rng(0)
    groups = list(rng.integers(0, 30, size=300))
    tr, va, te = split_indices(["x"] * 300, (0.1, 0.1), 0, groups=groups)
    sides = {}
    for name, idx in (("train", tr), ("valid", va), ("test", te)):
        for i in idx:
            assert sides.setdefault(groups[i], name) == name


def test_positive_class_rules():
    assert choose_positive(["0", "1"], ["0", "1", "1"])[0] == "1"
    assert choose_positive(["AMP", "TM"], ["AMP"] * 10 + ["TM"] * 30)[0] == "AMP"  # minority
    assert choose_positive(["negative", "positive"], ["negative", "positive"])[0] == "positive"
    assert choose_positive(["high", "low"], ["low"] * 3 + ["high"] * 9)[0] == "low"
    assert choose_positive(["no", "yes"], ["no", "yes"])[0] == "yes"
    assert choose_positive(["a", "b"], ["a", "b"], requested="a") == ("a", "--positive-class")


def test_curve_rows_read_the_trainer_history():
    history = [
        {"event": "train", "step": 1, "loss": 0.7},
        {"event": "eval", "step": 1, "mcc": 0.2, "labels": []},
        {"event": "train", "step": 2, "loss": 0.5},
        {"event": "eval", "step": 2, "mcc": 0.4},
    ]
    rows, x = curve_rows(history)
    assert x == "step" and [r.get("train_loss") for r in rows if "train_loss" in r] == [0.7, 0.5]
    assert [r["valid_mcc"] for r in rows if "valid_mcc" in r] == [0.2, 0.4]


# --------------------------------------------------------------------------- through the CLI


@pytest.fixture(scope="module")
def bed_data(tmp_path_factory) -> dict[str, Path]:
    """Three chromosomes; every region is covered by two overlapping intervals with the same label."""
    d = tmp_path_factory.mktemp("beds")
    rng = random.Random(3)
    genome = d / "genome.fa"
    genome.write_text("".join(f">chr{c}\n{_rand(rng, 6000)}\n" for c in (1, 2, 3)))
    lines = []
    for c in (1, 2, 3):
        for k in range(36):
            start = k * 160
            label = "high" if (k // 2) % 2 else "low"
            lines.append(f"chr{c}\t{start}\t{start + 100}\tr{c}_{k}a\t{label}\n")
            lines.append(f"chr{c}\t{start + 40}\t{start + 140}\tr{c}_{k}b\t{label}\n")
    bed = d / "regions.bed"
    bed.write_text("".join(lines))
    return {"genome": genome, "bed": bed}


def _bed_run(bed_data, tmp_path, capsys, *extra):
    out = tmp_path / "run"
    rc, _, err = run_cli(
        [
            "finetune",
            "--bed",
            str(bed_data["bed"]),
            "--genome",
            str(bed_data["genome"]),
            "--label-column",
            "5",
            "--out",
            str(out),
            *FAST,
            *extra,
        ],
        capsys,
    )
    assert rc == 0, err
    return out, json.loads((out / "metrics.json").read_text())


def test_random_split_of_overlapping_intervals_is_flagged_as_leakage(bed_data, tmp_path, capsys):
    out, metrics = _bed_run(bed_data, tmp_path, capsys)
    assert metrics["test"]["duplicates_with_train"]["overlap"] > 0
    assert "intervals overlap (or lie next to) training intervals" in (out / "report.md").read_text()


def test_split_by_region_keeps_overlapping_intervals_together(bed_data, tmp_path, capsys):
    out, metrics = _bed_run(bed_data, tmp_path, capsys, "--split-by", "region")
    assert metrics["test"]["duplicates_with_train"]["overlap"] == 0
    assert metrics["valid"]["duplicates_with_train"]["overlap"] == 0
    assert "split by region" in json.loads((out / "genoml.json").read_text())["data"]["test"]["source"]


def test_split_by_chrom_holds_out_whole_chromosomes(bed_data, tmp_path, capsys):
    out, _ = _bed_run(bed_data, tmp_path, capsys, "--split-by", "chrom")
    chroms = {}
    for split in ("train", "valid", "test"):
        path = out / f"predictions_{split}.tsv"
        if not path.exists():
            continue
        for row in csv.DictReader(open(path), delimiter="\t"):
            chrom = row["id"].split("_")[0]
            assert chroms.setdefault(chrom, split) == split


def test_split_by_similarity_keeps_near_duplicates_together(tmp_path, capsys):
    rng = random.Random(5)
    rows = []
    for fam in range(40):
        base = _rand(rng, 120)
        label = str(fam % 2)
        rows += [(_mutate(rng, base, 2), label) for _ in range(3)]
    data = write_csv(tmp_path / "families.csv", rows)
    out = tmp_path / "run"
    rc, _, err = run_cli(["finetune", str(data), "--out", str(out), *FAST], capsys)
    assert rc == 0, err
    random_near = json.loads((out / "metrics.json").read_text())["test"]["duplicates_with_train"]["near"]
    assert random_near > 0 and "near-duplicates of training sequences" in (out / "report.md").read_text()
    rc, _, err = run_cli(
        ["finetune", str(data), "--out", str(out), "--force", "--split-by", "similarity", *FAST], capsys
    )
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["duplicates_with_train"]["near"] == 0
    assert metrics["valid"]["duplicates_with_train"]["near"] == 0


def test_positive_class_flag_orders_labels_and_is_stated(tmp_path, capsys):
    rows = [(s, "AMP" if lab == "1" else "TM") for s, lab in planted_motif_rows(80, seed=4)]
    data = write_csv(tmp_path / "amp.csv", rows)
    out = tmp_path / "run"
    rc, _, err = run_cli(["finetune", str(data), "--out", str(out), "--positive-class", "TM", *FAST], capsys)
    assert rc == 0, err
    assert json.loads((out / "genoml.json").read_text())["labels"]["names"] == ["AMP", "TM"]
    assert "| positive_class | TM (--positive-class" in (out / "report.md").read_text()
    rc, _, err = run_cli(
        ["finetune", str(data), "--out", str(out), "--force", "--positive-class", "AMP", *FAST], capsys
    )
    assert rc == 0, err
    assert json.loads((out / "genoml.json").read_text())["labels"]["names"] == ["TM", "AMP"]
    pred = list(csv.DictReader(open(out / "predictions_test.tsv"), delimiter="\t"))
    assert list(pred[0]) == ["id", "true_label", "predicted", "prob_TM", "prob_AMP"]
    assert all(r["true_label"] in ("AMP", "TM") and r["predicted"] in ("AMP", "TM") for r in pred)
    rc, _, err = run_cli(
        ["finetune", str(data), "--out", str(tmp_path / "x"), "--positive-class", "nope", *FAST], capsys
    )
    assert rc == 2 and "--positive-class 'nope': not a label" in err and not (tmp_path / "x").exists()


def test_one_class_test_split_has_no_headline(tmp_path, capsys):
    rows = planted_motif_rows(60, seed=8)
    train = write_csv(tmp_path / "train.csv", rows[:40])
    test = write_csv(tmp_path / "test.csv", [(s, "1") for s, lab in rows[40:] if lab == "1"])
    out = tmp_path / "run"
    rc, _, err = run_cli(["finetune", str(train), "--test", str(test), "--out", str(out), *FAST], capsys)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["mcc"] is None and "one class" in metrics["test"]["undefined"]
    report = (out / "report.md").read_text()
    assert "**No headline:**" in report and "undefined: one class" in report
    assert "MCC = 0.0000" not in (out / "README.md").read_text()


def test_predict_jsonl_writes_numbers(tmp_path, capsys):
    data = write_csv(tmp_path / "d.csv", planted_motif_rows(60, seed=9))
    out = tmp_path / "run"
    assert run_cli(["finetune", str(data), "--out", str(out), *FAST], capsys)[0] == 0
    rc, stdout, err = run_cli(["predict", "-m", str(out), str(data), "--format", "jsonl"], capsys)
    assert rc == 0, err
    row = json.loads(stdout.splitlines()[0])
    assert (
        isinstance(row["prob_0"], float)
        and isinstance(row["n_windows"], int)
        and isinstance(row["prediction"], str)
    )
