"""Issue 14 CPU measurements, each side by side in one run (alternating rounds, noisy shared machine).

Parts (comma list in --parts):
- batcher:  pretraining batcher time per step, code at --before (a git revision) vs this checkout
- pretrain: `genoml pretrain` tokens/s, same command, --before vs this checkout
- speed:    `genoml predict` vs transformers `pipeline` (fp32 and --precision int8), finetune vs a plain
            transformers `Trainer` (reuses scripts/bench_suite.py's harness)
- precision: prediction change of bf16 / int8 against fp32 on a real task (GUE tf/0 test set)

Example: python scripts/bench_device.py --parts batcher,pretrain,speed,precision --before main --threads 1
Paths default to ../shared/data and data/models/genoml-dna-small (relative to the repository root).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))

GENOME = "dna_genomes/pyrodigal/GCF_001457455.1_NCTC11397_genomic.fna.gz"
PRETRAIN_RUNS = (("tiny", 64, 20),)  # (preset, batch, steps): one tokens/s record (the last step logs)

BATCHER_SNIPPET = r"""
import json, sys, time, statistics
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[5]))
try:  # this checkout; the revision measured as --before may predate the split of genoml.pretrain
    from genoml.config import PretrainConfig
    from genoml.corpus import Corpus, build_corpus_cache
    from genoml.mlm_batches import MaskedBatcher
    from genoml.pretrain_model import tokens_for_window
except ImportError:
    from genoml.pretrain import Corpus, MaskedBatcher, PretrainConfig, build_corpus_cache, tokens_for_window
from genoml.tokenizers import build_tokenizer
genome, cache, spec, batch = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data, index = build_corpus_cache([Path(genome)], "dna", cache)
corpus = Corpus(data, index, window=512, eval_fraction=0.02)
tok = build_tokenizer(spec)
cfg = PretrainConfig(inputs=[genome], batch_size=batch, window=512, seed=0)
b = MaskedBatcher(corpus, tok, tokens_for_window(tok, 512), cfg, None)
b.train_batch(0, 0, 1)
times = []
for step in range(1, 9):
    t0 = time.perf_counter(); b.train_batch(step, 0, 1); times.append(time.perf_counter() - t0)
print(json.dumps({"ms_per_step": 1000 * statistics.median(times)}))
"""


def export_revision(rev: str, dest: Path) -> Path:
    """`git archive rev` into dest: the code to compare against, run from its own folder."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run_py(tree: Path, args: list[str], env_extra: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **(env_extra or {}),
    }
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=tree, **kw)


def part_batcher(args, trees: dict[str, Path], work: Path) -> dict:
    genome = str((Path(args.data) / GENOME).resolve())
    res = {}
    for spec, batch in (("char", 256), ("kmer:6", 128)):
        per = {name: [] for name in trees}
        for _round in range(args.rounds):
            for name, tree in trees.items():
                p = run_py(
                    tree,
                    [
                        "-c",
                        BATCHER_SNIPPET,
                        genome,
                        str(work / f"cache-{name}"),
                        spec,
                        str(batch),
                        str(args.threads),
                    ],
                )
                if p.returncode:
                    raise RuntimeError(p.stderr[-2000:])
                per[name].append(json.loads(p.stdout.strip().splitlines()[-1])["ms_per_step"])
        res[f"{spec} batch {batch} window 512"] = {k: statistics.median(v) for k, v in per.items()}
        print("batcher", spec, res[f"{spec} batch {batch} window 512"], flush=True)
    return res


def pretrain_tokens_per_s(tree: Path, out: Path, argv: list[str]) -> float:
    p = run_py(tree, ["-m", "genoml", "-q", "pretrain", *argv, "--out", str(out), "--force"])
    if p.returncode:
        raise RuntimeError(p.stderr[-2000:])
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in recs if r.get("event") == "train" and "tokens_per_s" in r]
    return statistics.mean(rates[1:] or rates)  # logged every 50 steps; the first window includes start-up


