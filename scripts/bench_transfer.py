"""Reduced "Transfer" benchmark (issue 15): scratch vs supervised-pretrained cnn trunk, equal budgets.

1. `genoml multitask` trains one cnn trunk on the training splits of the GUE tasks that are not targets
   (default tf/0, tf/1, prom_core_tata), with every target's dev and test file as --exclude (exact,
   containing and contained sequences, both strands, are removed; counts in the trunk's metrics.json);
2. per target task and seed: `genoml finetune --model cnn` (scratch) and `--model TRUNK` (full fine-tuning
   of the pretrained trunk, new head), same --time-budget, seed, threads and other defaults; two at a time.

Usage: python scripts/bench_transfer.py --out runs/transfer --seeds 3 --budget 2 --pretrain-budget 12
Reads ../shared/data/gue (skips cleanly when absent). Writes OUT/summary.json and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

GUE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gue"


def sh(argv: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "genoml", *argv], stdout=subprocess.DEVNULL, stderr=open(log, "w")
    )


def rel(p: Path) -> str:
    try:
        return "../shared/" + str(p.relative_to(GUE.parent.parent))
    except ValueError:
        return str(p)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/transfer")
    ap.add_argument("--targets", default="mouse/0,mouse/3,prom/prom_300_tata")
    ap.add_argument("--sources", default="tf/0,tf/1,prom/prom_core_tata")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.0, help="minutes per fine-tuning run (both arms)")
    ap.add_argument("--pretrain-budget", type=float, default=12.0)
    ap.add_argument("--arch", default="cnn")
    ap.add_argument("--summary-only", action="store_true", help="tabulate the finished runs, start nothing")
    a = ap.parse_args()
    if not GUE.is_dir():
        print(f"skipped: {GUE} absent", file=sys.stderr)
        return 0
    out = Path(a.out)
    targets, sources = a.targets.split(","), a.sources.split(",")
    trunk = out / "trunk"
    pre_cmd = ["multitask", *[f"{s}={GUE / s / 'train.csv'}" for s in sources]]
    for t in targets:
        pre_cmd += ["--exclude", str(GUE / t / "dev.csv"), "--exclude", str(GUE / t / "test.csv")]
    pre_cmd += [
        "--arch",
        a.arch,
        "--time-budget",
        f"{a.pretrain_budget:g}",
        "--out",
        str(trunk),
        "--force",
        "--threads",
        "2",
        "--epochs",
        "30",
    ]
    if not (trunk / "genoml.json").is_file():
        t0 = time.time()
        if sh(pre_cmd, out / "trunk.log").wait() != 0:
            print("multitask failed; see", out / "trunk.log", file=sys.stderr)
            return 1
        print(f"trunk in {time.time() - t0:.0f}s", flush=True)
    jobs = []  # seed-major order: an interrupted benchmark has as many seeds as possible on every task
    for seed in range(a.seeds):
        for t in targets:
            d = GUE / t
            for arm, model in (("scratch", a.arch), ("supervised-pretrained", str(trunk))):
                run = out / t / f"{arm}-seed{seed}"
                argv = [
                    "finetune",
                    str(d / "train.csv"),
                    "--valid",
                    str(d / "dev.csv"),
                    "--test",
                    str(d / "test.csv"),
                    "--model",
                    model,
                    "--time-budget",
                    f"{a.budget:g}",
                    "--seed",
                    str(seed),
                    "--threads",
                    "1",
                    "--no-baselines",
                    "--no-attention",
                    "--out",
                    str(run),
                    "--force",
                ]
                jobs.append((t, arm, seed, run, argv))

    def done(j) -> bool:
        return (j[3] / "metrics.json").is_file() and not (j[3] / ".incomplete").exists()

    pending = [] if a.summary_only else [j for j in jobs if not done(j)]
    running: list[tuple[subprocess.Popen, tuple]] = []
    while pending or running:
        while pending and len(running) < 2:
            j = pending.pop(0)
            running.append((sh(j[4], j[3].parent / f"{j[3].name}.log"), j))
        time.sleep(2)
        for p, j in list(running):
            if p.poll() is not None:
                running.remove((p, j))
                print(f"{j[0]} {j[1]} seed {j[2]}: exit {p.returncode}", flush=True)
    rows = []
    for t, arm, seed, run, _argv in (j for j in jobs if done(j)):
        m = json.loads((run / "metrics.json").read_text())
        rows.append(
            {
                "task": t,
                "arm": arm,
                "seed": seed,
                "valid_mcc": m["valid"]["mcc"],
                "test_mcc": m["test"]["mcc"],
                "train_seconds": m.get("train_seconds"),
                "rc": (m.get("rc") or {}).get("decision"),
            }
        )
    tm = json.loads((trunk / "metrics.json").read_text())
    (out / "summary.json").write_text(json.dumps({"rows": rows, "trunk": tm}, indent=1))
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {a.seeds} seeds; {a.budget:g} min per fine-tuning run "
        f"(1 thread, two runs side by side); trunk: {a.arch}, {a.pretrain_budget:g} min of `genoml multitask` on "
        f"{', '.join(sources)} (training splits), mean valid MCC {tm['valid']['mean_mcc']:.3f} after "
        f"{tm['steps']} steps.",
        "",
        "| task | scratch cnn (test MCC ×100, mean ± sd) | supervised-pretrained cnn, full | Δ | per seed (scratch / pretrained) |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        seeds = {r["seed"] for r in rows if r["task"] == t and r["arm"] == "scratch"} & {
            r["seed"] for r in rows if r["task"] == t and r["arm"] != "scratch"
        }  # paired seeds only
        s = [
            100 * r["test_mcc"]
            for r in rows
            if r["task"] == t and r["arm"] == "scratch" and r["seed"] in seeds
        ]
        p = [
            100 * r["test_mcc"]
            for r in rows
            if r["task"] == t and r["arm"] != "scratch" and r["seed"] in seeds
        ]
        if not s:
            lines.append(f"| {t} | not run | not run | – | – |")
            continue

        def ms(v):
            return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

        lines.append(
            f"| {t} | {ms(s)} | {ms(p)} | {statistics.mean(p) - statistics.mean(s):+.2f} | "
            f"{', '.join(f'{x:.1f}' for x in s)} / {', '.join(f'{x:.1f}' for x in p)} |"
        )
    lines += [
        "",
        "Sequences removed from the trunk's training data (equal to, containing, or inside a target dev/test "
        "sequence, either strand):",
        "",
        "| source | total | exact | contains target | inside target | kept |",
        "|---|---|---|---|---|---|",
    ]
    for name, c in tm["exclusion"]["per_dataset"].items():
        lines.append(
            f"| {name} | {c['total']} | {c['exact']} | {c['contains_target']} | {c['inside_target']} | "
            f"{c['kept']} |"
        )

    def shown(x: str) -> str:
        name, sep, path = x.rpartition("=")
        return (name + sep if sep else "") + (rel(Path(path)) if path.startswith(str(GUE)) else path)

    lines += [
        "",
        "Commands: `genoml " + " ".join(shown(x) for x in pre_cmd) + "`",
        "and per task/seed `genoml finetune TRAIN --valid DEV --test TEST --model {cnn | TRUNK} --time-budget "
        f"{a.budget:g} --seed S --threads 1 --no-baselines --no-attention` (seeds per task: the count of "
        "values in the per-seed column); reproduce all with "
        f"`python scripts/bench_transfer.py --out {a.out} --seeds {a.seeds} --budget {a.budget:g} "
        f"--pretrain-budget {a.pretrain_budget:g}`.",
    ]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
