"""genoml's benchmark suite (`make bench`): accuracy on GUE, transfer, UCI splice, a modlamp peptide task,
and speed/memory ratios, written to BENCHMARKS.md. Never part of `make test`.

Reads ../shared/data at run time (skips each dataset with a message when it is absent). Every part
stores its results as JSON under --out/<part>/ and reuses finished runs, so an interrupted suite can
be re-run; BENCHMARKS.md is rendered from whatever parts have results, each number with the machine,
date, genoml version and the command that reproduces it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genoml.bench import machine_info, run_bench  # noqa: E402
from genoml.config import BenchConfig, DataConfig, FinetuneConfig, write_json  # noqa: E402

log = logging.getLogger("genoml.bench_suite")

GUE_TASKS = ["tf/0", "tf/1", "mouse/0", "mouse/3", "prom/prom_core_tata", "prom/prom_300_tata"]
DNABERT2 = {
    "tf/0": 71.99,
    "tf/1": 76.06,
    "mouse/0": 56.76,
    "mouse/3": 66.47,
    "prom/prom_core_tata": 74.17,
    "prom/prom_300_tata": 71.59,
}
NT_2500M = {
    "tf/0": 66.64,
    "tf/1": 70.28,
    "mouse/0": 63.31,
    "mouse/3": 69.44,
    "prom/prom_core_tata": 72.97,
    "prom/prom_300_tata": 79.43,
}
KBANN_ERROR = {"N": 4.62, "EI": 7.56, "IE": 8.47}
PARTS = ("gue", "transfer", "splice", "peptide", "speed")
DEADLINE = {"t": None}


# ---------------------------------------------------------------- helpers


def this_command() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return "python " + " ".join(shlex.quote(str(a)) for a in [shown, *sys.argv[1:]])


def time_left_min() -> float:
    return float("inf") if DEADLINE["t"] is None else (DEADLINE["t"] - time.time()) / 60


def out_of_time(what: str) -> bool:
    if time_left_min() <= 0:
        log.warning("suite: --max-total-min reached; skipping %s", what)
        return True
    return False


def stamp(result: dict, command: str) -> dict:
    """Name the machine, date, version, load and the command next to a part's numbers."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {**result, "machine": machine_info(), "command": command, "load_avg_1min": load}


def pretrained_dir(alphabet: str) -> Path | None:
    from genoml.pretrained import default_model_dir

    return default_model_dir(alphabet)


def random_init_copy(source: Path, dest: Path, seed: int = 0) -> Path:
    """The same architecture and tokenizer as `source`, randomly initialised (the no-pretraining control)."""
    import torch
    from transformers import AutoConfig, AutoModel

    from genoml.archs import detect, native_module

    if (dest / "config.json").is_file():
        return dest
    native = detect(json.loads((source / "config.json").read_text()))
    if native:
        native_module(native)  # AutoConfig/AutoModel know genoml's own architectures (ConvLM) after this
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = AutoModel.from_config(AutoConfig.from_pretrained(source))
    model.save_pretrained(dest, safe_serialization=True)
    for f in source.iterdir():
        if f.is_file() and f.suffix in (".json", ".txt") and f.name not in ("config.json", "genoml.json"):
            shutil.copy(f, dest / f.name)
    (dest / "README.md").write_text(
        f"Random-init copy of {source} (same config and tokenizer, no pretraining).\n"
    )
    return dest


def baseline_nets() -> list[str]:
    """The from-scratch CNNs every GUE/splice/peptide bench runs (the RNN is left out: slow on CPU)."""
    from genoml.config import BASELINE_NETS

    return [n for n in BASELINE_NETS if n.startswith("cnn")]


def bench(name: str, args, train, valid, test, models, *, seeds, budget, epochs, options=None) -> dict | None:
    """One `genoml bench` run (reusing finished runs) -> its bench.json, or None when out of time."""
    if out_of_time(name):
        return None
    cfg = BenchConfig(
        train=str(train),
        valid=str(valid) if valid else None,
        test=str(test) if test else None,
        models=models,
        seeds=seeds,
        out=str(Path(args.out) / name),
        time_budget_min=budget,
        epochs=epochs,
        reuse=True,
        threads=args.threads,
        options=options or {},
        title=name,
    )
    result = run_bench(cfg)
    result.pop("table", None)

    def flags(keys) -> str:
        return " ".join(
            f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')} {v}"
            for k, v in (options or {}).items()
            if v not in (False, None) and k in keys
        )

    cli = {"rc_augment", "rc_average", "batch_size", "lr", "adapt_steps"}  # `genoml bench` flags
    own, other = flags(cli), flags(set(options or {}) - cli)
    result["command"] = (
        f"genoml bench {train}"
        + (f" --valid {valid} --test {test}" if valid and test else "")
        + f" --models {','.join(models)} "
        f"--seeds {seeds} --time-budget {budget} --epochs {epochs} --out {cfg.out}"
        + (f" {own}" if own else "")
        + (f"  (library-only finetune options: {other})" if other else "")
    )
    return result


# ---------------------------------------------------------------- (a) GUE


def transformer_models(args, task: str) -> list[str]:
    """The embedded DNA model under each --strategies entry, plus a random-init copy of it (full)."""
    if args.transformer_tasks != "all" and task not in args.transformer_tasks.split(","):
        return []
    dna = pretrained_dir("dna")
    if dna is None:
        log.warning("suite: no embedded DNA model (data/models); %s transformer rows skipped", task)
        return []
    rand = random_init_copy(dna, Path(args.out) / "random-init" / dna.name)
    return [*(f"{dna}:{s}" for s in args.strategies.split(",")), f"{rand}:full"]


