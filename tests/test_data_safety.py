"""Issue 12, data loss first: --force only replaces genoml's own outputs; an output never overwrites an input;
failed or terminated commands leave no partial output; outputs honour the umask.

Each case asserts the exit code, the message and that the user's files are byte-for-byte intact.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genoml.cli import main
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv

REPO = Path(__file__).resolve().parents[1]
FAST = ["--model", "kmer-linear", "--epochs", "1", "--no-baselines", "--no-attention", "--threads", "1"]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["-q", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's project folder: data, notes, a subfolder."""
    d = tmp_path / "project"
    (d / "data").mkdir(parents=True)
    write_csv(d / "data" / "good.csv", planted_motif_rows(80, seed=5))
    (d / "data" / "README").write_text("where the data came from\n")
    (d / "notes.txt").write_text("my notes\n")
    write_csv(d / "mydata.csv", planted_motif_rows(80, seed=6))
    return d


# --------------------------------------------------------------------------- --force never deletes user data


def test_force_on_the_folder_of_the_input_is_refused(project, capsys):
    before = snapshot(project)
    rc, out, err = run_cli(
        ["finetune", str(project / "data/good.csv"), "--out", str(project / "data"), "--force", *FAST], capsys
    )
    assert rc == 2, err
    assert "holds the input" in err and "--force never deletes inputs" in err
    assert snapshot(project) == before and out == ""


def test_force_on_the_working_directory_is_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    before = snapshot(project)
    rc, _, err = run_cli(["finetune", "mydata.csv", "--out", ".", "--force", *FAST], capsys)
    assert rc == 2, err
    assert "--out .: is the working directory" in err
    assert snapshot(project) == before


def test_force_on_an_ancestor_of_the_working_directory_is_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project / "data")
    before = snapshot(project)
    rc, _, err = run_cli(["finetune", "good.csv", "--out", "..", "--force", *FAST], capsys)
    assert rc == 2 and "a folder that holds the working directory" in err, err
    assert snapshot(project) == before


def test_force_on_a_folder_of_other_files_is_refused(project, tmp_path, capsys):
    other = tmp_path / "results"
    other.mkdir()
    (other / "thesis.docx").write_bytes(b"\x00important")
    rc, _, err = run_cli(
        ["finetune", str(project / "mydata.csv"), "--out", str(other), "--force", *FAST], capsys
    )
    assert rc == 2 and "not a genoml output folder" in err, err
    assert (other / "thesis.docx").read_bytes() == b"\x00important"


def test_force_on_the_model_folder_is_refused(project, tmp_path, capsys):
    bert = tiny_bert_folder(tmp_path / "bert")
    (bert / "genoml.json").write_text("{}")  # even a folder genoml recognises: it is an input here
    before = snapshot(bert)
    rc, _, err = run_cli(
        [
            "finetune",
            str(project / "mydata.csv"),
            "--model",
            str(bert),
            "--out",
            str(bert),
            "--force",
            "--epochs",
            "1",
            "--no-baselines",
            "--no-attention",
        ],
        capsys,
    )
    assert rc == 2 and "is also an input" in err, err
    assert snapshot(bert) == before


def test_resume_into_a_folder_of_other_files_is_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    before = snapshot(project)
    rc, _, err = run_cli(["finetune", "mydata.csv", "--out", ".", "--resume", *FAST], capsys)
    assert rc == 2 and "nothing to resume there" in err, err
    assert snapshot(project) == before


