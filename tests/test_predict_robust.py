"""predict never loses a record: mixed inputs keep their row count and order (FASTA, CSV, file, stdin,
gzip), a killed `predict -o` leaves no final file, and random FASTA-ish text either fails cleanly
(exit 2) or yields exactly one row per record (hypothesis).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from genoml.cli import main
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv

REPO = Path(__file__).resolve().parents[1]

# (id, sequence text, flag expected in the row or None, scored?)
MIXED = [
    ("valid", "ACGTTATAATGCACGTACGT", None, True),
    ("empty", "", "empty", False),
    ("all_n", "N" * 50, "has_N", True),
    ("over_long", "ACGT" * 700, "windowed", True),  # 2,800 bases: more than one 1,024-token CNN window
    ("invalid", "ACGT*!QQ", "invalid_chars", False),
    ("lower", "acgtnacgtt", "has_N", True),
    ("short", "A", None, True),
    ("valid2", "TTTTGGGGCCCCAAAA", None, True),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("robust")
    rows = planted_motif_rows(120, seed=21)
    train = write_csv(d / "train.csv", rows)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("genoml.report._plots_section", lambda *a, **k: "## Plots\n\n(skipped in this test)")
        bert = tiny_bert_folder(d / "bert_base")
        for name, model in (
            ("cnn", "cnn"),
            ("cnn-shallow", "cnn-shallow"),
            ("cnn-attn", "cnn-attn"),
            ("kmer-linear", "kmer-linear"),
            ("bert", str(bert)),
        ):
            out[name] = d / name
            assert (
                main(
                    [
                        "-q",
                        "finetune",
                        str(train),
                        "--model",
                        model,
                        "--out",
                        str(out[name]),
                        "--epochs",
                        "1",
                        "--no-baselines",
                        "--no-attention",
                        "--threads",
                        "1",
                    ]
                )
                == 0
            )
    return out


def fasta(records) -> str:
    return "".join(f">{rid}\n{seq}\n" for rid, seq, *_ in records)


def table(records) -> str:
    return "id,sequence\n" + "".join(f"{rid},{seq}\n" for rid, seq, *_ in records)


def read_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))


def check_mixed(rows: list[dict]) -> None:
    assert [r["id"] for r in rows] == [m[0] for m in MIXED]
    for row, (rid, _, flag, scored) in zip(rows, MIXED):
        if flag:
            assert flag in row["flags"].split(","), (rid, row)
        assert (row["prediction"] != "NA") == scored, (rid, row)
        if scored:
            assert abs(float(row["prob_0"]) + float(row["prob_1"]) - 1) < 1e-4
            assert int(row["n_windows"]) >= 1
        else:
            assert row["prob_0"] == row["prob_1"] == "NA" and row["n_windows"] == "0"


@pytest.mark.parametrize("kind", ["fasta", "csv", "fasta.gz"])
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_mixed_records_keep_count_and_order(kind, source, runs, tmp_path, capsys, monkeypatch):
    raw = (table(MIXED) if kind == "csv" else fasta(MIXED)).encode()
    if kind.endswith(".gz"):
        raw = gzip.compress(raw)
    if source == "file":
        path = tmp_path / f"mixed.{'csv' if kind == 'csv' else 'fa'}"
        path.write_bytes(raw)
        arg = str(path)
    else:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        arg = "-"
    capsys.readouterr()
    assert main(["-q", "predict", "--model", str(runs["cnn"]), arg, "--chunk-size", "3"]) == 0
    rows = read_rows(capsys.readouterr().out)
    check_mixed(rows)
    assert int(rows[3]["n_windows"]) > 1


def same_rows(a: list[dict], b: list[dict]) -> bool:
    """Equal ids, flags, windows and predictions; probabilities equal up to float noise of other batch shapes."""
    exact = ("id", "prediction", "n_windows", "flags")
    if [[r[k] for k in exact] for r in a] != [[r[k] for k in exact] for r in b]:
        return False
    probs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra.values(), rb.values()) if x != y]
    return all(abs(float(x) - float(y)) < 1e-5 for x, y in probs)


@pytest.mark.parametrize(
    "model",
    [
        "bert",
        "kmer-linear",
        "cnn",
        "cnn-shallow",
        "cnn-attn",
    ],
)
def test_chunk_and_batch_size_do_not_change_rows(model, runs, tmp_path, capsys):
    path = tmp_path / "mixed.fa"
    path.write_text(fasta(MIXED * 3))  # repeated ids: kept, flagged duplicate_id
    outputs = []
    for chunk, batch_tokens in (("1", "16384"), ("7", "64"), ("4096", "16384")):
        capsys.readouterr()
        assert (
            main(
                [
                    "-q",
                    "predict",
                    "--model",
                    str(runs[model]),
                    str(path),
                    "--chunk-size",
                    chunk,
                    "--batch-tokens",
                    batch_tokens,
                ]
            )
            == 0
        )
        outputs.append(read_rows(capsys.readouterr().out))
    assert len(outputs[0]) == 3 * len(MIXED)
    assert same_rows(outputs[0], outputs[1]) and same_rows(outputs[0], outputs[2])


def test_killed_predict_leaves_no_final_file(runs, tmp_path):
    big = tmp_path / "big.fa"
    with open(big, "w") as f:
        for i in range(50_000):
            f.write(f">r{i}\n{'ACGTTGCA'[i % 8 :] + 'ACGTACGTTATAATGCAA' * 2}\n")
    target = tmp_path / "pred.tsv"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genoml",
            "-q",
            "predict",
            "--model",
            str(runs["cnn"]),
            str(big),
            "-o",
            str(target),
            "--chunk-size",
            "100",
            "--threads",
            "1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        temps = list(tmp_path.glob(".pred.tsv.*.tmp"))
        if temps and temps[0].stat().st_size > 10_000:  # some chunks are written
            break
        time.sleep(0.02)
    assert proc.poll() is None, "predict finished (or failed) before it could be killed"
    proc.kill()
    assert proc.wait(60) == -signal.SIGKILL
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != big.name]
    assert leftovers and all(n.startswith(".pred.tsv.") and n.endswith(".tmp") for n in leftovers), leftovers
    # the next run writes the real file beside the stale temp file, which never takes its name
    small = tmp_path / "small.fa"
    small.write_text(fasta(MIXED))
    assert main(["-q", "predict", "--model", str(runs["cnn"]), str(small), "-o", str(target)]) == 0
    check_mixed(read_rows(target.read_text()))
    assert sorted(p.name for p in tmp_path.glob("pred.tsv*")) == ["pred.tsv"]


# --------------------------------------------------------------------------- fuzzing predict

SEQ_CHARS = "ACGTNacgtnURYXM*-. \t>"
line_text = st.text(alphabet=st.sampled_from(SEQ_CHARS), max_size=30)
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
header = st.builds(lambda s: ">" + s, st.one_of(st.text(alphabet="abcXYZ019_|/:. \t", max_size=10), any_text))
fasta_ish = st.builds(
    lambda lines, crlf: ("\r\n" if crlf else "\n").join(lines),
    st.lists(st.one_of(header, header, line_text, any_text, st.just("")), min_size=1, max_size=12),
    st.booleans(),
)


def expected_ids(text: str) -> list[str]:
    """First word of every header line, splitting lines as genoml's reader does (\\n, \\r, \\r\\n)."""
    return [
        line[1:].split()[0]
        for line in io.StringIO(text, newline=None)
        if line.startswith(">") and line[1:].split()
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=fasta_ish)
def test_predict_on_random_text_exits_0_or_2_and_loses_nothing(runs, text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.fa"
        path.write_bytes(text.encode("utf-8"))
        target = Path(d) / "out.tsv"
        rc = main(["-q", "predict", "--model", str(runs["kmer-linear"]), str(path), "-o", str(target)])
        assert rc in (0, 2)
        event(f"exit {rc}")
        if rc == 2:
            assert not target.exists()
            return
        rows = read_rows(target.read_text())
        assert [r["id"] for r in rows] == expected_ids(text)
        assert sorted(os.listdir(d)) == ["out.tsv", "x.fa"]


def test_cnn_weights_of_another_architecture_exit_2(runs, tmp_path, capsys):
    """A `cnn` run saved by a genoml whose cnn differed (other layer names/shapes) is refused clearly."""
    import shutil

    import torch
    from safetensors.torch import save_file

    old = tmp_path / "old-cnn"
    shutil.copytree(runs["cnn"], old)
    save_file({"encoder.net.0.weight": torch.zeros(128, 4, 11)}, str(old / "model.safetensors"))
    path = tmp_path / "x.fa"
    path.write_text(">a\nACGT\n")
    assert main(["-q", "predict", "--model", str(old), str(path)]) == 2
    assert "weights do not fit" in capsys.readouterr().err


def test_long_inference_reports_progress(monkeypatch, caplog):
    """A single very long record (many windows) logs progress lines instead of running silently."""
    import logging

    import genoml.inference as inference
    from genoml.data import LabelSpace
    from genoml.inference import Predictor
    from genoml.models import build_baseline
    from genoml.tokenizers import build_tokenizer

    monkeypatch.setattr(inference, "PROGRESS_EVERY_S", 0.0)
    tok = build_tokenizer("char")
    labels = LabelSpace("binary", ["0", "1"])
    model = build_baseline("cnn-shallow", tok, 2, labels=labels.names, task="binary")
    predictor = Predictor(model, labels, tokenizer=tok, max_tokens=64, batch_tokens=64 * 8)
    with caplog.at_level(logging.INFO, logger="genoml"):
        probs = predictor.scores(["ACGT" * 1000])  # one record, ~130 windows, ~16 batches
    assert probs.shape == (1, 2)
    lines = [r.getMessage() for r in caplog.records if "windows (" in r.getMessage()]
    assert lines and re.match(r"inference: [\d,]+ of [\d,]+ windows \(\d+%\)", lines[0]), lines