def part_gue(args, data: Path) -> dict | None:
    """Per task: the from-scratch models (--budget) and the transformer rows (--transformer-budget), each a bench."""
    root = data / "gue"
    if not root.is_dir():
        log.warning("suite: %s is absent; GUE skipped", root)
        return None
    earlier = load_part(Path(args.out), "gue") or {}
    tasks = earlier.get("tasks", {})  # tasks of an earlier invocation stay unless re-run now
    options = {"rc_augment": args.rc, "rc_average": args.rc, "batch_size": args.batch_size}
    # --patience: for the from-scratch rows only (the transformer rows keep finetune's default)
    scratch = {**options, **({"patience": args.patience} if args.patience else {})}
    for task in args.gue_tasks.split(","):
        d = root / task
        if not (d / "train.csv").is_file():
            log.warning("suite: %s absent; skipped", d)
            continue
        files = (d / "train.csv", d / "dev.csv", d / "test.csv")
        res = bench(
            f"gue/{task}",
            args,
            *files,
            ["kmer-linear", *baseline_nets()],
            seeds=args.seeds,
            budget=args.budget,
            epochs=args.epochs,
            options=scratch,
        )
        if not res:
            continue
        res["suite_command"] = this_command()
        tasks[task] = res
        models = transformer_models(args, task)
        extra = models and bench(
            f"gue-transformers/{task}",
            args,
            *files,
            models,
            seeds=args.seeds,
            budget=args.transformer_budget,
            epochs=args.epochs,
            options=options,
        )
        if extra:
            res["transformers"] = extra
        # re-read before writing: another suite process may have finished other tasks meanwhile
        tasks = {**(load_part(Path(args.out), "gue") or {}).get("tasks", {}), task: res}
        write_json(Path(args.out) / "gue" / "result.json", stamp({"tasks": tasks}, this_command()))
    return {"tasks": tasks}


def best_by_valid(rows: list[dict]) -> dict:
    """genoml's pick for a task: the model with the best *validation* mean (never chosen on test)."""
    scored = [r for r in rows if r.get("valid_mean") is not None and r.get("mean") is not None]
    return max(scored, key=lambda r: r["valid_mean"])


# ---------------------------------------------------------------- transfer (issue 6)


def part_transfer(args, data: Path) -> dict | None:
    dna = pretrained_dir("dna")
    if dna is None or not (data / "gue").is_dir():
        log.warning("suite: transfer needs the embedded DNA model and ../shared/data/gue; skipped")
        return None
    rand = random_init_copy(dna, Path(args.out) / "random-init" / dna.name)
    tasks = {}
    for task in args.transfer_tasks.split(","):
        d = data / "gue" / task
        if not (d / "train.csv").is_file():
            log.warning("suite: %s absent; transfer on it skipped", d)
            continue
        common = dict(seeds=args.transfer_seeds, budget=args.transfer_budget, epochs=args.epochs)
        res = bench(
            f"transfer/{task}",
            args,
            d / "train.csv",
            d / "dev.csv",
            d / "test.csv",
            [f"{dna}:full", f"{rand}:full"],
            **common,
        )
        if res is None:
            continue
        tasks[task] = {"plain": res}
        if args.adapt_steps and "adapt_steps" in FinetuneConfig.__dataclass_fields__:
            adapted = bench(
                f"transfer-adapt/{task}",
                args,
                d / "train.csv",
                d / "dev.csv",
                d / "test.csv",
                [f"{dna}:full"],
                options={"adapt_steps": args.adapt_steps},
                **common,
            )
            if adapted:
                tasks[task]["adapted"] = adapted
        write_json(Path(args.out) / "transfer" / "result.json", stamp({"tasks": tasks}, this_command()))
    return {"tasks": tasks}


# ---------------------------------------------------------------- (b) UCI splice


def read_splice(path: Path) -> list[tuple[str, str, str]]:
    """The messy UCI file -> (id, sequence, class): strip padding, map IUPAC ambiguity codes to N."""
    rows = []
    with open(path, newline="") as fh:
        for i, parts in enumerate(csv.reader(fh, skipinitialspace=True)):
            if i == 0 or len(parts) < 3:
                continue
            label, donor, seq = (p.strip() for p in parts[:3])
            seq = "".join(c if c in "ACGT" else "N" for c in seq.upper())
            rows.append((f"r{i}-{donor}", seq, label))  # donor names repeat
    return rows


def write_rows(path: Path, rows) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "sequence", "label"])
        w.writerows(rows)
    return path


def part_splice(args, data: Path) -> dict | None:
    from sklearn.model_selection import StratifiedKFold

    src = data / "uci_splice" / "splice.csv"
    if not src.is_file():
        log.warning("suite: %s is absent; UCI splice skipped", src)
        return None
    rows = read_splice(src)
    labels = [r[2] for r in rows]
    folds, out = [], Path(args.out) / "splice"
    skf = StratifiedKFold(n_splits=args.splice_folds, shuffle=True, random_state=0)
    for k, (train_idx, test_idx) in enumerate(skf.split(np.zeros(len(rows)), labels)):
        if out_of_time(f"splice fold {k}"):
            break
        rng = random.Random(k)
        train_idx = list(train_idx)
        rng.shuffle(train_idx)
        n_valid = len(train_idx) // 9
        d = out / f"fold{k}" / "data"
        d.mkdir(parents=True, exist_ok=True)
        paths = [
            write_rows(d / f"{n}.csv", [rows[i] for i in idx])
            for n, idx in (("train", train_idx[n_valid:]), ("valid", train_idx[:n_valid]), ("test", test_idx))
        ]
        res = bench(
            f"splice/fold{k}",
            args,
            *paths,
            ["kmer-linear", *baseline_nets()],
            seeds=1,
            budget=args.splice_budget,
            epochs=args.epochs,
        )
        if res:
            folds.append(res)
    if not folds:
        return None
    result = {"folds": len(folds), "per_model": splice_errors(folds), "n": len(rows), "source": str(src)}
    write_json(out / "result.json", stamp(result, this_command()))
    return result


