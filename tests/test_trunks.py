"""Any genoml model as a base (issue 15): cnn / cnn-shallow / rnn runs and multitask folders, with
probe / partial:N / full; supervised multi-task pretraining with its leakage screen."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genoml.cli import main
from tests.tiny import planted_motif_rows, write_csv

COMMON = ["--epochs", "2", "--rc", "off", "--no-baselines", "--no-attention", "--threads", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("trunks")
    rows = planted_motif_rows(240, length=40, seed=11)
    rng = random.Random(0)
    three = [(s, lab if rng.random() < 0.7 else "2") for s, lab in rows]  # another task: 3 labels
    return {
        "train": write_csv(d / "train.csv", rows[:180]),
        "valid": write_csv(d / "valid.csv", rows[180:]),
        "train3": write_csv(d / "train3.csv", three[:180]),
        "valid3": write_csv(d / "valid3.csv", three[180:]),
    }


def finetune(data, out: Path, model: str, *extra: str, three: bool = False) -> int:
    train, valid = (data["train3"], data["valid3"]) if three else (data["train"], data["valid"])
    return main(
        [
            "-q",
            "finetune",
            str(train),
            "--valid",
            str(valid),
            "--out",
            str(out),
            "--model",
            model,
            *COMMON,
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def cnn_base(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "cnn"
    assert finetune(data, out, "cnn") == 0
    return out


def weights(run: Path) -> dict:
    return load_file(str(run / "model.safetensors"))


def same(a, b, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys, prefix
    return all((a[k] == b[k]).all() for k in keys)


@pytest.mark.parametrize("strategy", ["probe", "partial:1", "full"])
def test_cnn_run_is_a_base_with_a_new_head(strategy, data, cnn_base, tmp_path):
    out = tmp_path / "t"
    assert finetune(data, out, str(cnn_base), "--strategy", strategy, three=True) == 0
    base, new = weights(cnn_base), weights(out)
    assert base["classifier.net.1.weight"].shape[0] == 2 and new["classifier.net.1.weight"].shape[0] == 3
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["arch"] == "cnn" and meta["source_model"] == str(cnn_base) and meta["strategy"] == strategy
    frozen_stem = same(base, new, "encoder.stem.")  # includes BatchNorm running statistics
    frozen_last = same(base, new, "encoder.blocks.3.")
    frozen_first_blocks = same(base, new, "encoder.blocks.0.")
    if strategy == "probe":
        assert frozen_stem and frozen_last and same(base, new, "encoder.bin_proj.")
    elif strategy == "partial:1":
        assert frozen_stem and frozen_first_blocks and not frozen_last
    else:
        assert not frozen_stem and not frozen_last
    m = json.loads((out / "metrics.json").read_text())
    assert m["parameters"]["trainable"] < m["parameters"]["total"] if strategy != "full" else True
    assert (
        main(["-q", "predict", str(data["valid3"]), "--model", str(out), "-o", str(tmp_path / "p.tsv")]) == 0
    )


def test_rnn_shallow_and_attn_runs_are_bases_too(data, tmp_path):
    for arch, first, last in (
        ("rnn", "encoder.conv.", "encoder.rnn.weight_ih_l1"),
        ("cnn-shallow", "encoder.convs.0.", "encoder.convs.2."),
        ("cnn-attn", "encoder.conv.blocks.1.", "encoder.layers.1."),
    ):
        base = tmp_path / arch
        assert finetune(data, base, arch, "--epochs", "1") == 0
        out = tmp_path / f"{arch}-partial"
        assert finetune(data, out, str(base), "--strategy", "partial:1", three=True) == 0
        b, n = weights(base), weights(out)
        assert same(b, n, first) and not same(b, n, last)
        if arch == "rnn":
            assert same(b, n, "encoder.rnn.weight_ih_l0")


def test_bases_refused_with_the_flag_named(data, cnn_base, tmp_path, capsys):
    km = tmp_path / "km"
    assert finetune(data, km, "kmer-linear") == 0
    assert finetune(data, tmp_path / "a", str(km)) == 2
    assert "kmer-linear run has no trunk" in capsys.readouterr().err
    assert finetune(data, tmp_path / "b", str(cnn_base), "--strategy", "lora") == 2
    assert "--strategy lora" in capsys.readouterr().err
    assert finetune(data, tmp_path / "c", str(cnn_base), "--strategy", "partial:9") == 2
    assert "partial:1 .. partial:5" in capsys.readouterr().err
    prot = write_csv(tmp_path / "prot.csv", [("MKVLAAGIWWQRS", str(i % 2)) for i in range(40)])
    assert (
        main(["-q", "finetune", str(prot), "--model", str(cnn_base), "--out", str(tmp_path / "d"), *COMMON])
        == 2
    )
    assert "a dna trunk, but the input sequences are protein" in capsys.readouterr().err


def test_screen_overlap_exact_contains_inside_both_strands():
    from genoml.multitask import screen_overlap

    sources = ["ACGTACGTAA", "TTTTACGTACGTAAGG", "ACGT", "GGGGGGGGGG", "TTACGTACGT", "AAAACGTAAAAA"]
    keep, counts = screen_overlap(sources, ["ACGTACGTAA", "CGTAAA"])
    # exact; contains the target; inside the target; unrelated; the target's reverse complement; contains target 2
    assert keep.tolist() == [False, False, False, True, False, False]
    assert counts == {"exact": 2, "contains_target": 2, "inside_target": 1, "removed": 5, "kept": 1}
    keep, counts = screen_overlap(sources, ["ACGTACGTAA"], both_strands=False)
    assert keep.tolist() == [False, False, False, True, True, True]


def test_multitask_trunk_excludes_target_sequences_and_is_a_base(data, tmp_path):
    rows = planted_motif_rows(200, length=40, seed=12)
    target_test = write_csv(tmp_path / "target_test.csv", rows[:20])
    # a source holding 3 target sequences: one as is, one inside a longer sequence, one reverse-complemented
    from genoml.io import reverse_complement

    leaky = rows[20:120] + [
        rows[0],
        ("GG" + rows[1][0] + "CC", rows[1][1]),
        (reverse_complement(rows[2][0]), "1"),
    ]
    src1 = write_csv(tmp_path / "src1.csv", leaky)
    src2 = write_csv(tmp_path / "src2.csv", [(s, "a" if lab == "1" else "b") for s, lab in rows[120:]])
    out = tmp_path / "mt"
    assert (
        main(
            [
                "-q",
                "multitask",
                f"one={src1}",
                str(src2),
                "--exclude",
                str(target_test),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    meta = json.loads((out / "genoml.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    one = metrics["exclusion"]["per_dataset"]["one"]
    assert one["exact"] == 2 and one["contains_target"] == 1 and one["removed"] == 3 and one["total"] == 103
    assert meta["kind"] == "multitask" and [t["name"] for t in meta["tasks"]] == [
        "one",
        f"{tmp_path.name}/src2",
    ]
    assert set(weights(out)) >= {"heads.0.net.1.weight", "heads.1.net.1.weight", "encoder.stem.0.weight"}
    ft = tmp_path / "ft"
    assert finetune(data, ft, str(out), "--strategy", "probe", three=True) == 0
    assert same(weights(out), weights(ft), "encoder.")
    assert main(["-q", "multitask", str(src1), "--arch", "transformer", "--out", str(tmp_path / "x")]) == 2


def test_multitask_same_seed_same_weights(tmp_path):
    """--seed fixes the trunk's initial weights too (they were drawn before the seed was set)."""
    src = write_csv(tmp_path / "a.csv", planted_motif_rows(40, seed=3))
    runs = [tmp_path / "r1", tmp_path / "r2"]
    for out in runs:
        torch.manual_seed(len(str(out)) + runs.index(out))  # a different global RNG state before each run
        args = ["-q", "multitask", str(src), "--out", str(out), "--epochs", "1", "--threads", "1"]
        assert main(args) == 0
    first, second = weights(runs[0]), weights(runs[1])
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_failed_multitask_leaves_no_output(tmp_path):
    """A dataset that fails after --out was prepared (a regression file) removes what the run wrote."""
    rows = planted_motif_rows(60, length=40, seed=5)
    src1 = write_csv(tmp_path / "src1.csv", rows)
    src2 = write_csv(tmp_path / "src2.csv", [(s, f"{0.1 * i:.2f}") for i, (s, _) in enumerate(rows)])
    out = tmp_path / "mt"
    assert (
        main(["-q", "multitask", str(src1), str(src2), "--out", str(out), "--epochs", "1", "--threads", "1"])
        == 2
    )
    assert not out.exists()


def test_multitask_continues_a_cnn_run_trunk(data, cnn_base, tmp_path):
    """multitask --base RUN trains that run's cnn trunk further (not from random init) and records its arch."""
    src = write_csv(tmp_path / "src.csv", planted_motif_rows(80, length=40, seed=21))
    out = tmp_path / "mt"
    args = ["-q", "multitask", str(src), "--base", str(cnn_base), "--epochs", "1", "--lr", "1e-9"]
    assert main([*args, "--threads", "1", "--out", str(out)]) == 0
    assert json.loads((out / "genoml.json").read_text())["arch"] == "cnn"
    start, after = weights(cnn_base), weights(out)
    conv = "encoder.stem.0.weight"
    assert torch.allclose(start[conv], after[conv], atol=1e-6)  # lr ~0: the base's trunk, not a fresh init
    assert finetune(data, tmp_path / "ft", str(out), "--strategy", "probe") == 0
