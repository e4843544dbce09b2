"""Defaults vs the old recipe on GUE tasks, equal wall-clock budgets (issue 16, item "defaults that win").

Arms per task (each a plain `genoml finetune` command, printed in the table):
- default: no flag but the data and --time-budget (i.e. --model auto, --rc auto, recipe defaults);
- recipe cnn / recipe cnn-shallow: the BENCHMARKS.md recipe (--rc on, batch 64, patience 30, epochs 30),
  the two run side by side with one thread each (the same 2 cores the default uses);
- old defaults: --model cnn with the former defaults (epochs 10, batch 32, patience 3, no reverse complement).

Usage: python scripts/bench_defaults.py --tasks mouse/3,prom/prom_core_tata --budget 4 --out runs/bench-defaults
Reads ../shared/data/gue; skips cleanly when it is absent. Writes OUT/summary.json and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

GUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gue"


def arms(budget: float) -> dict[str, list[str]]:
    recipe = [
        "--rc",
        "on",
        "--batch-size",
        "64",
        "--patience",
        "30",
        "--epochs",
        "30",
        "--threads",
        "1",
        "--no-baselines",
        "--no-attention",
    ]
    return {
        "default": [],
        "recipe cnn": ["--model", "cnn", *recipe],
        "recipe cnn-shallow": ["--model", "cnn-shallow", *recipe],
        "old defaults cnn": [
            "--model",
            "cnn",
            "--rc",
            "off",
            "--epochs",
            "10",
            "--batch-size",
            "32",
            "--patience",
            "3",
            "--threads",
            "1",
            "--no-baselines",
            "--no-attention",
        ],
    }


def command(task: str, out: Path, extra: list[str], budget: float) -> list[str]:
    d = GUE / task
    return [
        "genoml",
        "finetune",
        str(d / "train.csv"),
        "--valid",
        str(d / "dev.csv"),
        "--test",
        str(d / "test.csv"),
        "--time-budget",
        f"{budget:g}",
        "--out",
        str(out),
        "--force",
        *extra,
    ]


def run(cmds: list[list[str]], logs: list[Path]) -> float:
    t0 = time.time()
    procs = []
    for c, lg in zip(cmds, logs):
        lg.parent.mkdir(parents=True, exist_ok=True)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "genoml", *c[1:]], stdout=subprocess.DEVNULL, stderr=open(lg, "w")
            )
        )
    for p in procs:
        if p.wait() != 0:
            print(f"failed: {p.args}", file=sys.stderr)
    return time.time() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="mouse/3,prom/prom_core_tata")
    ap.add_argument("--budget", type=float, default=4.0)
    ap.add_argument("--out", default="runs/bench-defaults")
    a = ap.parse_args()
    if not GUE.is_dir():
        print(f"skipped: {GUE} absent", file=sys.stderr)
        return 0
    out = Path(a.out)
    rows = []
    for task in a.tasks.split(","):
        plan = arms(a.budget)
        groups = [["default"], ["recipe cnn", "recipe cnn-shallow"], ["old defaults cnn"]]
        for group in groups:
            cmds = [
                command(task, out / task / name.replace(" ", "_"), plan[name], a.budget) for name in group
            ]
            wall = run(cmds, [out / task / (name.replace(" ", "_") + ".log") for name in group])
            for name, c in zip(group, cmds):
                m = json.loads((out / task / name.replace(" ", "_") / "metrics.json").read_text())
                rows.append(
                    {
                        "task": task,
                        "arm": name,
                        "valid_mcc": m["valid"]["mcc"],
                        "test_mcc": m["test"]["mcc"],
                        "chosen": m.get("chosen"),
                        "rc": (m.get("rc") or {}).get("decision"),
                        "wall_s": round(wall, 1),
                        "command": " ".join(c),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, budget {a.budget:g} min per arm (wall, 2 cores)",
        "",
        "| task | arm | valid MCC ×100 | test MCC ×100 | chosen (auto) | rc | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['arm']} | {100 * r['valid_mcc']:.2f} | {100 * r['test_mcc']:.2f} | "
            f"{r['chosen'] or '–'} | {r['rc'] or '–'} | {r['wall_s']:.0f} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
