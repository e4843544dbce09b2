"""genoml bench on tiny data: two models, two seeds, seconds; outputs, noise marks, spec parsing, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genoml.bench import compare, mark_noise, parse_model_spec, run_bench
from genoml.cli import main
from genoml.config import BenchConfig
from genoml.errors import InputError
from tests.tiny import planted_motif_rows, write_csv


@pytest.fixture(scope="module")
def motif_csvs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench-data")
    rows = planted_motif_rows(240, seed=3)
    return (
        str(write_csv(d / "train.csv", rows[:160])),
        str(write_csv(d / "valid.csv", rows[160:200])),
        str(write_csv(d / "test.csv", rows[200:])),
    )


def test_bench_cli_two_models_two_seeds(motif_csvs, tmp_path, capsys):
    train, valid, test = motif_csvs
    out = tmp_path / "bench"
    rc = main(
        [
            "-q",
            "bench",
            train,
            "--valid",
            valid,
            "--test",
            test,
            "--models",
            "cnn,kmer-linear",
            "--seeds",
            "2",
            "--out",
            str(out),
            "--epochs",
            "6",
        ]
    )
    assert rc == 0
    result = json.loads((out / "bench.json").read_text())
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"cnn", "kmer-linear"} and result["headline"] == "mcc" and result["n_test"] == 40
    for row in rows.values():
        assert len(row["per_seed"]) == 2 and len(row["runs"]) == 2
        assert row["mean"] == pytest.approx(np.mean(row["per_seed"]))
        for run_dir in row["runs"]:  # the numbers come from the run directories' own metrics.json
            m = json.loads((Path(run_dir) / "metrics.json").read_text())
            assert m["test"]["mcc"] in row["per_seed"]
    assert rows["cnn"]["trainable"] > rows["kmer-linear"]["trainable"] > 0
    assert sum(r["best"] for r in rows.values()) == 1
    loser = next(r for r in rows.values() if not r["best"])
    assert {"delta", "ci_low", "ci_high", "p_value"} <= set(loser["vs_best"]) and loser["vs_best"][
        "delta"
    ] <= 0
    table = (out / "bench.md").read_text()
    assert "| cnn |" in table and "| kmer-linear |" in table and "best" in table
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "| cnn |" in capsys.readouterr().out


def test_bench_without_valid_test_splits_once_and_reuses(motif_csvs, tmp_path):
    train, _, _ = motif_csvs
    cfg = BenchConfig(train=train, models=["kmer-linear"], seeds=2, out=str(tmp_path / "b"), epochs=1)
    first = run_bench(cfg)
    assert (tmp_path / "b" / "split" / "test.csv").is_file() and first["n_test"] == 16
    a, b = (Path(r) / "predictions_test.tsv" for r in first["rows"][0]["runs"])
    assert a.read_text().splitlines()[0].startswith("id") and len(a.read_text().splitlines()) == 17
    assert [ln.split("\t")[0] for ln in a.read_text().splitlines()] == [
        ln.split("\t")[0] for ln in b.read_text().splitlines()
    ]
    with pytest.raises(InputError, match="not empty"):
        run_bench(cfg)
    stamp = (Path(first["rows"][0]["runs"][0]) / "metrics.json").stat().st_mtime_ns
    cfg.reuse = True
    again = run_bench(cfg)
    assert (Path(again["rows"][0]["runs"][0]) / "metrics.json").stat().st_mtime_ns == stamp
    assert again["rows"][0]["per_seed"] == first["rows"][0]["per_seed"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("cnn", ("cnn", None)),
        ("kmer-linear", ("kmer-linear", None)),
        ("random:small", ("random:small", None)),
        ("random:small:probe", ("random:small", "probe")),
        ("data/m:partial:2", ("data/m", "partial:2")),
        ("data/m:lora", ("data/m", "lora")),
        ("/x/y", ("/x/y", None)),
    ],
)
def test_parse_model_spec(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"models": ["cnn:lora"]}, "baseline"),
        ({"seeds": 0}, "--seeds"),
        ({"models": []}, "--models"),
        ({"options": {"bogus": 1}}, "not finetune settings"),
        ({"time_budget_min": -1}, "--time-budget"),
    ],
)
def test_bad_bench_config_is_refused(kwargs, message, tmp_path):
    with pytest.raises(InputError, match=message):
        run_bench(BenchConfig(train="unused.csv", out=str(tmp_path / "o"), **kwargs))
    assert not (tmp_path / "o").exists()


def test_noise_marks_separate_clear_and_tied_models():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    perfect = np.eye(2)[y][:, None, :].repeat(2, axis=1)  # (N, S=2, C)
    noisy = perfect.copy()
    flip = rng.random(400) < 0.02
    noisy[flip] = noisy[flip][:, :, ::-1]
    chance = rng.dirichlet([1, 1], size=(400, 2))
    rows = [
        {"model": m, "mean": v, "sd": 0.01, "per_seed": [v, v]}
        for m, v in (("perfect", 1.0), ("noisy", 0.96), ("chance", 0.0))
    ]
    mark_noise(rows, {"perfect": perfect, "noisy": noisy, "chance": chance}, "binary", y)
    by = {r["model"]: r for r in rows}
    assert by["perfect"]["best"] and not by["chance"]["within_noise"]
    assert by["chance"]["vs_best"]["ci_high"] < -0.5
    assert compare("binary", y, perfect, perfect)["delta"] == 0.0


def test_bench_cli_adapt_steps(motif_csvs, tmp_path, capsys):
    train, valid, test = motif_csvs
    common = [
        "-q",
        "bench",
        train,
        "--valid",
        valid,
        "--test",
        test,
        "--models",
        "kmer-linear",
        "--seeds",
        "1",
    ]
    assert main([*common, "--out", str(tmp_path / "bad"), "--adapt-steps", "-1"]) == 2
    assert "--adapt-steps" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert main([*common, "--out", str(tmp_path / "b"), "--adapt-steps", "3"]) == 0
    run = json.loads((tmp_path / "b" / "00-kmer-linear" / "seed0" / "genoml.json").read_text())
    assert run["config"]["adapt_steps"] == 3