def test_force_replaces_a_genoml_run_but_keeps_the_users_files(project, tmp_path, capsys):
    run = tmp_path / "run"
    rc, _, err = run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)
    assert rc == 0, err
    (run / "my_analysis.txt").write_text("keep me\n")
    (run / "my_plot.png").write_bytes(b"png")  # a genoml-like name, but not in the marker's list: the user's
    rc, _, err = run_cli(
        ["finetune", str(project / "mydata.csv"), "--out", str(run), "--force", "--seed", "1", *FAST], capsys
    )
    assert rc == 0, err
    assert (run / "my_analysis.txt").read_text() == "keep me\n" and (
        run / "my_plot.png"
    ).read_bytes() == b"png"
    assert json.loads((run / "genoml.json").read_text())["seed"] == 1
    marker = json.loads((run / ".genoml").read_text())
    assert "my_analysis.txt" in marker["foreign"] and "genoml.json" in marker["files"]
    (run / "later.txt").write_text("added after the second run\n")  # then --resume, then --force again
    assert (
        run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), "--resume", *FAST], capsys)[0]
        == 0
    )
    assert (
        run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), "--force", *FAST], capsys)[0]
        == 0
    )
    assert {"my_analysis.txt", "my_plot.png", "later.txt"} <= {p.name for p in run.iterdir()}


# --------------------------------------------------------------------------- outputs never overwrite inputs


def test_predict_output_equal_to_input_is_refused(project, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)[0] == 0
    target = project / "mydata.csv"
    before = target.read_bytes()
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    for output in (str(target), str(link)):  # the same file, also through a symlink
        rc, out, err = run_cli(["predict", "-m", str(run), str(target), "-o", output], capsys)
        assert rc == 2 and "is also an input" in err, err
        assert target.read_bytes() == before and out == ""


def test_predict_output_that_is_a_directory_is_refused(project, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)[0] == 0
    rc, _, err = run_cli(
        ["predict", "-m", str(run), str(project / "mydata.csv"), "-o", str(project / "data")], capsys
    )
    assert rc == 2 and "is a directory" in err, err


# --------------------------------------------------------------------------- modes and permissions


def test_outputs_honour_the_umask(project, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        run = tmp_path / "run"
        rc, _, err = run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)
        assert rc == 0, err
        modes = {
            str(p.relative_to(run)): stat.S_IMODE(p.stat().st_mode) for p in run.rglob("*") if p.is_file()
        }
        assert modes and all(m == 0o644 for m in modes.values()), modes
        pred = tmp_path / "pred.tsv"
        assert (
            run_cli(["predict", "-m", str(run), str(project / "mydata.csv"), "-o", str(pred)], capsys)[0] == 0
        )
        assert stat.S_IMODE(pred.stat().st_mode) == 0o644
    finally:
        os.umask(old)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
@pytest.mark.parametrize("command", ["finetune", "predict", "force"])
def test_read_only_output_folder(command, project, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    run = tmp_path / "run"
    assert run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)[0] == 0
    if command == "force":
        ro = run
    ro.chmod(0o555)
    try:
        if command == "predict":
            argv = ["predict", "-m", str(run), str(project / "mydata.csv"), "-o", str(ro / "p.tsv")]
        else:
            argv = [
                "finetune",
                str(project / "mydata.csv"),
                "--out",
                str(ro / "x" if command == "finetune" else ro),
                *FAST,
            ] + (["--force"] if command == "force" else [])
        rc, _, err = run_cli(argv, capsys)
        assert rc == 2 and ("permission denied" in err or "not writable" in err), err
        assert "Traceback" not in err
    finally:
        ro.chmod(0o755)


# --------------------------------------------------------------------------- no partial output


def test_sigterm_during_predict_leaves_no_temporary_file(project, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)[0] == 0
    big = tmp_path / "big.fa"
    with open(big, "w") as fh:
        for i in range(200_000):
            fh.write(f">r{i}\nACGTTATAATGCACGTACGTAGCTAGCTAGCATCGACT\n")
    outdir = tmp_path / "out"
    outdir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genoml",
            "-q",
            "predict",
            "-m",
            str(run),
            str(big),
            "-o",
            str(outdir / "pred.tsv"),
            "--chunk-size",
            "256",
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not any(outdir.iterdir()):
        time.sleep(0.05)
    assert any(outdir.iterdir()), "predict did not start writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    assert list(outdir.iterdir()) == []  # neither the .tmp file nor a half-written output


