"""`--model auto` (the default): train candidate models within the time budget, keep the best on validation.

Contract:
- every candidate (`kmer-linear`, `cnn-attn`, `cnn-shallow`, plus `--candidates name[:strategy]` such as a
  genoml run folder, the embedded transformer `embedded:partial:2` or a hub id) is an ordinary
  `genoml finetune` run written under `OUT/candidates/<NN-name>/`, on the same splits and seed;
- the winner is the candidate with the best **validation** headline metric (MCC, or Spearman for
  regression); the test split never takes part in the choice (ties keep the earlier candidate);
- the winner's run is copied to `OUT` (checkpoints excepted), so `OUT` is a normal run directory that
  `genoml predict` loads; `OUT/metrics.json` gains `"candidates"` (valid and test metrics, wall time,
  parameters of each) and `"chosen"`, and `OUT/report.md` a comparison table;
- torch candidates run two at a time in separate processes with one torch thread each (2 cores),
  each with an equal share of the budget; kmer-linear runs first in this process;
- reverse-complement handling (`--rc auto`) is decided once on validation (`decide_rc`) and shared.

The embedded transformer is not a default candidate: in BENCHMARKS.md it trails the from-scratch
CNNs by 30-85 MCC points on every GUE task and by 16 points on the protein task, so its share of
the budget is better spent on the CNNs; add it with `--candidates embedded:partial:2`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import multiprocessing as mp
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from genoml.bench import parse_model_spec
from genoml.config import BASELINE_MODELS, FinetuneConfig, write_json
from genoml.data import LabelSpace
from genoml.errors import GenomlError, InputError
from genoml.finetune import run_finetune
from genoml.finetune_data import load_splits
from genoml.io import reverse_complement
from genoml.kmer_linear import kmer_counts
from genoml.metrics import compute_metrics, headline_metric
from genoml.models import hub_reachable
from genoml.outputs import discard_outputs, record_outputs
from genoml.runs import RunMeta, prepare_run_dir

log = logging.getLogger(__name__)

DEFAULT_CANDIDATES = ("kmer-linear", "cnn-attn", "cnn-shallow")  # cnn-attn replaced cnn (BENCHMARKS.md)
DEFAULT_BUDGET_MIN = 5.0  # whole --model auto run when no --time-budget is given
RC_TOLERANCE = (
    0.01  # strand-symmetric k-mer model within this validation MCC of the strand-aware one -> rc on
)


# ---------------------------------------------------------------- reverse complement: decided on validation


def decide_rc(
    train_seqs: list[str],
    y_train: np.ndarray,
    valid_seqs: list[str],
    y_valid: np.ndarray,
    task: str,
    seed: int = 0,
    max_train: int = 10000,
) -> dict:
    """Is the task strand-symmetric? Fit two k-mer (k = 1..5) logistic regressions on (at most
    `max_train`) training sequences: strand-aware counts and strand-symmetric counts (k-mers of the
    sequence plus its reverse complement). If the symmetric model's validation MCC is within
    RC_TOLERANCE of the aware one, the label does not depend on the strand -> "on" (train on reverse
    complements and average both strands' predictions); otherwise "off" (e.g. promoters, where the
    strand carries the label). Regression/multilabel: the same test on the first output.

    -> {"decision": "on"|"off", "valid_mcc_strand_aware": float, "valid_mcc_strand_symmetric": float, ...}
    """
    from sklearn.linear_model import LogisticRegression, Ridge  # heavy: scikit-learn, only for --rc auto

    y_train, y_valid = np.asarray(y_train), np.asarray(y_valid)
    if y_train.ndim > 1:  # multilabel: the first label
        y_train, y_valid = y_train[:, 0], y_valid[:, 0]
        task = "binary"
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.permutation(len(train_seqs))[:max_train])
    seqs = [train_seqs[i] for i in idx]
    y = y_train[idx]
    ks = (1, 2, 3, 4, 5)
    t0 = time.time()

    def features(s, symmetric):
        x = kmer_counts(s, "dna", ks)
        return x + kmer_counts([reverse_complement(q) for q in s], "dna", ks) if symmetric else x

    scores = {}
    for symmetric in (False, True):
        xt, xv = features(seqs, symmetric), features(valid_seqs, symmetric)
        scale = np.asarray(xt.power(2).mean(0)).ravel() ** 0.5 + 1e-6
        xt, xv = xt.multiply(1 / scale).tocsr(), xv.multiply(1 / scale).tocsr()
        if task == "regression":
            pred = Ridge(alpha=1.0).fit(xt, y).predict(xv)[:, None]
            value = compute_metrics("regression", y_valid, pred, ["value"]).get("spearman")
        else:
            m = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(xt, y)
            proba = np.zeros((len(valid_seqs), int(max(y_train.max(), y_valid.max())) + 1))
            proba[:, m.classes_.astype(int)] = m.predict_proba(xv)
            names = [str(i) for i in range(proba.shape[1])]
            metric_task = "binary" if proba.shape[1] == 2 else "multiclass"
            value = compute_metrics(metric_task, y_valid.astype(int), proba, names).get(
                headline_metric(metric_task)
            )
        scores[symmetric] = float(value) if value is not None and math.isfinite(value) else 0.0
    decision = "on" if scores[True] >= scores[False] - RC_TOLERANCE else "off"
    info = {
        "decision": decision,
        "valid_metric_strand_aware": round(scores[False], 4),
        "valid_metric_strand_symmetric": round(scores[True], 4),
        "tolerance": RC_TOLERANCE,
        "train_sequences_used": len(seqs),
        "seconds": round(time.time() - t0, 1),
        "rule": "on when a strand-symmetric k-mer (k=1..5) logistic model is within the tolerance of a "
        "strand-aware one on the validation split",
    }
    log.info(
        "--rc auto: strand-aware k-mer model valid %.3f, strand-symmetric %.3f -> rc %s",
        scores[False],
        scores[True],
        decision,
    )
    return info


def resolve_rc(
    cfg: FinetuneConfig, splits: dict, alphabet: str, labels
) -> tuple[FinetuneConfig, dict | None]:
    """Fill rc_augment/rc_average from --rc (the explicit --rc-augment/--rc-average flags always win).

    -> (config with rc settled to "on"/"off", the decision record or None when nothing was decided)."""
    if alphabet != "dna":
        return dataclasses.replace(cfg, rc="off"), None
    if cfg.rc_augment or cfg.rc_average:
        return dataclasses.replace(cfg, rc="on" if cfg.rc_augment and cfg.rc_average else cfg.rc), {
            "decision": "flags",
            "rc_augment": cfg.rc_augment,
            "rc_average": cfg.rc_average,
        }
    mode = cfg.rc
    info = {"decision": mode, "mode": mode}
    if mode == "auto":
        if "valid" not in splits:
            mode, info = (
                "off",
                {"decision": "off", "mode": "auto", "rule": "no validation split to decide on"},
            )
        else:
            y_tr = labels.encode(splits["train"].labels).numpy()
            y_va = labels.encode(splits["valid"].labels).numpy()
            # a fixed subsample (seed 0), not the run's seed: every seed of a task gets the same decision
            info = {
                "mode": "auto",
                **decide_rc(splits["train"].seqs, y_tr, splits["valid"].seqs, y_va, labels.task, 0),
            }
            mode = info["decision"]
    on = mode == "on"
    return dataclasses.replace(cfg, rc=mode, rc_augment=on, rc_average=on), info


# ---------------------------------------------------------------- candidates


def candidate_specs(cfg: FinetuneConfig) -> list[str]:
    """Default candidates, then --candidates (duplicates dropped, order kept)."""
    specs = list(DEFAULT_CANDIDATES)
    for spec in cfg.candidates:
        try:
            name, _ = parse_model_spec(spec)  # validates the name[:strategy] syntax
        except InputError as e:
            raise InputError(str(e).replace("--models", "--candidates")) from None
        if (
            name not in (*BASELINE_MODELS, "embedded")
            and not name.startswith("random:")
            and not Path(name).is_dir()
        ):
            if not hub_reachable():
                raise InputError(
                    f"--candidates {spec}: '{name}' is not a local folder, and the Hugging Face Hub "
                    "cannot be reached"
                )
        if spec == "auto":
            raise InputError("--candidates: 'auto' is not a model; name models such as cnn or a run folder")
        if spec not in specs:
            specs.append(spec)
    return specs


def _slug(spec: str, index: int) -> str:
    name = Path(spec.split(":")[0]).name if Path(spec.split(":")[0]).is_dir() else spec
    if Path(spec.split(":")[0]).is_dir() and ":" in spec:
        name += "-" + spec.split(":", 1)[1]
    return f"{index:02d}-" + re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _candidate_config(
    cfg: FinetuneConfig, spec: str, run_dir: Path, budget_min: float | None, threads: int | None
) -> FinetuneConfig:
    name, strategy = parse_model_spec(spec)
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data),
        out=str(run_dir),
        force=True,
        resume=False,
        model=name,
        strategy=strategy or ("full" if name in BASELINE_MODELS else cfg.strategy),
        pooling="auto" if name in BASELINE_MODELS else cfg.pooling,  # --pooling is for the encoder candidates
        time_budget_min=budget_min,
        threads=threads,
        baselines=False,
        attention=False,
        candidates=[],
    )


def _run_candidate(cfg_dict: dict, command: list[str], log_file: str | None) -> dict:
    """Worker: one candidate run (in a fresh process: its own log file, its own torch threads)."""
    if log_file:
        root = logging.getLogger("genoml")
        root.handlers.clear()
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s genoml: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False

    cfg = FinetuneConfig.from_dict(cfg_dict)
    t0 = time.time()
    try:
        result = run_finetune(cfg, command=command)
    except Exception as e:  # noqa: BLE001 - one failing candidate (e.g. kmer-linear on multilabel) is reported, not fatal
        logging.getLogger("genoml").warning(
            "auto: candidate %s failed: %s: %s", cfg.model, type(e).__name__, e
        )
        return {"error": f"{type(e).__name__}: {str(e)[:300]}", "wall_s": round(time.time() - t0, 1)}
    return {"metrics": result["metrics"], "stopped": result["stopped"], "wall_s": round(time.time() - t0, 1)}


def _row(spec: str, run_dir: Path, out: Path, outcome: dict, headline: str) -> dict:
    row = {"candidate": spec, "run_dir": str(run_dir.relative_to(out)), "wall_s": outcome.get("wall_s")}
    if "error" in outcome:
        row["error"] = outcome["error"]
        return row
    m = outcome["metrics"]
    for split in ("valid", "test"):
        if split in m:
            row[split] = {k: m[split].get(k) for k in (headline, "auroc", "accuracy", "f1") if k in m[split]}
    row.update(train_seconds=m.get("train_seconds"), stopped=m.get("stopped"), parameters=m.get("parameters"))
    try:
        meta = RunMeta.read(run_dir)
        row.update(arch=meta.arch, strategy=meta.strategy, rc_average=meta.rc_average)
    except InputError:
        pass
    return row


def _valid_score(row: dict, headline: str) -> float:
    v = (row.get("valid") or {}).get(headline)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else -math.inf


def choose(rows: list[dict], headline: str) -> int:
    """Index of the row with the best validation headline metric (first on ties); test is never read."""
    scores = [_valid_score(r, headline) for r in rows]
    if all(s == -math.inf for s in scores):
        raise GenomlError(
            "--model auto: no candidate finished with a validation score: "
            + "; ".join(f"{r['candidate']}: {r.get('error', 'no valid metric')}" for r in rows)
        )
    return int(np.argmax(scores))


def workers_for(n_jobs: int, threads: int | None) -> int:
    """Parallel candidate processes: one per core (at most 2 on the 2-core machines this was tuned on)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per = threads or 1
    return max(1, min(n_jobs, cores // per, int(os.environ.get("GENOML_AUTO_WORKERS", "2"))))


def run_auto(cfg: FinetuneConfig, command: list[str] | None = None) -> dict:
    """Train every candidate, keep the best on validation in cfg.out; returns {"out", "metrics", "stopped"}."""
    if cfg.resume:
        raise InputError(
            "--resume: a --model auto run cannot be resumed; name the model (e.g. --model cnn) "
            "to resume it, or start again with --force"
        )
    cfg.validate()
    specs = candidate_specs(cfg)
    splits, alphabet = load_splits(cfg)
    labels = LabelSpace.infer(
        splits["train"].labels, cfg.task, cfg.standardize, where=str(splits["train"].source)
    )
    if "valid" not in splits:
        raise InputError(
            "--model auto chooses on the validation split: give --valid FILE or a --valid-fraction above 0"
        )
    headline = headline_metric(labels.task)
    d = cfg.data
    inputs = [
        d.train,
        d.valid,
        d.test,
        d.labels,
        d.bed,
        d.genome,
        *(p for _, p in d.classes),
        *(c for c in cfg.candidates if Path(c).exists()),
    ]
    out = prepare_run_dir(cfg.out, force=cfg.force, resume=False, inputs=inputs)
    (out / ".incomplete").write_text("finetune --model auto in progress\n")
    try:
        result = _run_auto_in(cfg, out, specs, splits, alphabet, labels, headline, command)
    except BaseException:
        discard_outputs(out)  # every candidate ran inside out: nothing of the user's is there
        raise
    record_outputs(out)
    return result


def _run_auto_in(cfg: FinetuneConfig, out: Path, specs, splits, alphabet, labels, headline, command) -> dict:
    """Settle --rc, train every candidate under out/candidates, adopt the best on validation into out."""
    t_start = time.time()
    budget_min = cfg.time_budget_min or DEFAULT_BUDGET_MIN
    cfg, rc_info = resolve_rc(cfg, splits, alphabet, labels)
    cand_root = out / "candidates"
    cand_root.mkdir()
    jobs = [(spec, cand_root / _slug(spec, i)) for i, spec in enumerate(specs)]
    command = command or ["genoml", "finetune"]
    outcomes = _run_kmer_candidates(cfg, jobs, command)
    torch_jobs = [(s, d) for s, d in jobs if s != "kmer-linear"]
    remaining = max(0.2, budget_min - (time.time() - t_start) / 60)
    workers, threads, share = _plan_torch_candidates(cfg, specs, torch_jobs, budget_min, remaining)
    subs = {s: _candidate_config(cfg, s, d, share, threads) for s, d in torch_jobs}
    outcomes.update(_run_torch_candidates(subs, torch_jobs, workers, share, command, headline))
    rows = [_row(s, d, out, outcomes[s], headline) for s, d in jobs]
    best = choose(rows, headline)
    for i, r in enumerate(rows):
        r["chosen"] = i == best
    _adopt(jobs[best][1], out)
    metrics = _record_choice(out, cfg, rows, best, headline, rc_info, command, t_start, budget_min)
    _append_report(out, rows, headline, rc_info, budget_min, metrics["auto_wall_s"], workers, threads)
    (out / ".incomplete").unlink(missing_ok=True)
    log.info(
        "auto: chose %s (valid %s %.4f) of %d candidates in %.0fs",
        rows[best]["candidate"],
        headline,
        _valid_score(rows[best], headline),
        len(rows),
        metrics["auto_wall_s"],
    )
    return {"out": str(out), "metrics": metrics, "stopped": metrics.get("stopped", "completed")}


def _run_kmer_candidates(cfg: FinetuneConfig, jobs: list[tuple[str, Path]], command: list[str]) -> dict:
    """The k-mer candidate (seconds) in this process, with the run's threads -> {spec: outcome}."""
    outcomes: dict[str, dict] = {}
    for spec, run_dir in jobs:
        if spec == "kmer-linear":
            log.info("auto: candidate %s", spec)
            sub = _candidate_config(cfg, spec, run_dir, None, cfg.threads)
            outcomes[spec] = _run_candidate(sub.to_dict(), [*command, "(auto candidate)", spec], None)
    return outcomes


def _plan_torch_candidates(
    cfg: FinetuneConfig, specs: list[str], torch_jobs: list, budget_min: float, remaining: float
) -> tuple[int, int | None, float]:
    """-> (worker processes, torch threads each or None for all, minutes of budget per candidate)."""
    workers = workers_for(len(torch_jobs), cfg.threads)
    waves = math.ceil(len(torch_jobs) / workers) if torch_jobs else 1
    # margin for each candidate's final evaluation and report (about half a minute on a busy 2-core machine)
    share = max(0.1, remaining * 0.95 - (0.5 if remaining >= 2 else 0.1)) / waves
    threads = cfg.threads or (1 if workers > 1 else None)
    log.info(
        "auto: %d candidates (%s), %.1f min budget: %d process(es) x %s thread(s), %.2f min each",
        len(specs),
        ", ".join(specs),
        budget_min,
        workers,
        threads or "all",
        share,
    )
    return workers, threads, share


def _run_torch_candidates(
    subs: dict[str, FinetuneConfig],
    torch_jobs: list[tuple[str, Path]],
    workers: int,
    share: float,
    command: list[str],
    headline: str,
) -> dict:
    """The torch candidates: `workers` spawned processes (each logging to <run dir>.log), or one after the
    other in this process when workers == 1 -> {spec: outcome}."""
    outcomes: dict[str, dict] = {}
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {
                s: pool.submit(
                    _run_candidate, subs[s].to_dict(), [*command, "(auto candidate)", s], str(d) + ".log"
                )
                for s, d in torch_jobs
            }
            for s, f in futures.items():
                outcomes[s] = f.result()
                log.info("auto: %s done (%s)", s, outcomes[s].get("error") or _brief(outcomes[s], headline))
    else:
        for s, _ in torch_jobs:
            log.info("auto: candidate %s (%.2f min)", s, share)
            outcomes[s] = _run_candidate(subs[s].to_dict(), [*command, "(auto candidate)", s], None)
    return outcomes


def _record_choice(
    out: Path,
    cfg: FinetuneConfig,
    rows: list[dict],
    best: int,
    headline: str,
    rc_info: dict | None,
    command: list[str],
    t_start: float,
    budget_min: float,
) -> dict:
    """Add the candidates and the choice to the adopted out/metrics.json and genoml.json -> the metrics."""
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["chosen"] = rows[best]["candidate"]
    metrics["selection"] = f"best validation {headline} (the test split is not used to choose)"
    metrics["candidates"] = rows
    metrics["auto_wall_s"] = round(time.time() - t_start, 1)
    metrics["auto_budget_min"] = budget_min
    if rc_info is not None:
        metrics["rc"] = rc_info
    write_json(out / "metrics.json", metrics)
    meta = RunMeta.read(out)
    meta.command = command
    meta.extra["auto"] = {
        "chosen": rows[best]["candidate"],
        "candidates": [r["candidate"] for r in rows],
        "config": cfg.to_dict(),
        "rc": rc_info,
    }
    meta.write(out)
    return metrics


def _brief(outcome: dict, headline: str) -> str:
    m = outcome.get("metrics", {})
    return ", ".join(
        f"{s} {headline} {m[s][headline]:.4f}"
        for s in ("valid", "test")
        if s in m and isinstance(m[s].get(headline), int | float)
    )


def _adopt(winner: Path, out: Path) -> None:
    """Copy the winner's run files (not its checkpoints) into out; drop every candidate's checkpoints."""
    for item in winner.iterdir():
        if item.name == "checkpoints":
            continue
        target = out / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    for ckpt in (out / "candidates").glob("*/checkpoints"):
        shutil.rmtree(ckpt, ignore_errors=True)


def comparison_table(rows: list[dict], headline: str) -> str:
    """Markdown table of the candidates: valid/test headline metric, test AUROC, time, parameters."""
    name = headline.upper() if headline == "mcc" else headline
    lines = [
        f"| candidate | valid {name} | test {name} | test AUROC | reverse complement | train s | wall s | "
        "trainable params | stopped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(v, p=4):
        return f"{v:.{p}f}" if isinstance(v, int | float) and math.isfinite(v) else "–"

    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['candidate']} | failed: {r['error'][:80]} | | | | | {fmt(r.get('wall_s'), 0)} | | |"
            )
            continue
        mark = " **(chosen)**" if r.get("chosen") else ""
        params = (r.get("parameters") or {}).get("trainable")
        rc = (
            "–" if r.get("arch") == "kmer-linear" else ("augment + average" if r.get("rc_average") else "off")
        )
        lines.append(
            f"| {r['candidate']}{mark} | {fmt((r.get('valid') or {}).get(headline))} | "
            f"{fmt((r.get('test') or {}).get(headline))} | {fmt((r.get('test') or {}).get('auroc'), 3)} | {rc} | "
            f"{fmt(r.get('train_seconds'), 0)} | {fmt(r.get('wall_s'), 0)} | "
            f"{f'{params:,}' if isinstance(params, int) else '–'} | {r.get('stopped', '–')} |"
        )
    return "\n".join(lines)


def _append_report(out: Path, rows, headline, rc_info, budget_min, wall_s, workers, threads) -> None:
    text = [
        "",
        "## Model selection (`--model auto`)",
        "",
        f"{len(rows)} candidates trained on the same splits within a {budget_min:g}-minute budget "
        f"({workers} process(es) × {threads or 'all'} thread(s); {wall_s:.0f} s in all). The chosen model has "
        f"the best **validation** {headline}; test figures are shown for information only and were not used "
        "to choose. Each candidate's run is under `candidates/`.",
        "",
        comparison_table(rows, headline),
        "",
    ]
    if rc_info and rc_info.get("decision") in ("on", "off") and rc_info.get("mode") == "auto":
        text += [
            f"Reverse complement (`--rc auto`): {rc_info['decision']} — strand-aware k-mer model valid "
            f"{rc_info['valid_metric_strand_aware']:.3f} vs strand-symmetric "
            f"{rc_info['valid_metric_strand_symmetric']:.3f} (on when within {rc_info['tolerance']}).",
            "",
        ]
    report = out / "report.md"
    with open(report, "a") as f:
        f.write("\n".join(text))