def splice_errors(folds: list[dict]) -> dict:
    """Per-class error % (1 - recall) pooled over the CV folds' test predictions, per model."""
    from genoml.bench import read_predictions

    per_model: dict[str, dict] = {}
    for res in folds:
        test_rows = {r[0]: r[2] for r in csv.reader(open(res["data"]["test"])) if r[0] != "id"}
        for row in res["rows"]:
            ids, probs = read_predictions(row["runs"][0])
            names = json.loads((Path(row["runs"][0]) / "genoml.json").read_text())["labels"]["names"]
            acc = per_model.setdefault(row["model"], {n: [0, 0] for n in names} | {"_mcc": []})
            for i, p in zip(ids, probs):
                truth = test_rows[i]
                acc[truth][0] += int(names[int(np.argmax(p))] != truth)
                acc[truth][1] += 1
            acc["_mcc"].append(row["mean"])
    return {
        m: {
            "error_pct": {c: round(100 * v[0] / max(v[1], 1), 2) for c, v in a.items() if c != "_mcc"},
            "mcc_mean": float(np.mean(a["_mcc"])),
        }
        for m, a in per_model.items()
    }


# ---------------------------------------------------------------- (c) peptides


def part_peptide(args, data: Path) -> dict | None:
    """Each --peptide-task file: baselines plus the embedded protein model (probe, full) and its random-init
    copy (full), one seeded split, --peptide-seeds seeds. Results of earlier invocations stay."""
    prot = pretrained_dir("protein")
    tasks = (load_part(Path(args.out), "peptide") or {}).get("tasks", {})
    for name in [t.strip() for t in args.peptide_task.split(",") if t.strip()]:
        src = data / "modlamp_peptides" / name
        if not src.is_file():
            log.warning("suite: %s is absent; peptide task skipped", src)
            continue
        models = ["kmer-linear", *baseline_nets()]
        if prot is not None:
            rand = random_init_copy(prot, Path(args.out) / "random-init" / prot.name)
            models += [f"{prot}:probe", f"{prot}:full", f"{rand}:full"]
        else:
            log.warning("suite: no embedded protein model; peptide transformer rows skipped")
        res = bench(
            f"peptide/{src.stem}",
            args,
            src,
            None,
            None,
            models,
            seeds=args.peptide_seeds,
            budget=args.peptide_budget,
            epochs=args.epochs,
        )
        if res:
            tasks = {**(load_part(Path(args.out), "peptide") or {}).get("tasks", {}), src.stem: res}
            write_json(Path(args.out) / "peptide" / "result.json", stamp({"tasks": tasks}, this_command()))
    return {"tasks": tasks} if tasks else None


# ---------------------------------------------------------------- (d) speed and memory


def subset_csv(src: Path, dest: Path, n: int, skip: int = 0) -> Path:
    with open(src) as fh:
        lines = fh.read().splitlines()
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join([lines[0], *lines[1 + skip : 1 + skip + n]]) + "\n")
    return dest


def timed_finetune(
    out: Path, model: str, strategy: str, data: DataConfig, epochs: int, threads: int, batch_size: int
) -> dict:
    from genoml.finetune import run_finetune

    cfg = FinetuneConfig(
        data=data,
        out=str(out),
        force=True,
        model=model,
        strategy=strategy,
        epochs=epochs,
        patience=epochs + 1,
        threads=threads,
        baselines=False,
        attention=False,
        batch_size=batch_size,
        seed=0,
    )
    t0 = time.time()
    res = run_finetune(cfg)
    history = json.loads((out / "history.json").read_text())
    loop = [h["elapsed_s"] for h in history if h.get("event") == "train" and "elapsed_s" in h]
    return {
        "loop_s": loop[-1] if loop else None,
        "wall_s": time.time() - t0,
        "train_s": res["metrics"]["train_seconds"],
        "history": history,
        "out": str(out),
    }


def hf_trainer_throughput(model_dir: Path, train_csv: Path, batch_size: int, threads: int) -> dict:
    """A plain transformers Trainer, same encoder/data/batch size, one epoch: train samples/s."""
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from genoml.tokenizers import load_tokenizer

    torch.set_num_threads(threads)
    tok = load_tokenizer(model_dir)
    rows = list(csv.DictReader(open(train_csv)))
    items = [{"input_ids": tok.encode(r["sequence"]).ids, "labels": int(r["label"])} for r in rows]
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)

    def collate(batch):
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), tok.pad_id)
        for i, b in enumerate(batch):
            ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
        return {
            "input_ids": ids,
            "attention_mask": (ids != tok.pad_id).long(),
            "labels": torch.tensor([b["labels"] for b in batch]),
        }

    targs = TrainingArguments(
        output_dir=str(train_csv.parent / "hf-trainer"),
        per_device_train_batch_size=batch_size,
        num_train_epochs=1,
        learning_rate=1e-4,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=targs, train_dataset=items, data_collator=collate)
    t0 = time.time()
    out = trainer.train()
    return {
        "wall_s": time.time() - t0,
        "samples_per_s": out.metrics.get("train_samples_per_second"),
        "n": len(items),
    }


