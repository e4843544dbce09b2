"""Determinism on CPU: the same seed and thread count give identical metrics.json, history and weights
(cnn and a tiny BERT), and genoml.json holds what is needed to rerun: rerunning its recorded command
reproduces the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genoml.cli import main
from genoml.config import FinetuneConfig
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv

TIMING_KEYS = {"train_seconds", "elapsed_s", "seconds"}


@pytest.fixture(autouse=True)
def _fast_reports(monkeypatch):
    monkeypatch.setattr("genoml.report._plots_section", lambda *a, **k: "## Plots\n\n(skipped in this test)")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("determinism")
    rows = planted_motif_rows(200, seed=41)
    return {
        "train": write_csv(d / "train.csv", rows[:160]),
        "test": write_csv(d / "test.csv", rows[160:]),
        "bert": tiny_bert_folder(d / "bert"),
    }


def without_timing(obj):
    if isinstance(obj, dict):
        return {
            k: without_timing(v) for k, v in obj.items() if k not in TIMING_KEYS and not k.endswith("_per_s")
        }
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def fingerprint(run: Path) -> tuple:
    """Everything a run produced that must not depend on the wall clock."""
    weights = {}
    for name in ("model.safetensors", "head.safetensors"):
        if (run / name).is_file():
            weights |= {f"{name}:{k}": v for k, v in load_file(str(run / name)).items()}
    return (
        without_timing(json.loads((run / "metrics.json").read_text())),
        without_timing(json.loads((run / "history.json").read_text())),
        (run / "predictions_test.tsv").read_text(),
        {k: v.numpy().tobytes() for k, v in weights.items()},
    )


def finetune(data, out: Path, *extra: str) -> list[str]:
    argv = [
        "-q",
        "finetune",
        str(data["train"]),
        "--test",
        str(data["test"]),
        "--out",
        str(out),
        "--seed",
        "5",
        "--threads",
        "1",
        "--epochs",
        "2",
        "--no-attention",
        *extra,
    ]
    assert main(argv) == 0
    return argv


def test_cnn_same_seed_same_run_and_rerun_from_genoml_json(data, tmp_path):
    argv = finetune(data, tmp_path / "a", "--model", "cnn", "--no-baselines")
    first = fingerprint(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "genoml.json").read_text())
    assert meta["command"] == ["genoml", *argv]
    # rerun from the record alone: the recorded command, only the output folder changed
    assert main([*meta["command"][1:], "--out", str(tmp_path / "b")]) == 0
    assert fingerprint(tmp_path / "b") == first
    # and the comparison can fail: another seed is another run
    finetune(data, tmp_path / "c", "--model", "cnn", "--no-baselines", "--seed", "6")
    other = fingerprint(tmp_path / "c")
    assert other[0] != first[0] and other[3] != first[3]


def test_tiny_bert_same_seed_same_run(data, tmp_path):
    finetune(data, tmp_path / "a", "--model", str(data["bert"]), "--strategy", "full", "--lr", "1e-3")
    finetune(data, tmp_path / "b", "--model", str(data["bert"]), "--strategy", "full", "--lr", "1e-3")
    a, b = fingerprint(tmp_path / "a"), fingerprint(tmp_path / "b")
    assert a == b
    assert "baselines" in a[0]  # the kmer-linear and majority baselines are deterministic too


def test_genoml_json_has_everything_to_rerun(data, tmp_path):
    out = tmp_path / "run"
    argv = finetune(data, out, "--model", "kmer-linear")
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["command"] == ["genoml", *argv]
    cfg = FinetuneConfig.from_dict(meta["config"])
    assert (cfg.data.train, cfg.data.test, cfg.seed, cfg.threads, cfg.model) == (
        str(data["train"]),
        str(data["test"]),
        5,
        1,
        "kmer-linear",
    )
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg  # the stored config round-trips
    for split, path in (("train", data["train"]), ("test", data["test"])):
        assert meta["data"][split]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (
            meta["data"][split]["n"]
            == len(path.read_text().splitlines()) - 1 - (split == "train") * (meta["data"]["valid"]["n"])
        )
    assert meta["data"]["valid"]["source"] == f"{data['train']} (split, seed 5)"
    versions = meta["versions"]
    assert versions["torch"] == torch.__version__ and {"genoml", "python", "transformers", "platform"} <= set(
        versions
    )
    for key in ("labels", "alphabet", "arch", "seed", "threshold"):
        assert key in meta, key
