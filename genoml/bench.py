"""`genoml bench`: every model/strategy on the same split, seeds and time budget, through `run_finetune`.

One run directory per model x seed under `out/<model>/seed<k>`; the test headline metric (mean +- sd
over seeds), AUROC, wall time, trainable parameters and training sequences/s are collected into
`bench.json`, `bench.md` (Markdown table) and `bench.png` (bar chart with error bars). Each model is
compared with the best one by a paired bootstrap over test rows (seed-averaged metric) and by the
seed spread; differences inside either are marked "within noise".
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from genoml import __version__, predictions
from genoml.config import BASELINE_MODELS, STRATEGIES, BenchConfig, DataConfig, FinetuneConfig, write_json
from genoml.data import stratified_split
from genoml.errors import InputError
from genoml.finetune import run_finetune
from genoml.io import InputSpec, read_records
from genoml.metrics import headline_fn, headline_metric, paired_bootstrap
from genoml.outputs import discard_outputs, prepare_output_dir, record_outputs
from genoml.presets import PRESETS
from genoml.runs import RunMeta

log = logging.getLogger(__name__)


def check_bench(cfg: BenchConfig) -> None:
    """Refuse a bench before any training: the device, then `cfg.validate()`, then every model name."""
    from genoml.device import resolve_device  # heavy: genoml.device imports torch

    resolve_device(cfg.device)
    cfg.validate()
    bad_names = [spec for spec in cfg.models if not known_model_name(parse_model_spec(spec)[0])]
    if bad_names:
        raise InputError(
            f"--models {','.join(bad_names)}: not a model genoml knows; use {', '.join(BASELINE_MODELS)}, "
            "random:<preset>, a model folder or a hub id (owner/name)"
        )


def known_model_name(name: str) -> bool:
    """A baseline, random:<preset>, an existing folder or something shaped like a hub id (owner/name)."""
    if name in BASELINE_MODELS or name == "auto" or Path(name).expanduser().is_dir():
        return True
    if name.startswith("random:"):
        return name.split(":")[1] in PRESETS
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) is not None


# ---------------------------------------------------------------- model specs and runs


def parse_model_spec(spec: str) -> tuple[str, str | None]:
    """`name[:strategy]` -> (name, strategy or None). `random:small:probe`, `dir:partial:2` work too."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit():
        name, sep2, kind = head.rpartition(":")
        if sep2 and kind == "partial" and name:
            return name, f"partial:{tail}"
    if sep and head and tail in STRATEGIES:
        name, strategy = head, tail
    else:
        name, strategy = spec, None
    if not name:
        raise InputError(
            f"--models: empty model name in '{spec}'; use name[:strategy], e.g. cnn or folder:lora"
        )
    if strategy and name in BASELINE_MODELS:
        raise InputError(f"--models {spec}: '{name}' is a baseline trained from scratch; drop ':{strategy}'")
    return name, strategy


def slug(spec: str, index: int) -> str:
    name, strategy = parse_model_spec(spec)
    base = Path(name).name if Path(name).is_dir() else name
    text = base + (f"-{strategy}" if strategy else "")
    return f"{index:02d}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def finetune_config(
    cfg: BenchConfig, spec: str, seed: int, run_dir: Path, data: DataConfig
) -> FinetuneConfig:
    name, strategy = parse_model_spec(spec)
    return FinetuneConfig(
        data=dataclasses.replace(data),
        out=str(run_dir),
        force=True,
        model=name,
        strategy=strategy or "full",
        seed=seed,
        epochs=cfg.epochs,
        time_budget_min=cfg.time_budget_min,
        threads=cfg.threads,
        device=cfg.device,
        **{"baselines": False, "attention": False, **cfg.options},
    )


def _finished_run(run_dir: Path, fcfg: FinetuneConfig) -> bool:
    """A complete earlier run with the same settings (ignoring out/force/threads)."""
    meta_path, metrics_path = run_dir / "genoml.json", run_dir / "metrics.json"
    if not meta_path.is_file() or not metrics_path.is_file() or (run_dir / ".incomplete").exists():
        return False
    try:
        old = RunMeta.read(run_dir).config
    except InputError:
        return False
    new = fcfg.to_dict()
    keys = set(new) - {"out", "force", "threads", "resume", "device"}
    if fcfg.model == "kmer-linear":  # no training loop: epochs and time budget do not change it
        keys -= {"epochs", "time_budget_min", "patience", "lr", "batch_size"}
    return all(json.loads(json.dumps(old.get(k))) == json.loads(json.dumps(new[k])) for k in keys)


