"""predict / evaluate / embed: one row per record in input order, metrics reproduce, nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from genoml.cli import main
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pred")
    rows = planted_motif_rows(300, seed=5)
    write_csv(d / "train.csv", rows[:200])
    write_csv(d / "valid.csv", rows[200:250])
    write_csv(d / "test.csv", rows[250:])
    model = tiny_bert_folder(d / "bert")
    out = d / "run"
    rc = main(
        [
            "-q",
            "finetune",
            str(d / "train.csv"),
            "--valid",
            str(d / "valid.csv"),
            "--test",
            str(d / "test.csv"),
            "--out",
            str(out),
            "--model",
            str(model),
            "--epochs",
            "2",
            "--no-baselines",
            "--no-attention",
            "--window",
            "24",
        ]
    )  # 24 tokens: the 40-base test sequences need windows
    assert rc == 0
    return out, d


MIXED = (
    ">a\nACGTACGTTATAATGCAC\n>empty\n\n>n_rich\nNNNNNNNNNNACGTNNNN\n>long\n"
    + "ACGT" * 40
    + "\n>bad\nACGTXX!!\n>z\nTTTTGGGGCCCCAAAA\n"
)
MIXED_IDS = ["a", "empty", "n_rich", "long", "bad", "z"]


def read_tsv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def test_rows_match_input_order_file_and_stdin(run_dir, tmp_path, capsys, monkeypatch):
    out, _ = run_dir
    fa = tmp_path / "mixed.fa"
    fa.write_text(MIXED)
    assert main(["-q", "predict", "--model", str(out), str(fa)]) == 0
    rows = read_tsv(capsys.readouterr().out)
    assert [r["id"] for r in rows] == MIXED_IDS
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(MIXED.encode())))
    assert main(["-q", "predict", "--model", str(out), "-"]) == 0
    rows_stdin = read_tsv(capsys.readouterr().out)
    assert rows_stdin == rows
    by_id = {r["id"]: r for r in rows}
    assert "empty" in by_id["empty"]["flags"] and by_id["empty"]["prediction"] == "NA"
    assert "invalid_chars" in by_id["bad"]["flags"]
    assert "has_N" in by_id["n_rich"]["flags"]
    assert int(by_id["long"]["n_windows"]) > 1 and "windowed" in by_id["long"]["flags"]
    for r in rows:
        if r["prediction"] != "NA":
            p = np.array([float(r["prob_0"]), float(r["prob_1"])])
            assert abs(p.sum() - 1) < 1e-4
            assert r["prediction"] == str(int(p[1] >= 0.5))


def test_csv_input_and_jsonl_output(run_dir, tmp_path, capsys):
    out, d = run_dir
    assert main(["-q", "predict", "--model", str(out), str(d / "test.csv"), "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == [f"row{i}" for i in range(1, 51)]


def test_predict_reproduces_test_metrics(run_dir, tmp_path):
    from genoml.metrics import compute_metrics

    out, d = run_dir
    pred = tmp_path / "pred.tsv"
    assert main(["-q", "predict", "--model", str(out), str(d / "test.csv"), "-o", str(pred)]) == 0
    rows = read_tsv(pred.read_text())
    y = np.array([int(line.split(",")[1]) for line in (d / "test.csv").read_text().splitlines()[1:]])
    probs = np.array([[float(r["prob_0"]), float(r["prob_1"])] for r in rows])
    again = compute_metrics("binary", y, probs, ["0", "1"])
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert again["mcc"] == pytest.approx(saved["mcc"], abs=1e-4)
    assert again["auroc"] == pytest.approx(saved["auroc"], abs=1e-4)
    ev = tmp_path / "eval"
    assert main(["-q", "evaluate", "--model", str(out), str(d / "test.csv"), "--out", str(ev)]) == 0
    assert json.loads((ev / "metrics.json").read_text())["eval"]["mcc"] == pytest.approx(
        saved["mcc"], abs=1e-4
    )
    assert (ev / "report.md").is_file()


def test_interrupted_output_leaves_no_file(run_dir, tmp_path, monkeypatch):
    import genoml.predict as predict_mod

    out, d = run_dir
    target = tmp_path / "pred.tsv"
    calls = {"n": 0}
    original = predict_mod.predict_rows

    def boom(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args, **kw)

    monkeypatch.setattr(predict_mod, "predict_rows", boom)
    rc = main(
        ["-q", "predict", "--model", str(out), str(d / "test.csv"), "-o", str(target), "--chunk-size", "10"]
    )
    assert rc == 130
    assert not target.exists() and not list(tmp_path.glob("*.tsv*"))


def test_embed_plain_pretrained_and_run(run_dir, tmp_path):
    out, d = run_dir
    bert = tiny_bert_folder(tmp_path / "plain")
    for model in (bert, out):
        npz = tmp_path / f"{Path(model).name}.npz"
        assert (
            main(["-q", "embed", str(d / "test.csv"), "--model", str(model), "-o", str(npz), "--layer", "1"])
            == 0
        )
        z = np.load(npz)
        assert z["embeddings"].shape == (50, 32) and list(z["ids"][:2]) == ["row1", "row2"]