def part_pretrain(args, trees: dict[str, Path], work: Path) -> dict:
    genome = str((Path(args.data) / GENOME).resolve())
    res = {}
    for preset, batch, steps in PRETRAIN_RUNS:
        argv = [
            genome,
            "--preset",
            preset,
            "--window",
            "512",
            "--batch-size",
            str(batch),
            "--max-steps",
            str(steps),
            "--eval-every",
            "10000",
            "--checkpoint-every",
            "10000",
            "--threads",
            str(args.threads),
            "--seed",
            "0",
        ]
        per = {name: [] for name in trees}
        for _round in range(args.rounds):
            for name, tree in trees.items():
                per[name].append(pretrain_tokens_per_s(tree, work / f"pt-{name}-{preset}", argv))
        key = f"genoml pretrain {' '.join(argv[1:])} (genome: {GENOME})"
        res[key] = {k: statistics.median(v) for k, v in per.items()}
        res[key]["rounds"] = per
        print("pretrain", preset, res[key], flush=True)
    return res


def predict_seconds(run_dir: Path, seqs: list[str], work: Path, threads: int, precision: str) -> dict:
    """`genoml predict` on all seqs minus on 16 (model loading excluded, as on the pipeline side)."""
    from bench_suite import write_fasta

    from genoml.config import PredictConfig
    from genoml.predict import run_predict

    def timed(records, name):
        fasta = write_fasta(work / name, records)
        t0 = time.time()
        run_predict(
            PredictConfig(
                model=str(run_dir), input=str(fasta), output=os.devnull, threads=threads, precision=precision
            )
        )
        return time.time() - t0

    small, full = timed(seqs[:16], "p16.fa"), timed(seqs, "pall.fa")
    return {"seconds": max(full - small, 1e-9), "n": len(seqs) - 16}


def part_speed(args, work: Path) -> dict:
    import torch
    from bench_suite import hf_trainer_throughput, pipeline_throughput, subset_csv, timed_finetune

    from genoml.config import DataConfig

    torch.set_num_threads(args.threads)
    d = Path(args.data) / "gue" / "tf" / "0"
    model = Path(args.model)
    n, bs, t = args.train, 32, args.threads
    sub = DataConfig(
        train=str(subset_csv(d / "train.csv", work / "data" / "train.csv", n)),
        valid=str(subset_csv(d / "dev.csv", work / "data" / "valid.csv", 64)),
        test=str(subset_csv(d / "test.csv", work / "data" / "test.csv", 64)),
    )
    res: dict = {"model": str(args.model), "train_sequences": n, "batch_size": bs, "threads": t, "rounds": []}
    seqs = [r["sequence"] for r in csv.DictReader(open(d / "test.csv"))][: args.predict]
    run_dir = None
    for rnd in range(args.rounds):
        row: dict = {}
        ft = timed_finetune(work / "ft", str(model), "full", sub, 1, t, bs)
        hf = hf_trainer_throughput(model, Path(sub.train), bs, t)
        row["finetune_seq_per_s"] = n / (ft["loop_s"] or ft["train_s"])
        row["trainer_seq_per_s"] = hf["samples_per_s"]
        run_dir = Path(ft["out"])
        pp = pipeline_throughput(run_dir, seqs, bs, t)
        row["pipeline_seq_per_s"] = len(seqs) / pp["seconds"]
        for precision in ("auto", "int8"):
            gp = predict_seconds(run_dir, seqs, work / "data", t, precision)
            row[f"predict_{precision}_seq_per_s"] = gp["n"] / gp["seconds"]
        row["finetune_ratio"] = row["finetune_seq_per_s"] / row["trainer_seq_per_s"]
        row["predict_auto_ratio"] = row["predict_auto_seq_per_s"] / row["pipeline_seq_per_s"]
        row["predict_int8_ratio"] = row["predict_int8_seq_per_s"] / row["pipeline_seq_per_s"]
        res["rounds"].append(row)
        print("speed round", rnd, json.dumps({k: round(v, 3) for k, v in row.items()}), flush=True)
    for key in res["rounds"][0]:
        res[key] = statistics.median(r[key] for r in res["rounds"])
    return res


