"""The "Transfer" benchmark of issue 15: per architecture, its starting points, equal budgets.

Per target task and seed, `genoml finetune` (full fine-tuning, defaults otherwise) of
  - genoml's own pretrained trunk (DNA `genoml-dna-cnn`, the ConvLM; protein `genoml-protein-small`) from
      scratch: a random-init copy (same config and tokenizer);
      self-supervised: the shipped masked-LM weights (`--model embedded`);
      supervised: `genoml multitask --base <random-init copy>` on the sources;
      both: `genoml multitask --base embedded` on the same sources;
  - the one-hot `cnn` from scratch and from a supervised `genoml multitask --arch cnn` trunk on the same
    sources (a net has no masked-LM pretraining: no self-supervised / both arms);
  - `cnn-shallow` from scratch (the other from-scratch net),
all with the same --time-budget, --seed and one thread, two runs side by side.

Sources (the supervised pretraining data) are the *other* visible tasks' training splits, per target: for a
DNA target, the training splits of the other five visible GUE tasks (tf/0, tf/1, mouse/0, mouse/3,
prom_core_tata, prom_300_tata minus the target); each trunk excludes its target's dev and test sequences
(equal, containing or contained, both strands); the counts are in the summary. Protein target: modlamp
AMPvsTMset (split here 70/15/15, stratified, seed 0); sources AMPvsUniProt, ACP_CancPPD_vs_Random,
ACP_CancPPD_vs_TM.

Usage: python scripts/transfer.py --out runs/transfer5 --seeds 3 --budget 2.5 --protein-budget 1 --trunk-budget 8 --protein-trunk-budget 4
Reads ../shared/data (skips cleanly when absent); resumable (finished runs are kept; `--carry DIR` copies the
finished runs of an earlier OUT whose commands are unchanged, and the summary names them). Writes
OUT/summary.json, OUT/summary.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "scripts"))

ARMS = ("scratch", "self-supervised", "supervised", "both")
NETS = ("cnn", "cnn-shallow")
GUE_VISIBLE = ("tf/0", "tf/1", "mouse/0", "mouse/3", "prom/prom_core_tata", "prom/prom_300_tata")
DNA_TARGETS = ("mouse/0", "mouse/3", "prom/prom_300_tata")
# finetune runs per (task, seed): the pretrained architecture's four arms, the cnn's supervised arm, the nets
RUNS = (*ARMS, "cnn-supervised", *NETS)
TRUNKS = ("supervised", "both", "cnn-supervised")


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
    """Per family: the pretrained model and its random-init copy, and per target its files and sources."""
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
                    t: {k: gue / t / f"{k}.csv" for k in ("train", "dev", "test")} for t in DNA_TARGETS
                },
                "sources": {
                    t: [f"{s}={gue / s / 'train.csv'}" for s in GUE_VISIBLE if s != t] for t in DNA_TARGETS
                },
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
                "sources": {t: sources for t in targets},
            }
        )
    return fams


def trunk_folder(fam: dict, out: Path, target: str, arm: str) -> Path:
    return out / fam["name"] / target / f"trunk-{arm}"


def trunk_jobs(fam: dict, out: Path, a) -> list[tuple]:
    """One trunk per target and transferred arm: sources = the other tasks, minus the target's dev/test."""
    budget = a.trunk_budget if fam["name"] == "dna" else a.protein_trunk_budget
    jobs = []
    for t, files in fam["targets"].items():
        excl = ["--exclude", str(files["dev"]), "--exclude", str(files["test"])]
        bases = {
            "supervised": ["--base", str(fam["random"])],
            "both": ["--base", str(fam["embedded"])],
            "cnn-supervised": ["--arch", "cnn"],
        }
        for arm in TRUNKS:
            folder = trunk_folder(fam, out, t, arm)
            argv = ["multitask", *fam["sources"][t], *excl, *bases[arm], "--time-budget", f"{budget:g}"]
            argv += ["--epochs", "30", "--threads", "1", "--out", str(folder), "--force"]
            jobs.append((folder, argv))
    return jobs


def finetune_jobs(fam: dict, out: Path, seeds: int, budget: float) -> list[tuple]:
    jobs = []
    for seed in range(seeds):  # seed-major: an interrupted run has as many seeds as possible everywhere
        for t, files in fam["targets"].items():
            models = {
                "scratch": fam["random"],
                "self-supervised": fam["embedded"],
                **{arm: trunk_folder(fam, out, t, arm) for arm in TRUNKS},
                **{n: n for n in NETS},
            }
            for arm in RUNS:
                run = out / fam["name"] / t / f"{arm}-seed{seed}"
                argv = ["finetune", str(files["train"]), "--valid", str(files["dev"]), "--test"]
                argv += [str(files["test"]), "--model", str(models[arm]), "--time-budget", f"{budget:g}"]
                argv += ["--seed", str(seed), "--threads", "1", "--no-baselines", "--no-attention"]
                jobs.append(((fam["name"], t, arm, seed), run, argv + ["--out", str(run), "--force"]))
    return jobs