def pipeline_throughput(run_dir: Path, seqs: list[str], batch_size: int, threads: int) -> dict:
    """transformers pipeline('text-classification') over an AutoModelForSequenceClassification built from the
    run directory's encoder and head (same weights; its pooler is unused compute-wise negligible)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(threads)
    model = AutoModelForSequenceClassification.from_pretrained(run_dir, num_labels=2)
    head = load_file(str(run_dir / "head.safetensors"))
    lin = {k.split(".")[-1]: v for k, v in head.items() if v.dim() in (1, 2) and v.shape[0] == 2}
    if getattr(model, "classifier", None) is not None and hasattr(model.classifier, "weight") and lin:
        model.classifier.load_state_dict({"weight": lin["weight"], "bias": lin["bias"]})
    tokenizer = AutoTokenizer.from_pretrained(run_dir)
    # the HF tokenizer sees a DNA string as one unknown word: feed it genoml's tokens space-separated (as DNABERT
    # users do), checked to give the very same ids, so both sides run the same sequence lengths
    from genoml.tokenizers import load_tokenizer

    tok = load_tokenizer(run_dir)
    texts = []
    for seq in seqs:
        enc = tok.encode(seq)
        texts.append(" ".join(tok.tokens([i for i, sp in zip(enc.ids, enc.special_mask) if not sp])))
    if tokenizer(texts[0]).input_ids != tok.encode(seqs[0]).ids:
        raise RuntimeError("pipeline side: the HF tokenizer does not reproduce genoml's ids; comparison void")
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    pipe(texts[:8], batch_size=batch_size)  # warm-up
    t0 = time.time()
    pipe(texts, batch_size=batch_size, truncation=True)
    return {"seconds": time.time() - t0, "n": len(seqs)}


def genoml_predict_throughput(run_dir: Path, seqs: list[str], workdir: Path, threads: int) -> dict:
    """`genoml predict` (FASTA in, TSV out) on all `seqs` minus the same on 16 of them: the marginal cost,
    i.e. model loading excluded as on the pipeline side (which is timed after a warm-up)."""
    from genoml.config import PredictConfig
    from genoml.predict import run_predict

    def timed(records: list[str], name: str) -> float:
        fasta = write_fasta(workdir / name, records)
        t0 = time.time()
        run_predict(PredictConfig(model=str(run_dir), input=str(fasta), output=os.devnull, threads=threads))
        return time.time() - t0

    small, full = timed(seqs[:16], "predict16.fa"), timed(seqs, "predict.fa")
    return {"seconds": max(full - small, 1e-9), "n": len(seqs) - 16, "total_s": full}


def write_fasta(path: Path, seqs: list[str]) -> Path:
    with open(path, "w") as fh:
        for i, s in enumerate(seqs):
            fh.write(f">s{i}\n{s}\n")
    return path


def random_fasta(path: Path, n: int, length: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "w") as fh:
        for start in range(0, n, 10000):
            block = letters[rng.integers(0, 4, size=(min(10000, n - start), length))]
            fh.write("".join(f">r{start + i}\n{row.tobytes().decode()}\n" for i, row in enumerate(block)))
    return path


def peak_rss_predict(run_dir: Path, fasta: Path, threads: int) -> dict:
    """Peak RSS (MiB) of `genoml predict` in a fresh process, from /usr/bin/time -v (or getrusage)."""
    genoml = [
        sys.executable,
        "-m",
        "genoml",
        "-q",
        "predict",
        "--model",
        str(run_dir),
        str(fasta),
        "-o",
        os.devnull,
        "--threads",
        str(threads),
    ]
    t0 = time.time()
    if Path("/usr/bin/time").is_file():
        p = subprocess.run(["/usr/bin/time", "-v", *genoml], capture_output=True, text=True, cwd=REPO)
        line = next((ln for ln in p.stderr.splitlines() if "Maximum resident set size" in ln), None)
        rss = int(line.split(":")[1]) / 1024 if line else None
    else:
        import resource

        p = subprocess.run(genoml, capture_output=True, text=True, cwd=REPO)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if p.returncode != 0:
        raise RuntimeError(f"predict failed: {p.stderr[-500:]}")
    return {"peak_rss_mib": rss, "seconds": time.time() - t0}


def matmul_peak_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    """Measured fp32 matmul throughput (GFLOP/s) with `threads` torch threads: the MFU denominator."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, t_end = 0.0, time.time() + seconds
    while time.time() < t_end:
        t0 = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def encoder_flops_per_seq(model_dir: Path, tokens: int) -> float:
    """Forward FLOPs of one sequence: 2 x non-embedding parameters x tokens + attention (4 L^2 H per layer)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_dir)
    model = AutoModel.from_config(config)
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    dense = sum(p.numel() for p in model.parameters()) - emb
    return 2 * dense * tokens + 4 * config.num_hidden_layers * tokens**2 * config.hidden_size


def part_speed(args, data: Path) -> dict | None:
    d = data / "gue" / "tf" / "0"
    dna = Path(args.speed_model) if args.speed_model else pretrained_dir("dna")
    if not d.is_dir() or dna is None:
        log.warning("suite: speed needs ../shared/data/gue/tf/0 and the embedded DNA model; skipped")
        return None
    if out_of_time("speed"):
        return None
    out = Path(args.out) / "speed"
    t, bs, n = args.threads or 1, 32, args.speed_train
    sub = DataConfig(
        train=str(subset_csv(d / "train.csv", out / "data" / "train.csv", n)),
        valid=str(subset_csv(d / "dev.csv", out / "data" / "valid.csv", 64)),
        test=str(subset_csv(d / "test.csv", out / "data" / "test.csv", 64)),
    )
    res: dict = {"train_sequences": n, "batch_size": bs, "threads": t, "model": str(dna)}
    # finetune throughput vs a plain transformers Trainer (one epoch each, same model/data/batch size)
    ft = timed_finetune(out / "ft-full", str(dna), "full", sub, 1, t, bs)
    hf = hf_trainer_throughput(dna, Path(sub.train), bs, t)
    loop_s = ft["loop_s"] or ft["train_s"]
    res["finetune_vs_trainer"] = {
        "genoml_seq_per_s": n / loop_s,
        "genoml_end_to_end_seq_per_s": n / ft["train_s"],
        "trainer_seq_per_s": hf["samples_per_s"],
        "ratio": (n / loop_s) / hf["samples_per_s"],
    }
    # predict vs transformers pipeline on the same saved model
    seqs = [r["sequence"] for r in csv.DictReader(open(d / "test.csv"))][: args.speed_predict]
    gp = genoml_predict_throughput(Path(ft["out"]), seqs, out / "data", t)
    pp = pipeline_throughput(Path(ft["out"]), seqs, bs, t)
    res["predict_vs_pipeline"] = {
        "n": len(seqs),
        "genoml_seq_per_s": gp["n"] / gp["seconds"],
        "pipeline_seq_per_s": len(seqs) / pp["seconds"],
        "ratio": (gp["n"] / gp["seconds"]) / (len(seqs) / pp["seconds"]),
    }
    # CPU model-FLOPs utilisation of predict against a measured fp32 matmul peak
    tokens = len(__import__("genoml.tokenizers", fromlist=["x"]).load_tokenizer(dna).encode(seqs[0]).ids)
    peak = matmul_peak_gflops(t)
    achieved = encoder_flops_per_seq(dna, tokens) * gp["n"] / gp["seconds"] / 1e9
    res["predict_mfu"] = {
        "tokens_per_seq": tokens,
        "achieved_gflops": achieved,
        "matmul_peak_gflops": peak,
        "mfu": achieved / peak,
    }
    # probe with cached embeddings vs the same frozen encoder re-run every epoch (partial:0)
    epochs = args.probe_epochs
    probe = timed_finetune(out / "probe", str(dna), "probe", sub, epochs, t, bs)
    frozen = timed_finetune(out / "frozen", str(dna), "partial:0", sub, epochs, t, bs)
    res["probe_cache"] = {
        "epochs": epochs,
        "probe_train_s": probe["train_s"],
        "uncached_train_s": frozen["train_s"],
        "speedup": frozen["train_s"] / probe["train_s"],
        "epoch_times": epoch_times(probe["history"], probe["train_s"]),
        "uncached_epoch_times": epoch_times(frozen["history"], frozen["train_s"]),
    }
    write_json(out / "result.json", stamp(res, this_command()))
    # peak RSS of predict at growing input sizes (a small CNN run keeps this about memory, not compute)
    cnn = timed_finetune(out / "cnn", "cnn", "full", sub, 1, t, bs)
    res["predict_rss"] = []
    for size in [int(s) for s in args.rss_sizes.split(",") if s]:
        if out_of_time(f"RSS at {size}"):
            break
        fa = random_fasta(out / "data" / f"rand{size}.fa", size, 101)
        res["predict_rss"].append({"records": size, **peak_rss_predict(Path(cnn["out"]), fa, t)})
        fa.unlink()
    write_json(out / "result.json", stamp(res, this_command()))
    return res


def epoch_times(history: list[dict], train_s: float) -> dict | None:
    """Seconds of epoch 1 (incl. feature caching, set-up and its evaluation) and of each later epoch, from the
    trainer's elapsed_s at the epoch-end evaluations; epoch 1 = train_seconds - the later epochs."""
    train = [(h["step"], h["elapsed_s"]) for h in history if h.get("event") == "train" and "elapsed_s" in h]
    evals = [h["step"] for h in history if h.get("event") == "eval"]
    if len(evals) < 2 or not train:
        return None
    at = [max((e for s, e in train if s <= step), default=0.0) for step in evals]
    later = [round(b - a, 2) for a, b in zip(at, at[1:])]
    return {
        "epoch1_s": round(train_s - sum(later), 2),
        "later_epochs_s": later,
        "later_over_first": (sum(later) / len(later)) / max(train_s - sum(later), 1e-9),
    }