def part_precision(args, work: Path) -> dict:
    """Fine-tune the embedded model on GUE tf/0 (subset), then score the whole test set in fp32, bf16, int8."""
    import numpy as np
    import torch
    from bench_suite import subset_csv, timed_finetune

    from genoml.config import DataConfig
    from genoml.metrics import compute_metrics
    from genoml.runs import load_predictor

    torch.set_num_threads(args.threads)
    d = Path(args.data) / "gue" / "tf" / "0"
    sub = DataConfig(
        train=str(subset_csv(d / "train.csv", work / "pdata" / "train.csv", args.precision_train)),
        valid=str(subset_csv(d / "dev.csv", work / "pdata" / "valid.csv", 200)),
        test=str(subset_csv(d / "test.csv", work / "pdata" / "test.csv", 64)),
    )
    ft = timed_finetune(
        work / "prec-ft", str(args.model), "full", sub, args.precision_epochs, args.threads, 32
    )
    rows = list(csv.DictReader(open(d / "test.csv")))
    seqs, y = [r["sequence"] for r in rows], np.asarray([int(r["label"]) for r in rows])
    res: dict = {
        "test_sequences": len(seqs),
        "train_sequences": args.precision_train,
        "epochs": args.precision_epochs,
    }
    ref = None
    for precision in ("fp32", "bf16", "int8"):
        pred, meta = load_predictor(ft["out"])
        pred.precision = precision
        t0 = time.time()
        p = pred.scores(seqs)
        secs = time.time() - t0
        m = compute_metrics("binary", y, p, ["0", "1"], 0.5)
        entry = {
            "mcc": m.get("mcc"),
            "accuracy": m.get("accuracy"),
            "auroc": m.get("auroc"),
            "seq_per_s": len(seqs) / secs,
        }
        if ref is None:
            ref = p
        else:
            entry["max_abs_prob_change"] = float(np.abs(p - ref).max())
            entry["mean_abs_prob_change"] = float(np.abs(p - ref).mean())
            entry["changed_decisions"] = int(((p[:, 1] >= 0.5) != (ref[:, 1] >= 0.5)).sum())
        res[precision] = entry
        print("precision", precision, json.dumps(entry), flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="batcher,pretrain,speed,precision")
    ap.add_argument("--before", default="main", help="git revision measured as 'before'")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--model", default=str(REPO / "data" / "models" / "genoml-dna-small"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--train", type=int, default=1024)
    ap.add_argument("--predict", type=int, default=1000)
    ap.add_argument("--precision-train", type=int, default=4096)
    ap.add_argument("--precision-epochs", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench-device"))
    args = ap.parse_args(argv)
    from genoml.log import setup_logging

    setup_logging(-1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / "result.json"
    results = json.loads(result_path.read_text()) if result_path.is_file() else {}
    results["command"] = "python scripts/bench_device.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="genoml-bench-device-") as tmp:
        tmp = Path(tmp)
        trees = {}
        if {"batcher", "pretrain"} & set(parts):
            trees = {"before": export_revision(args.before, tmp / "before"), "after": REPO}
        for part in parts:
            t0 = time.time()
            if part == "batcher":
                results["batcher"] = part_batcher(args, trees, tmp)
            elif part == "pretrain":
                results["pretrain"] = part_pretrain(args, trees, tmp)
            elif part == "speed":
                results["speed"] = part_speed(args, out / "speed")
            elif part == "precision":
                results["precision"] = part_precision(args, out / "precision")
            else:
                print(f"unknown part {part}", file=sys.stderr)
                return 2
            results[f"{part}_minutes"] = round((time.time() - t0) / 60, 1)
            result_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