def carry(src: Path, out: Path, names: list[str]) -> list[str]:
    """Copy the finished runs `names` (paths relative to an OUT folder) of an earlier invocation `src` into `out`
    unless present; returns those copied, for the summary."""
    done = []
    for name in names:
        if finished(src / name) and not finished(out / name):
            shutil.copytree(src / name, out / name, dirs_exist_ok=True)
            done.append(name)
    return done


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


def ms(v: list[float], seeds: int = 0) -> str:
    """mean ± sd, with the number of seeds when fewer than planned finished."""
    text = f"{statistics.mean(v):.1f} ± {statistics.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"
    return text + (f" (n={len(v)})" if len(v) < seeds else "")


def arch_rows(fam: dict) -> list[tuple[str, dict]]:
    """(architecture label, {column: run arm or None}) per table row of a target."""
    main = {"dna": "ConvLM (genoml-dna-cnn)", "protein": "ESM (genoml-protein-small)"}[fam["name"]]
    return [
        (main, {arm: arm for arm in ARMS}),
        (
            "cnn (one-hot)",
            {"scratch": "cnn", "self-supervised": None, "supervised": "cnn-supervised", "both": None},
        ),
    ]


def summarize(fams: list[dict], out: Path, a) -> str:
    rows, trunks, goals = [], {}, []
    for fam in fams:
        for key, run, _ in finetune_jobs(fam, out, a.seeds, a.budget):
            if finished(run):
                m = json.loads((run / "metrics.json").read_text())
                rows.append(dict(zip(("family", "task", "arm", "seed"), key), test_mcc=m["test"]["mcc"]))
        for folder, _ in trunk_jobs(fam, out, a):
            if finished(folder):
                trunks[str(folder.relative_to(out))] = json.loads((folder / "metrics.json").read_text())
    carried = json.loads((out / "carried.json").read_text()) if (out / "carried.json").is_file() else {}
    (out / "summary.json").write_text(
        json.dumps({"rows": rows, "trunks": trunks, "carried": carried}, indent=1)
    )
    lines = [
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {a.seeds} seeds; test MCC ×100, mean ± sd over seeds; "
        f"{a.budget:g} min per DNA run, {a.protein_budget:g} min per protein run (same for every arm of a task; "
        "1 thread, two runs side by side on 2 cores); trunks: "
        f"{a.trunk_budget:g} (DNA) and {a.protein_trunk_budget:g} (protein) min of `genoml multitask` each, one per "
        "target and arm. Δ = best transferred − same-architecture scratch; n/a: a one-hot net has no masked-LM "
        "pretraining.",
        "",
        "| task | architecture | scratch | self-supervised | supervised | both | Δ best | best from scratch, "
        "any architecture | best transferred − best scratch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fam in fams:
        for t in fam["targets"]:

            def vals(arm, fam=fam, t=t):
                return [
                    100 * r["test_mcc"]
                    for r in rows
                    if (r["family"], r["task"], r["arm"]) == (fam["name"], t, arm)
                ]

            cells = {arm: vals(arm) for arm in RUNS}
            if not all(cells.values()):
                missing = ", ".join(k for k, v in cells.items() if not v)
                lines.append(f"| {t} | (incomplete: no finished runs of {missing}) |||||||")
                continue
            mean = {k: statistics.mean(v) for k, v in cells.items()}
            sd = {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in cells.items()}
            scratch_any = max(("scratch", *NETS), key=lambda k: mean[k])
            met, best_tr_any = False, None
            for label, cols in arch_rows(fam):
                transferred = [cols[c] for c in ARMS[1:] if cols[c]]
                best_tr = max(transferred, key=lambda k: mean[k])
                if best_tr_any is None or mean[best_tr] > mean[best_tr_any]:
                    best_tr_any = best_tr
                delta = mean[best_tr] - mean[cols["scratch"]]
                spread = max(sd[best_tr], sd[cols["scratch"]])
                ok = delta >= 3 and delta > spread
                met = met or ok
                goals.append((fam["name"], t, label, ok, delta, spread))
                lines.append(
                    f"| {t} | {label} | "
                    + " | ".join(ms(cells[cols[c]], a.seeds) if cols[c] else "n/a" for c in ARMS)
                    + f" | {delta:+.1f} ({best_tr}) | {ms(cells[scratch_any], a.seeds)} ({scratch_any}) | "
                    + f"{mean[best_tr] - mean[scratch_any]:+.1f} |"
                )
            goals.append((fam["name"], t, "any", met, mean[best_tr_any] > mean[scratch_any], None))
    per_task = [g for g in goals if g[2] == "any"]
    dna = [g for g in per_task if g[0] == "dna"]
    lines += [
        "",
        "Goal check (best transferred ≥ same-architecture scratch + 3 points, beyond the larger seed sd of the two): "
        + "; ".join(
            f"{t} / {label.split(' ')[0]} {'met' if ok else 'not met'} (Δ {d:+.1f}, sd {sd:.1f})"
            for _, t, label, ok, d, sd in goals
            if label != "any"
        )
        + f" → {sum(g[3] for g in dna)} of {len(dna)} DNA tasks, protein "
        + ("met" if all(g[3] for g in per_task if g[0] == "protein") else "not met")
        + "; best transferred above the best from-scratch model of any architecture on "
        + (", ".join(g[1] for g in per_task if g[4]) or "no task")
        + ".",
        "",
        "Trunks (mean validation MCC over the source tasks; sequences removed as overlapping the target's "
        "dev/test sequences: equal / containing / inside, of the source's total):",
        "",
    ]
    for name, m in trunks.items():
        removed = ", ".join(
            f"{k}: {c['exact']} / {c['contains_target']} / {c['inside_target']} of {c['total']}"
            for k, c in m["exclusion"]["per_dataset"].items()
            if c["exact"] + c["contains_target"] + c["inside_target"]
        )
        lines.append(
            f"- `{name}`: valid MCC {m['valid']['mean_mcc']:.3f} after {m['steps']} steps; "
            f"sources {', '.join(m['exclusion']['per_dataset'])}; removed {removed or 'none'}"
        )
    if carried:
        lines += [
            "",
            f"Carried over unchanged from `{carried['from']}` (same commands; the code paths of these runs did not "
            f"change since): {len(carried['runs'])} finished runs and trunks — "
            + ", ".join(
                f"{n} {k}"
                for k, n in sorted(Counter(re.sub(r"-seed\d+$", "", r) for r in carried["runs"]).items())
                if n
            )
            + ".",
        ]
    lines += [
        "",
        f"Reproduce: `python scripts/transfer.py --out {shown(out)} --seeds {a.seeds} --budget {a.budget:g} "
        f"--protein-budget {a.protein_budget:g} --trunk-budget {a.trunk_budget:g} "
        f"--protein-trunk-budget {a.protein_trunk_budget:g}` (commands per run: "
        "`genoml finetune TRAIN --valid DEV --test TEST --model M --time-budget B --seed S --threads 1 "
        "--no-baselines --no-attention`; trunks: `genoml multitask SOURCES --exclude DEV --exclude TEST "
        "{--base random-init copy | --base shipped model | --arch cnn} --time-budget T --epochs 30 --threads 1`).",
    ]
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/transfer5")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.5, help="minutes per DNA fine-tuning run (every arm)")
    ap.add_argument("--protein-budget", type=float, default=1.0, help="minutes per protein run (every arm)")
    ap.add_argument("--trunk-budget", type=float, default=8.0, help="minutes per DNA multitask trunk")
    ap.add_argument("--protein-trunk-budget", type=float, default=4.0, help="minutes per protein trunk")
    ap.add_argument("--only", choices=("all", "dna", "protein"), default="all")
    ap.add_argument("--summary-only", action="store_true", help="tabulate finished runs, start nothing")
    ap.add_argument("--carry", help="an earlier OUT: copy its finished cnn, cnn-shallow and protein runs")
    a = ap.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {shown(DATA)} absent", file=sys.stderr)
        return 0
    out = Path(a.out).resolve()
    fams = families(out, a.only)
    if a.carry:
        src = Path(a.carry).resolve()
        names = [str(r.relative_to(out)) for f in fams for _, r, _ in finetune_jobs(f, out, a.seeds, 0) if
                 r.name.split("-seed")[0] in NETS or f["name"] == "protein"]  # fmt: skip
        copied = carry(src, out, names)
        for f in (
            fams
        ):  # trunks of the protein runs: the earlier layout had one per family, OUT/<family>/trunk-ARM
            if f["name"] == "protein":
                for arm in ("supervised", "both"):
                    old, new = src / f["name"] / f"trunk-{arm}", trunk_folder(f, out, "AMPvsTMset", arm)
                    if finished(old) and not finished(new):
                        shutil.copytree(old, new, dirs_exist_ok=True)
                        copied.append(str(new.relative_to(out)))
        if copied:
            (out / "carried.json").write_text(json.dumps({"from": shown(src), "runs": copied}))
    if not a.summary_only:
        run_all([j for f in fams for j in trunk_jobs(f, out, a)])
        for f in sorted(fams, key=lambda f: f["name"] != "protein"):  # the short protein runs first
            budget = a.budget if f["name"] == "dna" else a.protein_budget
            run_all([(run, argv) for _, run, argv in finetune_jobs(f, out, a.seeds, budget)])
    print(summarize(fams, out, a))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
