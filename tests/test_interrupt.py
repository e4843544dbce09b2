"""Interrupted fine-tuning: SIGKILL at a random step then --resume gives the uninterrupted run's weights
and metrics; SIGINT exits 130 with a usable checkpoint; a checkpoint without COMPLETE is ignored.

The interrupted runs are real `python -m genoml` processes; the reference and the resumed runs run
in-process with the same seed and thread count (CPU results do not depend on the process).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genoml.cli import main
from genoml.train import latest_checkpoint, load_tensors
from tests.tiny import planted_motif_rows, write_csv

REPO = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"train_seconds", "elapsed_s", "seconds"}


def no_plots(mp: pytest.MonkeyPatch) -> None:
    """The report's PNGs take seconds and are not under test here."""
    mp.setattr("genoml.report._plots_section", lambda *a, **k: "## Plots\n\n(skipped in this test)")


@pytest.fixture(autouse=True)
def _fast_reports(monkeypatch):
    no_plots(monkeypatch)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict:
    """Data, the finetune arguments, and the reference (uninterrupted) run."""
    d = tmp_path_factory.mktemp("interrupt")
    rows = planted_motif_rows(240, length=60, seed=7)
    files = [
        write_csv(d / "train.csv", rows[:160]),
        write_csv(d / "valid.csv", rows[160:200]),
        write_csv(d / "test.csv", rows[200:]),
    ]
    args = [
        "finetune",
        str(files[0]),
        "--valid",
        str(files[1]),
        "--test",
        str(files[2]),
        "--model",
        "cnn",
        "--epochs",
        "6",
        "--patience",
        "10",
        "--seed",
        "3",
        "--threads",
        "1",
        "--no-baselines",
        "--no-attention",
    ]
    reference = d / "reference"
    with pytest.MonkeyPatch.context() as mp:
        no_plots(mp)
        assert main(["-q", *args, "--out", str(reference)]) == 0
    return {"dir": d, "args": args, "reference": reference}


def without_timing(obj):
    """A copy of metrics/history JSON without wall-clock fields (train_seconds, *_per_s, elapsed_s)."""
    if isinstance(obj, dict):
        return {
            k: without_timing(v) for k, v in obj.items() if k not in TIMING_KEYS and not k.endswith("_per_s")
        }
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def assert_same_run(run: Path, reference: Path) -> None:
    for name in ("metrics.json", "history.json"):
        got = without_timing(json.loads((run / name).read_text()))
        want = without_timing(json.loads((reference / name).read_text()))
        assert got == want, name
    a, b = load_file(str(run / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert (run / "predictions_test.tsv").read_text() == (reference / "predictions_test.tsv").read_text()


def start(args: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    log = open(out.parent / f"{out.name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "genoml", *args, "--out", str(out)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any((out / "checkpoints").glob("step-*/COMPLETE")):
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended (rc {proc.returncode}) before writing a checkpoint: "
                + (out.parent / f"{out.name}.log").read_text()[-2000:]
            )
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint within the time limit")


def test_sigkill_at_a_random_step_then_resume_matches_uninterrupted(job, capsys):
    out = job["dir"] / "killed"
    proc = start(job["args"], out)
    wait_for_checkpoint(proc, out)
    time.sleep(random.Random(1).uniform(0.0, 1.0))  # somewhere in the next epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.kill()
    assert proc.wait(60) == -signal.SIGKILL
    assert not (out / "metrics.json").exists()  # it died mid-training
    # a checkpoint folder that never got its COMPLETE marker (a kill during the write) must be ignored
    fake = out / "checkpoints" / "step-999999"
    fake.mkdir()
    (fake / "model.safetensors").write_bytes(b"torn write")
    (fake / "state.json").write_text("{")
    resumed_from = latest_checkpoint(out)
    assert resumed_from is not None and resumed_from.name != fake.name
    capsys.readouterr()
    assert main([*job["args"], "--out", str(out), "--resume"]) == 0
    assert f"resumed from {resumed_from} (step {int(resumed_from.name[5:])})" in capsys.readouterr().err
    assert_same_run(out, job["reference"])
    assert not (out / ".incomplete").exists()


def test_sigint_exits_130_with_a_usable_checkpoint(job, capsys):
    out = job["dir"] / "sigint"
    proc = start(job["args"], out)
    wait_for_checkpoint(proc, out)
    time.sleep(random.Random(2).uniform(0.0, 0.5))
    assert proc.poll() is None, "the run finished before SIGINT"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130
    log = (out.parent / "sigint.log").read_text()
    assert "SIGINT received" in log
    ckpt = latest_checkpoint(out)
    state = json.loads((ckpt / "state.json").read_text())
    assert ckpt.name == f"step-{state['step']:06d}" and state["step"] < 30
    assert load_tensors(ckpt / "model.safetensors")  # readable weights
    assert json.loads((out / "metrics.json").read_text())["stopped"] == "interrupted"
    # the interrupted run directory is usable as is ...
    capsys.readouterr()
    assert main(["-q", "predict", "--model", str(out), str(job["dir"] / "test.csv")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 41
    # ... and resuming from its checkpoint ends exactly where the uninterrupted run did
    capsys.readouterr()
    assert main([*job["args"], "--out", str(out), "--resume"]) == 0
    assert f"resumed from {ckpt} (step {state['step']})" in capsys.readouterr().err
    assert_same_run(out, job["reference"])


def test_checkpoint_without_complete_marker_is_ignored(job, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["-q", *job["args"], "--out", str(out), "--epochs", "2"]) == 0
    ckpt = latest_checkpoint(out)
    (ckpt / "COMPLETE").unlink()
    assert latest_checkpoint(out) is None
    capsys.readouterr()
    assert main([*job["args"], "--out", str(out), "--resume"]) == 0
    assert "no complete checkpoint" in capsys.readouterr().err  # started again from step 0
    assert_same_run(out, job["reference"])