def run_one(cfg: BenchConfig, spec: str, seed: int, run_dir: Path, data: DataConfig) -> dict:
    """Train/evaluate one model with one seed (or reuse a finished identical run) -> its summary row."""
    fcfg = finetune_config(cfg, spec, seed, run_dir, data)
    if cfg.reuse and _finished_run(run_dir, fcfg):
        log.info("bench: reusing %s", run_dir)
        wall = (
            json.loads((run_dir / "bench_run.json").read_text())["wall_s"]
            if (run_dir / "bench_run.json").is_file()
            else None
        )
    else:
        log.info("bench: %s seed %d -> %s", spec, seed, run_dir)
        t0 = time.time()
        run_finetune(fcfg, command=["genoml", "bench", "(internal)", spec, f"seed={seed}"])
        wall = round(time.time() - t0, 2)
        write_json(run_dir / "bench_run.json", {"wall_s": wall, "spec": spec, "seed": seed})
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"seed": seed, "run_dir": str(run_dir), "wall_s": wall, "metrics": metrics}


# ---------------------------------------------------------------- splits


def fixed_split(cfg: BenchConfig, out: Path) -> DataConfig:
    """The data every run sees. Without --valid/--test, one seeded stratified split written under out/split."""
    if cfg.valid and cfg.test:
        return DataConfig(train=cfg.train, valid=cfg.valid, test=cfg.test)
    records = list(read_records(InputSpec(path=cfg.train)))
    if not records:
        raise InputError(f"{cfg.train}: no sequences found")
    fractions = (0.0 if cfg.valid else 0.1, 0.0 if cfg.test else 0.1)
    parts = dict(
        zip(("train", "valid", "test"), stratified_split([r.label or "" for r in records], fractions, 0))
    )
    split_dir = out / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    paths = {"valid": cfg.valid, "test": cfg.test}
    for name in ("train", "valid", "test"):
        if name == "train" or not paths[name]:
            paths[name] = str(split_dir / f"{name}.csv")
            with open(paths[name], "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["id", "sequence", "label"])
                w.writerows([records[i].id, records[i].seq, records[i].label] for i in parts[name])
    log.info("bench: split %s once (seed 0) into %s", cfg.train, split_dir)
    return DataConfig(train=paths["train"], valid=paths["valid"], test=paths["test"])


# ---------------------------------------------------------------- predictions and noise


def read_predictions(run_dir: str | Path) -> tuple[list[str], np.ndarray]:
    """predictions_test.tsv of a run -> (ids, outputs (N, C)); regression gives (N, 1)."""
    table = predictions.read_predictions(Path(run_dir) / "predictions_test.tsv")
    return table.ids, table.scores


def test_targets(test_path: str, run_dir: str | Path) -> tuple[str, np.ndarray, list[str]]:
    """(task, y_true, ids) of the test file, encoded with the run's label space."""
    space = RunMeta.read(run_dir).labels
    records = list(read_records(InputSpec(path=test_path)))
    y = space.encode([r.label for r in records], where=test_path).numpy()
    y = space.decode(y)
    return space.task, y, [r.id for r in records]


def seed_stack(rows: list[dict], ids: list[str]) -> np.ndarray:
    """Per-seed test outputs stacked (N, S, C), checked against the test ids."""
    stack = []
    for row in rows:
        run_ids, values = read_predictions(row["run_dir"])
        if run_ids != ids:
            raise InputError(
                f"{row['run_dir']}/predictions_test.tsv: ids differ from the test file; rerun the bench"
            )
        stack.append(values)
    return np.stack(stack, axis=1)


def compare(task: str, y: np.ndarray, best: np.ndarray, other: np.ndarray, threshold: float = 0.5) -> dict:
    """Paired bootstrap of (other - best) on the seed-averaged headline metric, same resampled rows."""
    fn = headline_fn(task, threshold)

    def mean_over_seeds(yy: np.ndarray, p: np.ndarray) -> float:  # p (N, S, C)
        values = [fn(yy, p[:, s] if task != "regression" else p[:, s, 0]) for s in range(p.shape[1])]
        return float(np.mean(values))

    n = max(y.shape[0], 1)
    return paired_bootstrap(mean_over_seeds, y, other, best, n=300 if n > 5000 else 1000)


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else None


def train_throughput(run: dict) -> float | None:
    """Training sequences (windows, incl. reverse complements) per second of the training loop, from the
    trainer's last logged step; kmer-linear (no loop): training sequences / training seconds."""
    run_dir = Path(run["run_dir"])
    try:
        history = json.loads((run_dir / "history.json").read_text())
        batch = RunMeta.read(run_dir).config["batch_size"]
    except (OSError, KeyError, json.JSONDecodeError, InputError):
        history, batch = [], None
    steps = [h for h in history if h.get("event") == "train" and h.get("elapsed_s")]
    if steps and batch:
        return steps[-1]["step"] * batch / steps[-1]["elapsed_s"]
    return run["metrics"].get("train_windows_per_s")


def summarize(spec: str, runs: list[dict], headline: str) -> dict:
    """One table row: headline mean/sd over seeds, AUROC, wall time, parameters, train sequences/s."""
    tests = [r["metrics"].get("test", {}) for r in runs]
    mean, sd = _stats([t.get(headline) for t in tests])
    auroc, _ = _stats([t.get("auroc") for t in tests])
    valid, _ = _stats([r["metrics"].get("valid", {}).get(headline) for r in runs])
    wall, _ = _stats([r["wall_s"] for r in runs])
    train_s, _ = _stats([r["metrics"].get("train_seconds") for r in runs])
    speed, _ = _stats([train_throughput(r) for r in runs])
    params = runs[0]["metrics"].get("parameters") or {}
    name, strategy = parse_model_spec(spec)
    return {
        "model": spec,
        "name": name,
        "strategy": strategy or ("full" if name not in BASELINE_MODELS else "-"),
        "headline": headline,
        "valid_mean": valid,
        "mean": mean,
        "sd": sd,
        "per_seed": [t.get(headline) for t in tests],
        "auroc": auroc,
        "wall_s": wall,
        "train_s": train_s,
        "train_seq_per_s": speed,
        "trainable": params.get("trainable"),
        "total": params.get("total"),
        "stopped": [r["metrics"].get("stopped") for r in runs],
        "runs": [r["run_dir"] for r in runs],
    }


def mark_noise(rows: list[dict], stacks: dict[str, np.ndarray], task: str, y: np.ndarray) -> None:
    """Best row by mean; every other row gets vs_best (paired bootstrap) and within_noise."""
    scored = [r for r in rows if r["mean"] is not None]
    if not scored:
        return
    best = max(scored, key=lambda r: r["mean"])
    for row in rows:
        row["best"] = row is best
        if row is best or row["mean"] is None:
            continue
        test = compare(task, y, stacks[best["model"]], stacks[row["model"]])
        delta = row["mean"] - best["mean"]
        spread = math.sqrt(((row["sd"] or 0) ** 2 + (best["sd"] or 0) ** 2) / max(len(row["per_seed"]), 1))
        inside_ci = test["ci_low"] is not None and test["ci_low"] <= 0 <= test["ci_high"]
        inside_seeds = (row["sd"] is not None or best["sd"] is not None) and abs(delta) <= 2 * spread
        row["vs_best"] = {**test, "seed_spread": spread}
        row["within_noise"] = bool(inside_ci or inside_seeds)


# ---------------------------------------------------------------- outputs


def machine_info() -> dict:
    """CPU model, cores, torch threads, OS and library versions: named next to every number."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "genoml": __version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _fmt(value: float | None, scale: float = 100.0, digits: int = 2) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def markdown_table(rows: list[dict], headline: str) -> str:
    scale = 100.0 if headline == "mcc" else 1.0
    unit = f"{headline.upper()} ×100" if scale == 100 else headline
    lines = [
        f"| model | strategy | valid {unit} | test {unit} (mean ± sd) | per seed | AUROC | Δ vs best [95% CI] | wall s | trainable params | train seq/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mean = _fmt(r["mean"], scale) + (f" ± {_fmt(r['sd'], scale)}" if r["sd"] is not None else "")
        if r.get("best"):
            mean, delta = f"**{mean}**", "best"
        elif "vs_best" in r:
            v = r["vs_best"]
            delta = f"{_fmt(v['delta'], scale)} [{_fmt(v['ci_low'], scale)}, {_fmt(v['ci_high'], scale)}]"
            delta += " (within noise)" if r.get("within_noise") else ""
        else:
            delta = "–"
        seeds = ", ".join(_fmt(v, scale, 1) for v in r["per_seed"])
        params = f"{r['trainable']:,}" if r.get("trainable") is not None else "–"
        speed = f"{r['train_seq_per_s']:.0f}" if r.get("train_seq_per_s") else "–"
        wall = f"{r['wall_s']:.0f}" if r.get("wall_s") is not None else "–"
        lines.append(
            f"| {r['name']} | {r['strategy']} | {_fmt(r['valid_mean'], scale)} | {mean} | {seeds} | {_fmt(r['auroc'], 1.0, 3)} | {delta} "
            f"| {wall} | {params} | {speed} |"
        )
    return "\n".join(lines) + "\n"


def bar_chart(rows: list[dict], headline: str, path: Path, title: str) -> None:
    """Bar chart of mean ± sd per model (Agg canvas; no pyplot global state)."""
    # heavy: matplotlib loads in seconds, for this chart only
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [r for r in rows if r["mean"] is not None]
    fig = Figure(figsize=(max(4.0, 0.9 * len(shown) + 2), 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(shown))
    colors = [
        "#d62728" if r.get("best") else "#7f7f7f" if r.get("within_noise") else "#1f77b4" for r in shown
    ]
    ax.bar(x, [r["mean"] for r in shown], yerr=[r["sd"] or 0 for r in shown], color=colors, capsize=4)
    ax.set_xticks(
        x,
        [r["model"] if len(r["model"]) < 28 else "…" + r["model"][-26:] for r in shown],
        rotation=30,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel(f"test {headline} (mean ± sd over seeds)")
    ax.set_title(title + "  (red: best, grey: within noise of best)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def prepare_bench_out(cfg: BenchConfig) -> Path:
    inputs = [cfg.train, cfg.valid, cfg.test, *(parse_model_spec(m)[0] for m in cfg.models)]
    return prepare_output_dir(
        cfg.out,
        flag="--out",
        inputs=inputs,
        force=cfg.force and not cfg.reuse,
        resume=cfg.reuse,
        kind="bench",
    )


def run_bench(cfg: BenchConfig) -> dict:
    """Run every model x seed, then write bench.json / bench.md / bench.png. Returns the bench.json dict
    plus "table" (the Markdown table) and "out"."""
    check_bench(cfg)
    out = prepare_bench_out(cfg)
    try:
        result = _run_bench(cfg, out)
    except BaseException:
        if cfg.reuse or any(out.glob("*/seed*/genoml.json")):
            record_outputs(out)  # finished runs stay for --reuse
        else:
            discard_outputs(out)
        raise
    record_outputs(out)
    return result


def _run_bench(cfg: BenchConfig, out: Path) -> dict:
    data = fixed_split(cfg, out)
    t0 = time.time()
    runs = {
        spec: [
            run_one(cfg, spec, seed, out / slug(spec, i) / f"seed{seed}", data) for seed in range(cfg.seeds)
        ]
        for i, spec in enumerate(cfg.models)
    }
    first = next(iter(runs.values()))[0]["run_dir"]
    task, y, ids = test_targets(data.test, first)
    headline = headline_metric(task)
    rows = [summarize(spec, rs, headline) for spec, rs in runs.items()]
    stacks = {spec: seed_stack(rs, ids) for spec, rs in runs.items()}
    mark_noise(rows, stacks, task, y)
    title = cfg.title or Path(data.test).parent.name or Path(data.test).stem
    result = {
        "title": title,
        "task": task,
        "headline": headline,
        "n_test": int(len(ids)),
        "rows": rows,
        "config": dataclasses.asdict(cfg),
        "data": dataclasses.asdict(data),
        "machine": machine_info(),
        "bench_seconds": round(time.time() - t0, 1),
    }
    table = markdown_table(rows, headline)
    write_json(out / "bench.json", result)
    note = (
        f"# genoml bench: {title}\n\n{len(ids)} test sequences; {cfg.seeds} seed(s); epochs ≤ {cfg.epochs}; "
        f"time budget {cfg.time_budget_min or 'none'} min per run; machine: {result['machine']['cpu']} "
        f"({result['machine']['cores']} cores), genoml {result['machine']['genoml']}, "
        f"{result['machine']['date']}.\nΔ vs best: paired bootstrap over test rows of the seed-averaged "
        f"{headline}; 'within noise' when its 95% CI holds 0 or |Δ| ≤ 2 × the seed spread.\n\n"
    )
    (out / "bench.md").write_text(note + table)
    bar_chart(rows, headline, out / "bench.png", title)
    log.info("bench: wrote %s/bench.json, bench.md, bench.png", out)
    return {**result, "table": table, "out": str(out)}