def test_attention_bad_layer_leaves_no_out(tmp_path, capsys):
    rows = planted_motif_rows(60, seed=3)
    train = write_csv(tmp_path / "train.csv", rows)
    run = tmp_path / "run"
    rc, _, err = run_cli(
        [
            "finetune",
            str(train),
            "--model",
            str(tiny_bert_folder(tmp_path / "bert")),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--no-baselines",
            "--no-attention",
            "--threads",
            "1",
        ],
        capsys,
    )
    assert rc == 0, err
    out = tmp_path / "att"
    rc, _, err = run_cli(
        ["attention", str(train), "--model", str(run), "--out", str(out), "--layer", "42"], capsys
    )
    assert rc == 2 and "--layer" in err, err
    assert not out.exists()


def test_failed_pretrain_leaves_no_cache(tmp_path, capsys, monkeypatch):
    fa = tmp_path / "g.fa"
    fa.write_text(">g\n" + "ACGTTGCA" * 400 + "\n")
    out = tmp_path / "pre"

    def boom(*a, **k):
        raise RuntimeError("simulated failure after the corpus cache was built")

    monkeypatch.setattr("genoml.pretrain.MaskedBatcher", boom)
    rc, _, err = run_cli(
        ["pretrain", str(fa), "--out", str(out), "--preset", "tiny", "--window", "64", "--max-steps", "2"],
        capsys,
    )
    assert rc == 1 and "internal error: RuntimeError" in err and "Traceback" not in err
    assert not out.exists()


def test_bench_validates_every_model_name_before_training(tmp_path, capsys):
    train = write_csv(tmp_path / "train.csv", planted_motif_rows(60, seed=2))
    out = tmp_path / "bench"
    t0 = time.time()
    rc, _, err = run_cli(
        ["bench", str(train), "--models", "cnn,nonsense", "--out", str(out), "--seeds", "1"], capsys
    )
    assert rc == 2 and "--models nonsense" in err, err
    assert not out.exists() and time.time() - t0 < 30


@pytest.mark.parametrize("command", ["finetune", "predict", "embed", "evaluate", "attention"])
def test_unwritable_output_is_exit_2_without_traceback(command, project, tmp_path, capsys, monkeypatch):
    """Root ignores folder permissions, so the check itself is made to fail: the message path is what is tested."""
    run = tmp_path / "run"
    assert run_cli(["finetune", str(project / "mydata.csv"), "--out", str(run), *FAST], capsys)[0] == 0
    monkeypatch.setattr("genoml.outputs.os.access", lambda *a, **k: False)
    target = tmp_path / "ro"
    data = str(project / "mydata.csv")
    argv = {
        "finetune": ["finetune", data, "--out", str(target), *FAST],
        "predict": ["predict", "-m", str(run), data, "-o", str(target / "p.tsv")],
        "embed": [
            "embed",
            data,
            "--model",
            str(tiny_bert_folder(tmp_path / "bert")),
            "-o",
            str(target / "e.npz"),
        ],
        "evaluate": ["evaluate", data, "--model", str(run), "--out", str(target)],
        "attention": ["attention", data, "--model", str(run), "--out", str(target)],
    }[command]
    if command in ("predict", "embed"):
        target.mkdir()
    rc, out, err = run_cli(argv, capsys)
    if command == "attention":  # a kmer-linear run has no attributions: refused before the folder is made
        assert rc == 2 and "kmer-linear" in err, err
    else:
        assert rc == 2 and "not writable (permission denied)" in err, err
    assert "Traceback" not in err and out == ""
    assert not target.exists() or list(target.iterdir()) == []


def test_an_os_error_while_writing_is_exit_2_and_removes_the_run(project, tmp_path, capsys, monkeypatch):
    def full_disk(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "report.md"))

    monkeypatch.setattr("genoml.report.write_report", full_disk)
    out = tmp_path / "run"
    rc, _, err = run_cli(["finetune", str(project / "mydata.csv"), "--out", str(out), *FAST], capsys)
    assert rc == 2 and "no space left on the device" in err and "Traceback" not in err, err
    assert not out.exists()
