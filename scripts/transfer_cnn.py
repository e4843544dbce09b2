"""Supervised transfer for a one-hot net (`cnn`, or `--arch cnn-shallow|rnn`) on any visible GUE task: from
scratch vs from a `genoml multitask --arch ARCH` trunk trained on the other five visible tasks' training splits
(the `cnn` rows of scripts/transfer.py, for other targets and architectures). Each trunk excludes its target's
dev and test sequences.

Usage: python scripts/transfer_cnn.py --tasks tf/0,tf/1 --seeds 3 --budget 5 --trunk-budget 6 --out runs/transfer-cnn
Reads ../shared/data (skips cleanly when absent); resumable; writes OUT/summary.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer import DATA, GUE_VISIBLE, finished, ms, run_all, shown  # noqa: E402


def jobs(tasks: list[str], out: Path, seeds: int, budget: float, trunk_budget: float, arch: str = "cnn"):
    """-> (trunk jobs, finetune jobs keyed by (task, arm, seed)); arm "scratch" or "supervised"."""
    gue = DATA / "gue"
    trunks, runs = [], []
    for t in tasks:
        f = {k: gue / t / f"{k}.csv" for k in ("train", "dev", "test")}
        trunk = out / t / "trunk"
        src = [f"{s.replace('/', '_')}={gue / s / 'train.csv'}" for s in GUE_VISIBLE if s != t]
        argv = ["multitask", *src, "--exclude", str(f["dev"]), "--exclude", str(f["test"]), "--arch", arch]
        trunks.append((trunk, argv + ["--time-budget", f"{trunk_budget:g}", "--epochs", "30", "--threads", "1",
                                      "--out", str(trunk), "--force"]))  # fmt: skip
        for seed in range(seeds):
            for arm, model in (("scratch", arch), ("supervised", str(trunk))):
                run = out / t / f"{arm}-seed{seed}"
                argv = [
                    "finetune",
                    str(f["train"]),
                    "--valid",
                    str(f["dev"]),
                    "--test",
                    str(f["test"]),
                    "--model",
                ]
                argv += [model, "--time-budget", f"{budget:g}", "--seed", str(seed), "--threads", "1"]
                runs.append(
                    (
                        (t, arm, seed),
                        run,
                        argv + ["--no-baselines", "--no-attention", "--out", str(run), "--force"],
                    )
                )
    return trunks, runs


def summarize(tasks, out: Path, a) -> str:
    trunks, runs = jobs(tasks, out, a.seeds, a.budget, a.trunk_budget, a.arch)
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; test MCC ×100, mean ± sd over {a.seeds} seeds; "
        f"{a.budget:g} min per fine-tuning run, trunks {a.trunk_budget:g} min (1 thread each, two runs side by side).",
        "",
        f"| task | {a.arch} from scratch | {a.arch} from the multitask trunk | Δ | goal (≥ +3, beyond the larger sd) | trunk |",
        "|---|---|---|---|---|---|",
    ]
    for t, (trunk, _) in zip(tasks, trunks):
        v = {arm: [100 * json.loads((r / "metrics.json").read_text())["test"]["mcc"]
                   for (tt, aa, _), r, _ in runs if (tt, aa) == (t, arm) and finished(r)]
             for arm in ("scratch", "supervised")}  # fmt: skip
        if not all(v.values()):
            lines.append(f"| {t} | (incomplete) |||||")
            continue
        d = statistics.mean(v["supervised"]) - statistics.mean(v["scratch"])
        sd = max(statistics.stdev(x) if len(x) > 1 else 0.0 for x in v.values())
        tm = json.loads((trunk / "metrics.json").read_text())
        removed = sum(c["removed"] for c in tm["exclusion"]["per_dataset"].values())
        lines.append(
            f"| {t} | {ms(v['scratch'], a.seeds)} | {ms(v['supervised'], a.seeds)} | {d:+.1f} | "
            f"{'met' if d >= 3 and d > sd else 'not met'} | valid MCC {tm['valid']['mean_mcc']:.3f} after "
            f"{tm['steps']} steps; {removed} overlapping sequences removed |"
        )
    lines += [
        "",
        f"Reproduce: `python scripts/transfer_cnn.py --tasks {','.join(tasks)} --seeds {a.seeds} --budget {a.budget:g} "
        f"--trunk-budget {a.trunk_budget:g}{'' if a.arch == 'cnn' else ' --arch ' + a.arch} --out {shown(out)}`",
    ]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="tf/0,tf/1")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=5.0, help="minutes per fine-tuning run")
    ap.add_argument("--trunk-budget", type=float, default=6.0, help="minutes per multitask trunk")
    ap.add_argument("--arch", default="cnn", choices=("cnn", "cnn-shallow", "cnn-attn", "rnn"))
    ap.add_argument("--out", default="runs/transfer-cnn")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {shown(DATA)} absent", file=sys.stderr)
        return 0
    tasks = a.tasks.split(",")
    out = Path(a.out).resolve()
    if not a.summary_only:
        trunks, runs = jobs(tasks, out, a.seeds, a.budget, a.trunk_budget, a.arch)
        run_all(trunks)
        run_all([(r, argv) for _, r, argv in runs])
    print(summarize(tasks, out, a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
