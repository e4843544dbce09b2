"""The "Transfer" benchmark of issue 15: one architecture, four starting points, equal budgets.

Per target task and seed, `genoml finetune` (full fine-tuning, defaults otherwise) of the same architecture
(genoml's own pretrained trunk: DNA `genoml-dna-cnn`, the ConvLM; protein `genoml-protein-small`) from
  - scratch: a random-init copy (same config and tokenizer);
  - self-supervised: the shipped masked-LM weights (`--model embedded`);
  - supervised: `genoml multitask --base <random-init copy>` on other visible tasks' training splits;
  - both: `genoml multitask --base embedded` on the same sources;
plus the from-scratch nets of any architecture (`cnn`, `cnn-shallow`), all with the same --time-budget,
--seed and one thread, two runs side by side. The multitask trunks exclude every target's dev and test
sequences (equal, containing or contained, both strands for DNA); the counts are in the section.

DNA targets: GUE mouse/0, mouse/3, prom/prom_300_tata; sources tf/0, tf/1, prom/prom_core_tata.
Protein target: modlamp AMPvsTMset (split here 70/15/15, stratified, seed 0); sources AMPvsUniProt,
ACP_CancPPD_vs_Random, ACP_CancPPD_vs_TM.

Usage: python scripts/transfer.py --out runs/transfer4 --seeds 3 --budget 2.5 --protein-budget 1 --trunk-budget 8 --protein-trunk-budget 4
Reads ../shared/data (skips cleanly when absent); resumable (finished runs are kept). Writes OUT/summary.json,
OUT/summary.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "scripts"))

ARMS = ("scratch", "self-supervised", "supervised", "both")
NETS = ("cnn", "cnn-shallow")


def genoml(argv: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "genoml", *argv], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env
    )


def shown(p) -> str:
    s = str(p)
    for root, name in ((str(REPO) + "/", ""), (str(DATA.parent.parent), "..")):
        s = s.replace(root, name)
    return s


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """modlamp CSV (first line "<n>,<k>,<name0>,<name1>") -> [(sequence, label)]."""
    rows = list(csv.reader(path.open()))
    return [(r[0], r[1]) for r in rows[1:] if len(r) >= 2]


def write_pairs(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sequence", "label"])
        w.writerows(rows)
    return path


def protein_files(out: Path) -> tuple[dict, list[str]]:
    """The protein target split 70/15/15 (stratified, seed 0) and the sources as plain CSVs."""
    d = out / "data"
    rows = read_pairs(DATA / "modlamp_peptides" / "AMPvsTMset.csv")
    rng = random.Random(0)
    split = {"train": [], "dev": [], "test": []}
    for label in sorted({y for _, y in rows}):
        group = [r for r in rows if r[1] == label]
        rng.shuffle(group)
        n_dev = n_test = round(0.15 * len(group))
        split["test"] += group[:n_test]
        split["dev"] += group[n_test : n_test + n_dev]
        split["train"] += group[n_test + n_dev :]
    target = {k: write_pairs(d / "AMPvsTMset" / f"{k}.csv", v) for k, v in split.items()}
    sources = [
        f"{n}={write_pairs(d / 'sources' / f'{n}.csv', read_pairs(DATA / 'modlamp_peptides' / f'{n}.csv'))}"
        for n in ("AMPvsUniProt", "ACP_CancPPD_vs_Random", "ACP_CancPPD_vs_TM")
    ]
    return {"AMPvsTMset": target}, sources


def families(out: Path, only: str) -> list[dict]:
    from bench_suite import random_init_copy

    from genoml.pretrained import default_model_dir

    fams = []
    if only in ("all", "dna"):
        gue = DATA / "gue"
        emb = default_model_dir("dna")
        fams.append(
            {
                "name": "dna",
                "embedded": emb,
                "random": random_init_copy(emb, out / "random-init" / emb.name),
                "targets": {
                    t: {k: gue / t / f"{k}.csv" for k in ("train", "dev", "test")}
                    for t in ("mouse/0", "mouse/3", "prom/prom_300_tata")
                },
                "sources": [f"{s}={gue / s / 'train.csv'}" for s in ("tf/0", "tf/1", "prom/prom_core_tata")],
            }
        )
    if only in ("all", "protein"):
        emb = default_model_dir("protein")
        targets, sources = protein_files(out)
        fams.append(
            {
                "name": "protein",
                "embedded": emb,
                "random": random_init_copy(emb, out / "random-init" / emb.name),
                "targets": targets,
                "sources": sources,
            }
        )
    return fams


def trunk_jobs(fam: dict, out: Path, a) -> list[tuple]:
    budget = a.trunk_budget if fam["name"] == "dna" else a.protein_trunk_budget
    excl = [x for t in fam["targets"].values() for k in ("dev", "test") for x in ("--exclude", str(t[k]))]
    jobs = []
    for arm, base in (("supervised", fam["random"]), ("both", fam["embedded"])):
        folder = out / fam["name"] / f"trunk-{arm}"
        argv = ["multitask", *fam["sources"], *excl, "--base", str(base), "--time-budget", f"{budget:g}"]
        argv += ["--epochs", "30", "--threads", "1", "--out", str(folder), "--force"]
        jobs.append((folder, argv))
    return jobs


def finetune_jobs(fam: dict, out: Path, seeds: int, budget: float) -> list[tuple]:
    models = {
        "scratch": fam["random"],
        "self-supervised": fam["embedded"],
        "supervised": out / fam["name"] / "trunk-supervised",
        "both": out / fam["name"] / "trunk-both",
        **{n: n for n in NETS},
    }
    jobs = []
    for seed in range(seeds):  # seed-major: an interrupted run has as many seeds as possible everywhere
        for t, files in fam["targets"].items():
            for arm, model in models.items():
                run = out / fam["name"] / t / f"{arm}-seed{seed}"
                argv = ["finetune", str(files["train"]), "--valid", str(files["dev"]), "--test"]
                argv += [str(files["test"]), "--model", str(model), "--time-budget", f"{budget:g}"]
                argv += ["--seed", str(seed), "--threads", "1", "--no-baselines", "--no-attention"]
                jobs.append(((fam["name"], t, arm, seed), run, argv + ["--out", str(run), "--force"]))
    return jobs


def finished(folder: Path, name: str = "metrics.json") -> bool:
    return (folder / name).is_file() and not (folder / ".incomplete").exists()


def run_all(jobs: list[tuple], parallel: int = 2) -> None:
    """jobs: (folder, argv); runs those without finished metrics, `parallel` at a time."""
    pending = [j for j in jobs if not finished(j[0])]
    running: list[tuple] = []
    while pending or running:
        while pending and len(running) < parallel:
            folder, argv = pending.pop(0)
            running.append((genoml(argv, folder.parent / f"{folder.name}.log"), folder))
        time.sleep(2)
        for p, folder in list(running):
            if p.poll() is not None:
                running.remove((p, folder))
                print(f"{shown(folder)}: exit {p.returncode}", flush=True)


def ms(v: list[float]) -> str:
    return f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def summarize(fams: list[dict], out: Path, a) -> str:
    rows, trunks, goals = [], {}, []
    for fam in fams:
        for key, run, _ in finetune_jobs(fam, out, a.seeds, a.budget):
            if finished(run):
                m = json.loads((run / "metrics.json").read_text())
                rows.append(dict(zip(("family", "task", "arm", "seed"), key), test_mcc=m["test"]["mcc"]))
        for folder, _ in trunk_jobs(fam, out, a):
            if finished(folder):
                trunks[f"{fam['name']}/{folder.name}"] = json.loads((folder / "metrics.json").read_text())
    (out / "summary.json").write_text(json.dumps({"rows": rows, "trunks": trunks}, indent=1))
    arch = {"dna": "ConvLM (genoml-dna-cnn)", "protein": "ESM (genoml-protein-small)"}
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {a.seeds} seeds; test MCC ×100, mean ± sd over seeds; "
        f"{a.budget:g} min per DNA run, {a.protein_budget:g} min per protein run (same for every arm of a task; "
        "1 thread, two runs side by side on 2 cores); trunks: "
        f"{a.trunk_budget:g} (DNA) and {a.protein_trunk_budget:g} (protein) min of `genoml multitask` each. Δ = best transferred − same-architecture scratch.",
        "",
        "| task | architecture | scratch | self-supervised | supervised | both | Δ best | cnn | cnn-shallow "
        "| best transferred − best scratch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for fam in fams:
        for t in fam["targets"]:

            def vals(arm, fam=fam, t=t):
                return [
                    100 * r["test_mcc"]
                    for r in rows
                    if (r["family"], r["task"], r["arm"]) == (fam["name"], t, arm)
                ]

            cells = {arm: vals(arm) for arm in (*ARMS, *NETS)}
            if not all(cells.values()):
                lines.append(
                    f"| {t} | {arch[fam['name']]} | "
                    + " | ".join(
                        ms(cells[k]) + f" (n={len(cells[k])})" if cells[k] else "–" for k in (*ARMS,)
                    )
                    + " | – | "
                    + " | ".join(ms(cells[k]) if cells[k] else "–" for k in NETS)
                    + " | – |"
                )
                continue
            mean = {k: statistics.mean(v) for k, v in cells.items()}
            best_tr = max(ARMS[1:], key=lambda k: mean[k])
            best_sc = max(("scratch", *NETS), key=lambda k: mean[k])
            delta = mean[best_tr] - mean["scratch"]
            spread = max(
                (statistics.stdev(cells[k]) if len(cells[k]) > 1 else 0.0) for k in (best_tr, "scratch")
            )
            goals.append(
                (fam["name"], t, delta >= 3 and delta > spread, mean[best_tr] > mean[best_sc], spread)
            )
            lines.append(
                f"| {t} | {arch[fam['name']]} | "
                + " | ".join(ms(cells[k]) for k in ARMS)
                + f" | {mean[best_tr] - mean['scratch']:+.1f} ({best_tr}) | "
                + " | ".join(ms(cells[k]) for k in NETS)
                + f" | {mean[best_tr] - mean[best_sc]:+.1f} (vs {best_sc}) |"
            )
    dna = [g for g in goals if g[0] == "dna"]
    lines += [
        "",
        "Goal check (best transferred ≥ same-architecture scratch + 3 points, beyond the larger seed sd of the two): "
        + "; ".join(f"{t} {'met' if ok else 'not met'} (sd {sd:.1f})" for _, t, ok, _, sd in goals)
        + f" → {sum(g[2] for g in dna)} of {len(dna)} DNA tasks, protein "
        + ("met" if all(g[2] for g in goals if g[0] == "protein") else "not met")
        + "; best transferred above the best from-scratch model of any architecture on "
        + (", ".join(t for _, t, _, above, _ in goals if above) or "no task")
        + ".",
    ]
    lines += [
        "",
        "Trunks (mean validation MCC over the source tasks; sequences removed as overlapping a target's "
        "dev/test sequence: equal / containing / inside):",
        "",
    ]
    for name, m in trunks.items():
        removed = ", ".join(
            f"{k}: {c['exact']} / {c['contains_target']} / {c['inside_target']} of {c['total']}"
            for k, c in m["exclusion"]["per_dataset"].items()
        )
        lines.append(
            f"- `{name}`: valid MCC {m['valid']['mean_mcc']:.3f} after {m['steps']} steps; removed {removed}"
        )
    lines += [
        "",
        f"Reproduce: `python scripts/transfer.py --out {shown(out)} --seeds {a.seeds} --budget {a.budget:g} "
        f"--protein-budget {a.protein_budget:g} --trunk-budget {a.trunk_budget:g} "
        f"--protein-trunk-budget {a.protein_trunk_budget:g}` (commands per run: "
        "`genoml finetune TRAIN --valid DEV --test TEST --model M --time-budget B --seed S --threads 1 "
        "--no-baselines --no-attention`; trunks: `genoml multitask SOURCES --exclude DEV/TEST… --base "
        "{random-init copy | shipped model} --time-budget T --epochs 30 --threads 1`).",
    ]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/transfer4")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.5, help="minutes per DNA fine-tuning run (every arm)")
    ap.add_argument("--protein-budget", type=float, default=1.0, help="minutes per protein run (every arm)")
    ap.add_argument("--trunk-budget", type=float, default=8.0, help="minutes per DNA multitask trunk")
    ap.add_argument("--protein-trunk-budget", type=float, default=4.0, help="minutes per protein trunk")
    ap.add_argument("--only", choices=("all", "dna", "protein"), default="all")
    ap.add_argument("--summary-only", action="store_true", help="tabulate finished runs, start nothing")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {shown(DATA)} absent", file=sys.stderr)
        return 0
    out = Path(a.out).resolve()
    fams = families(out, a.only)
    if not a.summary_only:
        run_all([j for f in fams for j in trunk_jobs(f, out, a)])
        for f in sorted(fams, key=lambda f: f["name"] != "protein"):  # the short protein runs first
            budget = a.budget if f["name"] == "dna" else a.protein_budget
            run_all([(run, argv) for _, run, argv in finetune_jobs(f, out, a.seeds, budget)])
    print(summarize(fams, out, a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