# ---------------------------------------------------------------- BENCHMARKS.md


def load_part(out: Path, part: str) -> dict | None:
    p = out / part / "result.json"
    return json.loads(p.read_text()) if p.is_file() else None


def machine_line(res: dict) -> str:
    m = res.get("machine", {})
    load = res.get("load_avg_1min")
    return (
        f"machine: {m.get('cpu')} ({m.get('cores')} cores, torch {m.get('torch')}, {m.get('torch_threads')} "
        f"thread(s)), genoml {m.get('genoml')}, {m.get('date')}"
        + (f", 1-min load average at write {load:.1f}" if load is not None else "")
    )


def x100(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def render_gue(res: dict) -> list[str]:
    lines = [
        "## GUE (test MCC ×100)",
        "",
        machine_line(res) + ".",
        "",
        "genoml's pick per task is the model with the best **dev** MCC (never chosen on test); its test MCC is "
        "reported. Budget per run and seeds are in each task's command.",
        "",
        "| task | genoml pick (by dev) | genoml test MCC | best test MCC of any row | DNABERT-2 | NT-2500M | "
        "Δ pick − DNABERT-2 | wall time of the task (all rows) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    details, beat, close = [], 0, 0
    for task, b in res["tasks"].items():
        rows = b["rows"] + b.get("transformers", {}).get("rows", [])
        pick = best_by_valid(rows)
        best = max((r for r in rows if r["mean"] is not None), key=lambda r: r["mean"])
        wall = sum((r["wall_s"] or 0) * len(r["per_seed"]) for r in rows)
        lines.append(
            f"| {task} | {short(pick['model'])} | {x100(pick['mean'])} | {x100(best['mean'])} "
            f"({short(best['model'])}) | {DNABERT2[task]:.2f} | {NT_2500M[task]:.2f} | "
            f"{100 * pick['mean'] - DNABERT2[task]:+.2f} | {wall / 60:.1f} min |"
        )
        gap = 100 * pick["mean"] - DNABERT2[task]
        beat, close = beat + (gap >= 0), close + (-3 <= gap < 0)
        details += [
            f"### {task}",
            "",
            f"{b['machine']['date']}; suite command: `{b.get('suite_command', res.get('command'))}`",
            "",
            f"`{b['command']}`",
            "",
            table_rows(b),
            "",
        ]
        if "transformers" in b:
            t = b["transformers"]
            details += [
                f"Transformer rows (separate bench, its own budget): `{t['command']}`",
                "",
                table_rows(t),
                "",
            ]
    n = len(res["tasks"])
    met = n == len(GUE_TASKS) and beat >= 4 and beat + close == n
    verdict = (
        f"Goal check (issue 7: genoml ≥ DNABERT-2 on at least 4 of 6 tasks, within 3 MCC points on the rest): "
        f"{beat} of {n} task(s) at or above DNABERT-2, {close} more within 3 points ({n} of {len(GUE_TASKS)} tasks run) → goal "
        f"**{'met' if met else 'not met'}** in this run."
    )
    return lines + ["", verdict, "", *details]


def short(model: str) -> str:
    return model.replace(str(REPO) + "/", "").replace("runs/bench/random-init/", "random-init/")


def table_rows(b: dict) -> str:
    from genoml.bench import markdown_table

    rows = [{**r, "name": short(r["name"])} for r in b["rows"]]
    return markdown_table(rows, b["headline"])


def render_transfer(res: dict) -> list[str]:
    lines = [
        "## Transfer: pretrained vs random-init, same architecture (issue 6)",
        "",
        machine_line(res) + ".",
        "",
        "| task | pretrained full (test MCC ×100, mean ± sd) | random-init full | Δ | with --adapt-steps | seeds |",
        "|---|---|---|---|---|---|",
    ]
    cmds = []
    for task, t in res["tasks"].items():
        rows = t["plain"]["rows"]
        pre, rnd = rows[0], rows[1]
        ad = t.get("adapted", {}).get("rows", [None])[0]

        def ms(r):
            return (
                "–" if r is None else f"{x100(r['mean'])} ± {x100(r['sd']) if r['sd'] is not None else '–'}"
            )

        lines.append(
            f"| {task} | {ms(pre)} | {ms(rnd)} | {100 * (pre['mean'] - rnd['mean']):+.2f} | {ms(ad)} "
            f"| {len(pre['per_seed'])} |"
        )
        cmds += [f"- `{t['plain']['command']}`"] + (
            [f"- `{t['adapted']['command']}`"] if "adapted" in t else []
        )
    deltas = {
        task: 100 * (t["plain"]["rows"][0]["mean"] - t["plain"]["rows"][1]["mean"])
        for task, t in res["tasks"].items()
    }
    held = [task for task, d in deltas.items() if d >= 3]
    verdict = (
        "Goal check (issue 6: pretrained ≥ random-init + 3 MCC points, mean of 3 seeds): "
        f"holds on {len(held)} of {len(deltas)} task(s){' (' + ', '.join(held) + ')' if held else ''}."
    )
    return lines + ["", verdict, "", *cmds, ""]


def render_splice(res: dict) -> list[str]:
    lines = [
        "## UCI splice junctions (3 classes, 10-fold CV)",
        "",
        machine_line(res) + ".",
        "",
        f"{res['n']} sequences from `{res['source']}` (padding stripped, IUPAC ambiguity codes mapped to N), "
        f"stratified {res['folds']}-fold CV (seed 0), 1/9 of each training fold held out for early stopping. "
        "Error % = 1 − recall of the class, pooled over the folds.",
        "",
        "| model | N error % | EI error % | IE error % | mean fold MCC ×100 |",
        "|---|---|---|---|---|",
        f"| KBANN (published) | {KBANN_ERROR['N']} | {KBANN_ERROR['EI']} | {KBANN_ERROR['IE']} | – |",
    ]
    for m, v in res["per_model"].items():
        e = v["error_pct"]
        lines.append(f"| genoml {m} | {e.get('N')} | {e.get('EI')} | {e.get('IE')} | {x100(v['mcc_mean'])} |")
    return lines + ["", f"`{res['command']}`", ""]


def render_peptide(res: dict) -> list[str]:
    if "tasks" in res:
        return [line for t in res["tasks"].values() for line in render_peptide(t)]
    full = [(short(r["name"]), r) for r in res["rows"] if r.get("strategy") == "full"]
    pre = next((r for n, r in full if "genoml-protein-small" in n and not n.startswith("random-init/")), None)
    rnd = next((r for n, r in full if n.startswith("random-init/")), None)
    transfer = []
    if pre and rnd and pre["mean"] is not None and rnd["mean"] is not None:
        d = 100 * (pre["mean"] - rnd["mean"])
        transfer = [
            f"Transfer (issue 6): embedded protein model, full fine-tuning, pretrained {x100(pre['mean'])} vs "
            f"random-init {x100(rnd['mean'])} test MCC ×100 (mean of {len(pre['per_seed'])} seeds): Δ {d:+.2f} → "
            f"the ≥ 3-point goal **{'holds' if d >= 3 else 'does not hold'}** here.",
            "",
        ]
    return [
        f"## Protein: modlamp {res['title']}",
        "",
        machine_line(res) + ".",
        "",
        "One seeded stratified split (80/10/10) of the file, the same for every model.",
        "",
        table_rows(res),
        "",
        *transfer,
        f"`{res['command']}`",
        "",
    ]


def render_speed(res: dict) -> list[str]:
    lines = [
        "## Speed and memory (ratios measured side by side in one run)",
        "",
        machine_line(res) + ".",
        "",
        f"Model `{short(res['model'])}`, {res['train_sequences']} GUE tf/0 training sequences, batch size "
        f"{res['batch_size']}, {res['threads']} torch thread(s).",
        "",
    ]
    readme = (
        REPO / res["model"] / "README.md"
        if not Path(res["model"]).is_absolute()
        else Path(res["model"]) / "README.md"
    )
    if readme.is_file():
        lines += [f"Model card of that folder: {readme.read_text().splitlines()[0]}", ""]
    if "finetune_vs_trainer" in res:
        f = res["finetune_vs_trainer"]
        lines.append(
            f"- finetune (full, 1 epoch, training loop): genoml {f['genoml_seq_per_s']:.1f} seq/s vs transformers "
            f"`Trainer` {f['trainer_seq_per_s']:.1f} seq/s → **{f['ratio']:.2f}×** (genoml end to end incl. model "
            f"build and validation: {f.get('genoml_end_to_end_seq_per_s', float('nan')):.1f} seq/s)"
        )
    if "predict_vs_pipeline" in res:
        p = res["predict_vs_pipeline"]
        lines.append(
            f"- predict ({p['n']} GUE tf/0 test sequences; genoml timed as predict(N) − predict(16) so model "
            f"loading is excluded on both sides): genoml {p['genoml_seq_per_s']:.1f} seq/s vs "
            f"`pipeline('text-classification')` {p['pipeline_seq_per_s']:.1f} seq/s → **{p['ratio']:.2f}×**"
        )
    if "predict_mfu" in res:
        m = res["predict_mfu"]
        lines.append(
            f"- predict model-FLOPs utilisation: {m['achieved_gflops']:.1f} GFLOP/s of a measured fp32 "
            f"matmul peak {m['matmul_peak_gflops']:.1f} GFLOP/s → **{100 * m['mfu']:.0f}% MFU** "
            f"({m['tokens_per_seq']} tokens/sequence)"
        )
    if "probe_cache" in res:
        c = res["probe_cache"]
        lines.append(
            f"- probe with cached embeddings, {c['epochs']} epochs: {c['probe_train_s']:.1f} s vs the same "
            f"frozen encoder re-run each epoch (partial:0) {c['uncached_train_s']:.1f} s → **{c['speedup']:.2f}×**"
        )
        for name, key in (("cached", "epoch_times"), ("uncached", "uncached_epoch_times")):
            e = c.get(key)
            if e:
                lines.append(
                    f"  - {name}: epoch 1 {e['epoch1_s']:.1f} s (incl. caching/set-up), later epochs "
                    f"{e['later_epochs_s']} s → later/first = **{100 * e['later_over_first']:.1f}%**"
                )
    for r in res.get("predict_rss", []):
        lines.append(
            f"- predict peak RSS, {r['records']:,} random 101-bp records (cnn run): "
            f"{r['peak_rss_mib']:.0f} MiB ({r['seconds']:.0f} s)"
        )
    return lines + ["", f"`{res['command']}`", ""]


def write_markdown(out: Path, dest: Path) -> None:
    parts = {p: load_part(out, p) for p in PARTS}
    body = [
        "# genoml benchmarks",
        "",
        "Written by `make bench` (`scripts/bench_suite.py`); every section names its machine, date, genoml "
        "version and the command that reproduces it. Numbers were measured on a shared 2-core CPU while other "
        "jobs ran, so wall times are pessimistic and noisy. `make bench` defaults follow the issues' protocol (3 seeds, "
        "30 minutes per run); a committed file may come from a shorter run — each section's command says exactly "
        "what was run (seeds, --time-budget minutes per run, epochs).",
        "",
    ]
    renders = {
        "gue": render_gue,
        "transfer": render_transfer,
        "splice": render_splice,
        "peptide": render_peptide,
        "speed": render_speed,
    }
    for name in PARTS:
        if parts[name]:
            body += renders[name](parts[name])
        else:
            body += [
                f"## {name}",
                "",
                "not run in this suite invocation (dataset absent, part not selected, or out of time; see the log).",
                "",
            ]
    body += render_rss_1m(out / "rss-1m")
    body += kept_sections(dest)
    dest.write_text(relative_paths("\n".join(body) + "\n"))


def relative_paths(text: str) -> str:
    """No absolute paths of this machine in BENCHMARKS.md: the checkout becomes '', ../shared stays relative."""
    return text.replace(str(REPO.parent / "shared") + "/", "../shared/").replace(str(REPO) + "/", "")


KEPT = "<!-- kept: written by another script; make bench keeps this section -->"


def kept_sections(dest: Path) -> list[str]:
    """Sections of the existing file marked with KEPT (from scripts/bench_defaults.py, bench_transfer.py):
    `make bench` does not run them, so it carries them over unchanged."""
    if not dest.is_file():
        return []
    out, current = [], None
    for line in dest.read_text().splitlines():
        if line.startswith("## "):
            if current and KEPT in current:
                out += current
            current = [line]
        elif current is not None:
            current.append(line)
    if current and KEPT in current:
        out += current
    return out


def render_rss_1m(folder: Path) -> list[str]:
    """Predict peak RSS at up to 1M records, from `scripts/measure_predict_rss.py --out runs/bench/rss-1m`
    (rss.json; before.json, when present, is an earlier measurement kept for comparison)."""
    if not (folder / "rss.json").is_file():
        return []
    now = json.loads((folder / "rss.json").read_text())
    before = json.loads((folder / "before.json").read_text()) if (folder / "before.json").is_file() else None
    old = {r["records"]: r for r in before["rows"]} if before else {}
    lines = [
        "## Predict memory at up to 1,000,000 records (issue 8, load)",
        "",
        f"Measured {now['date']} with `{now['command']}` (model `{now['run_dir']}`, random "
        f"{now['rows'][0]['length']}-bp records, each size in a fresh process under `/usr/bin/time -v`, 1 thread).",
        "",
        "| records | peak RSS | wall s |" + (f" peak RSS at {before['date']} |" if before else ""),
        "|---|---|---|" + ("---|" if before else ""),
    ]
    for r in now["rows"]:
        cells = [f"{r['records']:,}", f"{r['peak_rss_mib']:.0f} MiB", f"{r['seconds']:.0f}"]
        if before:
            prev = old.get(r["records"])
            cells.append(f"{prev['peak_rss_mib']:.0f} MiB" if prev else "-")
        lines.append("| " + " | ".join(cells) + " |")
    rows = now["rows"]
    if len(rows) > 1:
        lines += [
            "",
            f"Growth from {rows[0]['records']:,} to {rows[-1]['records']:,} records: "
            f"**{rows[-1]['peak_rss_mib'] - rows[0]['peak_rss_mib']:.0f} MiB**.",
        ]
    if before:
        lines += [
            "The earlier column predates the id-registry fix: the readers kept every seen id (to flag duplicates)",
            "in a dict of strings; they now keep 64-bit hashes and first line numbers in sorted numpy arrays",
            "(`genoml.io.IdRegistry`, 16 bytes per id).",
        ]
    return [*lines, ""]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--write", default=None, help="Markdown file to (re)write, e.g. BENCHMARKS.md")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--gue-tasks", default=",".join(GUE_TASKS))
    ap.add_argument(
        "--strategies", default="probe,partial:2,full,lora", help="pretrained-model strategies on GUE"
    )
    ap.add_argument("--transformer-tasks", default="all", help="GUE tasks that also get the transformer rows")
    ap.add_argument("--transformer-budget", type=float, default=30.0, help="minutes per GUE transformer run")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=30.0, help="minutes per GUE run (model x seed)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument(
        "--patience",
        type=int,
        default=None,
        help="GUE from-scratch rows: evaluations without improvement before early stopping (finetune default "
        "3). Under a time budget the lr decays to 0 when the budget ends, and the best dev checkpoint is kept, so a "
        "value >= --epochs (no early stop) lets the schedule finish.",
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--rc", action=argparse.BooleanOptionalAction, default=True, help="--rc-augment + --rc-average"
    )
    ap.add_argument("--transfer-tasks", default="mouse/0,mouse/3", help="GUE tasks of the transfer table")
    ap.add_argument("--transfer-seeds", type=int, default=3)
    ap.add_argument("--transfer-budget", type=float, default=10.0)
    ap.add_argument("--adapt-steps", type=int, default=500)
    ap.add_argument("--splice-folds", type=int, default=10)
    ap.add_argument("--splice-budget", type=float, default=3.0)
    ap.add_argument("--peptide-task", default="AMPvsUniProt.csv,AMPvsTMset.csv", help="comma list of files")
    ap.add_argument("--peptide-seeds", type=int, default=3)
    ap.add_argument("--peptide-budget", type=float, default=5.0)
    ap.add_argument(
        "--speed-model",
        default=None,
        help="HF model folder for the speed part (default: the embedded DNA model)",
    )
    ap.add_argument("--speed-train", type=int, default=2048)
    ap.add_argument("--speed-predict", type=int, default=1000)
    ap.add_argument("--probe-epochs", type=int, default=5)
    ap.add_argument("--rss-sizes", default="10000,200000,1000000")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--max-total-min", type=float, default=None, help="start nothing new after this many minutes"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from genoml.log import setup_logging

    args = parse_args(argv)
    setup_logging(0)
    log.setLevel(logging.INFO)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.max_total_min:
        DEADLINE["t"] = time.time() + 60 * args.max_total_min
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not data.is_dir():
        log.warning("suite: %s is absent; every dataset is skipped", data)
    runners = {
        "gue": part_gue,
        "transfer": part_transfer,
        "splice": part_splice,
        "peptide": part_peptide,
        "speed": part_speed,
    }
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        if part not in runners:
            log.error("suite: --parts %s: unknown part; use some of %s", part, ",".join(PARTS))
            return 2
        if data.is_dir():
            t0 = time.time()
            runners[part](args, data)
            log.info("suite: %s done in %.1f min", part, (time.time() - t0) / 60)
        if args.write:
            write_markdown(out, Path(args.write))
    if args.write:
        write_markdown(out, Path(args.write))
    return 0


if __name__ == "__main__":
    sys.exit(main())
