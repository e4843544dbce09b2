"""scripts/gpu_check.sh runs on a GPU independently; its --cpu mode runs here so the script cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_script_passes_on_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--cpu"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=580,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    lines = proc.stdout.splitlines()
    head = lines.index("| command | status | rate | MFU |")
    table = [line for line in lines[head:] if line.startswith("| ") and "---" not in line]
    names = [line.split(" | ")[0][2:] for line in table[1:]]
    for want in (
        "pretrain base",
        "pretrain small",
        "finetune cnn",
        "finetune transformer probe",
        "finetune transformer lora",
        "finetune transformer full",
        "predict",
        "evaluate",
        "embed",
        "attention",
        "bench",
    ):
        assert any(n.startswith(want) for n in names), (want, names)
    assert all(" | ok | " in line for line in table[1:]), table
    assert "11 ok, 0 failed" in proc.stdout


def test_gpu_check_refuses_unknown_arguments():
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--gpu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "unknown argument --gpu" in proc.stderr
