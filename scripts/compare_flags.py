"""Side-by-side A/B of `genoml finetune` flags on visible GUE tasks: the same command per task and seed,
each arm adding its own flags, two runs at a time (1 thread each), test and valid MCC ×100 per arm.

Usage:
  python scripts/compare_flags.py --tasks tf/0,tf/1 --seeds 3 --budget 5 --model cnn \
      --arm "none=" --arm "ema=--ema 0.999" --out runs/ema
Arms are NAME=FLAGS (FLAGS split on spaces; empty for the plain command; `{task}` in FLAGS becomes the task,
e.g. `--model runs/trunks/{task}`). The runs of a seed are queued
next to each other, so the arms of a pair share the machine at the same time. Reads ../shared/data (skips
cleanly when absent); resumable (finished runs are kept); writes OUT/summary.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import DATA, finished, ms, run_all, shown  # noqa: E402


def parse_arms(specs: list[str]) -> list[tuple[str, list[str]]]:
    arms = []
    for spec in specs:
        name, sep, flags = spec.partition("=")
        if not sep or not name:
            raise SystemExit(f"--arm {spec!r}: expected NAME=FLAGS")
        arms.append((name, flags.split()))
    return arms


def jobs(a, out: Path) -> list[tuple]:
    """[((task, arm, seed), run folder, argv)] in the order they run (a seed's arms next to each other)."""
    runs = []
    for t in a.tasks.split(","):
        f = {k: DATA / "gue" / t / f"{k}.csv" for k in ("train", "dev", "test")}
        for seed in range(a.seeds):
            for arm, flags in parse_arms(a.arm):
                run = out / t / f"{arm}-seed{seed}"
                argv = ["finetune", str(f["train"]), "--valid", str(f["dev"]), "--test", str(f["test"])]
                argv += ["--model", a.model] if a.model else []
                argv += ["--time-budget", f"{a.budget:g}", "--seed", str(seed), "--threads", "1"]
                argv += [x.replace("{task}", t) for x in flags]
                argv += ["--no-baselines", "--no-attention", "--out", str(run), "--force"]
                runs.append(((t, arm, seed), run, argv))
    return runs


def summarize(a, out: Path) -> str:
    arms = [name for name, _ in parse_arms(a.arm)]
    model = f"--model {a.model} " if a.model else ""
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; `genoml finetune TRAIN --valid DEV --test TEST {model}"
        f"--time-budget {a.budget:g} --seed S --threads 1` + the arm's flags; test (valid) MCC ×100, mean ± sd "
        f"over {a.seeds} seeds; two runs side by side on 2 cores.",
        "",
        "| task | " + " | ".join(f"{n} ({' '.join(f) or 'no flag'})" for n, f in parse_arms(a.arm)) + " | Δ "
        + " | Δ ".join(arms[1:]) + " |",
        "|---|" + "---|" * (2 * len(arms) - 1),
    ]  # fmt: skip
    runs = jobs(a, out)
    for t in a.tasks.split(","):
        test, valid = {}, {}
        for arm in arms:
            found = [json.loads((r / "metrics.json").read_text()) for (tt, aa, _), r, _ in runs if (tt, aa) == (t, arm)
                   and finished(r)]  # fmt: skip
            test[arm] = [100 * m["test"]["mcc"] for m in found]
            valid[arm] = [100 * m["valid"]["mcc"] for m in found]
        cells = [f"{ms(test[x], a.seeds)} ({ms(valid[x], a.seeds)})" if test[x] else "–" for x in arms]
        deltas = [
            f"{statistics.mean(test[x]) - statistics.mean(test[arms[0]]):+.1f}"
            if test[x] and test[arms[0]]
            else "–"
            for x in arms[1:]
        ]
        lines.append(f"| {t} | " + " | ".join(cells + deltas) + " |")
    arm_flags = " ".join(f'--arm "{n}={" ".join(f)}"' for n, f in parse_arms(a.arm))
    lines += [
        "",
        f"Reproduce: `python scripts/compare_flags.py --tasks {a.tasks} --seeds {a.seeds} --budget {a.budget:g} "
        + (f"--model {a.model} " if a.model else "")
        + f"{arm_flags} --out {shown(out)}`",
    ]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="tf/0,tf/1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=5.0, help="minutes per run")
    ap.add_argument("--model", default="cnn", help="--model of every run ('' for the default, auto)")
    ap.add_argument(
        "--arm", action="append", required=True, help="NAME=FLAGS (repeat; the first is the baseline)"
    )
    ap.add_argument("--out", default="runs/compare")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {shown(DATA)} absent", file=sys.stderr)
        return 0
    out = Path(a.out).resolve()
    if not a.summary_only:
        run_all([(r, argv) for _, r, argv in jobs(a, out)])
    print(summarize(a, out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
