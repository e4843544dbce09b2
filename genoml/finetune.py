"""`genoml finetune`: labelled sequences + an encoder (or baseline) -> a run directory.

Steps: read and split the data (`finetune_data`), infer the task (`finetune_train.Job`), build the model
(`finetune_model`) and apply the strategy, train with the one loop in `genoml.train` (probe: on cached
features), evaluate valid/test with the shared inference code, then write weights, genoml.json,
metrics.json, predictions, report and model card (`finetune_report`). The user's config is never changed:
an --adapt-steps model is recorded as the run's model in genoml.json.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genoml.adapt import adapt_model
from genoml.checks import check_finetune_flags, check_model_fits, check_safetensors
from genoml.config import BASELINE_NETS, FinetuneConfig, write_json
from genoml.device import resolve_device
from genoml.finetune_data import Split, load_splits, sha256, split_gap
from genoml.finetune_model import build_model, model_name
from genoml.finetune_report import baseline_metrics, summary, write_reports
from genoml.finetune_train import Job, train_torch
from genoml.inference import Predictor
from genoml.kmer_linear import KmerLinear
from genoml.models import check_safe_weights
from genoml.outputs import discard_outputs, record_outputs
from genoml.predictions import write_predictions
from genoml.runs import RunMeta, prepare_run_dir, save_model
from genoml.splits import leakage
from genoml.strategies import apply_strategy_, merge_lora_
from genoml.trunks import apply_trunk_strategy_, is_convolutional

log = logging.getLogger(__name__)


@dataclass
class Fitted:
    """A trained model (or k-mer linear model) and how it was trained."""

    arch: str
    model: object | None  # SequenceModel; None for kmer-linear
    tokenizer: object | None
    max_tokens: int
    source: str
    predictor: Predictor
    parameters: dict  # {"trainable": n, "total": n}
    history: list[dict] = dataclasses.field(default_factory=list)
    stopped: str = "completed"
    kmer: KmerLinear | None = None
    adapted: str | None = None  # --adapt-steps: the folder of the adapted model the run started from


def run_finetune(cfg: FinetuneConfig, command: list[str] | None = None) -> dict:
    """Run a whole fine-tuning job; returns {"out": path, "metrics": ..., "stopped": reason}.

    No model (or `auto`): candidates are trained and the best on validation is kept (genoml.auto).
    Unset epochs / batch size / patience take the recipe of the model family (config.RECIPES)."""
    cfg.validate()
    resolve_device(cfg.device)  # --device cuda without a GPU: exit 2 before anything is written
    check_finetune_flags(cfg)
    if cfg.is_auto():
        from genoml.auto import run_auto  # import cycle: genoml.auto runs finetune for each candidate

        return run_auto(cfg, command)
    cfg = cfg.with_recipe_defaults(is_convolutional(cfg.model) or cfg.model == "kmer-linear")
    cfg.validate()
    if cfg.model and Path(cfg.model).is_dir():
        check_safe_weights(Path(cfg.model))  # an unsafe pickle is exit 3 before any "corrupt file" message
        check_safetensors(cfg.model)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    splits, alphabet = load_splits(cfg)  # read before touching --out: bad input leaves nothing behind
    d = cfg.data
    inputs = [d.train, d.valid, d.test, d.labels, d.bed, d.genome, cfg.model, *(p for _, p in d.classes)]
    out = prepare_run_dir(cfg.out, force=cfg.force, resume=cfg.resume, inputs=inputs)
    partial = out / ".incomplete"
    partial.write_text("finetune in progress\n")
    try:
        result = _finetune(cfg, out, splits, alphabet, command)
    except BaseException:
        if not cfg.resume and not any((out / "checkpoints").glob("*")):
            discard_outputs(out)
        else:
            record_outputs(out)
        raise
    partial.unlink(missing_ok=True)
    record_outputs(out)
    return result


def _finetune(cfg: FinetuneConfig, out: Path, splits: dict[str, Split], alphabet: str, command) -> dict:
    """Train, evaluate and write everything of one run into `out` (created, marked incomplete)."""
    job = Job(cfg, out, splits, alphabet)
    log.info(
        "task %s with %d labels (%s); %s sequences",
        job.labels.task,
        len(job.labels.names),
        ", ".join(job.labels.names[:6]),
        alphabet.upper(),
    )
    rc_info = None
    if cfg.model != "kmer-linear":
        from genoml.auto import resolve_rc  # import cycle: genoml.auto runs finetune for each candidate

        cfg, rc_info = resolve_rc(cfg, splits, alphabet, job.labels)
        job.cfg = cfg
    t0 = time.time()
    fitted = _fit_kmer(job) if cfg.model == "kmer-linear" else _fit_torch(job)
    train_seconds = time.time() - t0
    metrics, predictions = _evaluate(job, fitted.predictor)
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["stopped"] = fitted.stopped
    if rc_info is not None:
        metrics["rc"] = rc_info
    metrics["parameters"] = fitted.parameters
    metrics["train_windows_per_s"] = round(
        len(splits["train"].seqs) * max(1, len(fitted.history) or 1) / max(train_seconds, 1e-9), 1
    )
    meta = _run_meta(job, fitted, command)
    if fitted.kmer is not None:
        fitted.kmer.save(out)
    save_model(fitted.model, out, meta)
    if with_baselines := (cfg.baselines and cfg.model != "kmer-linear"):
        metrics["baselines"] = baseline_metrics(job, alphabet, predictions)
    write_json(out / "metrics.json", metrics)
    write_json(out / "history.json", fitted.history)
    write_reports(job, out, meta, metrics, fitted.history, predictions, fitted.model, with_baselines)
    log.info("done in %.0fs: %s", time.time() - t0, summary(metrics, job.labels.task))
    return {"out": str(out), "metrics": metrics, "stopped": fitted.stopped}


def _fit_kmer(job: Job) -> Fitted:
    """--model kmer-linear: a k-mer count linear model fitted on the train split."""
    task = job.labels.task if job.labels.task == "regression" else "classification"
    km = KmerLinear(task, job.alphabet, seed=job.cfg.seed).fit(
        job.splits["train"].seqs, job.targets["train"].numpy()
    )
    n = int(km.coef.size + km.intercept.size)
    return Fitted(
        arch="kmer-linear",
        model=None,
        tokenizer=None,
        max_tokens=0,
        source="kmer-linear",
        predictor=Predictor(None, job.labels, kmer=km),
        parameters={"trainable": n, "total": n},
        kmer=km,
    )


def _fit_torch(job: Job) -> Fitted:
    """Build (after --adapt-steps of masked-LM adaptation) the model, apply the strategy, train, merge LoRA."""
    cfg, alphabet = job.cfg, job.alphabet
    adapted = None
    if cfg.adapt_steps > 0 and cfg.model not in BASELINE_NETS:
        adapted = adapt_model(
            model_name(cfg, alphabet),
            job.splits["train"].seqs,
            job.out,
            steps=cfg.adapt_steps,
            seed=cfg.seed,
            threads=cfg.threads,
            device=cfg.device,
        )
    name = adapted or model_name(cfg, alphabet)
    model, tokenizer, max_tokens, source = build_model(cfg, name, alphabet, job.labels)
    check_model_fits(cfg, model, tokenizer, max_tokens)
    apply_strategy_(model, cfg.strategy_name(), cfg.partial_layers(), cfg.lora_rank)
    if getattr(model, "from_base", None):  # a transferred cnn / cnn-shallow / rnn trunk
        apply_trunk_strategy_(model, cfg.strategy_name(), cfg.partial_layers())
    result, parameters = train_torch(job, model, tokenizer, max_tokens)
    merge_lora_(model)
    model.eval()
    return Fitted(
        arch=model.arch,
        model=model,
        tokenizer=tokenizer,
        max_tokens=max_tokens,
        source=source,
        predictor=job.predictor(model, tokenizer, max_tokens),
        parameters=parameters,
        history=result.history,
        stopped=result.stopped_reason,
        adapted=adapted,
    )


def _evaluate(job: Job, predictor: Predictor) -> tuple[dict, dict]:
    """Valid/test metrics (with train duplicates) and predictions_<split>.tsv -> (metrics, predictions)."""
    metrics, predictions = {}, {}
    splits, train = job.splits, job.splits["train"]
    for name in ("valid", "test"):
        if name not in splits:
            continue
        metrics[name], scores = job.evaluate_split(predictor, name)
        metrics[name]["duplicates_with_train"] = leakage(
            train.seqs,
            splits[name].seqs,
            job.alphabet == "dna",
            train_intervals=train.intervals or [],
            other_intervals=splits[name].intervals or [],
            gap=split_gap(job.cfg),
        )
        write_predictions(
            job.out / f"predictions_{name}.tsv",
            splits[name].ids,
            scores,
            job.labels,
            true_labels=splits[name].labels,
            threshold=job.cfg.threshold,
        )
        predictions[name] = _prediction_record(job, name, scores)
    return metrics, predictions


def _prediction_record(job: Job, name: str, scores: np.ndarray) -> dict:
    """What the report and baselines need of one split's predictions (scores (N, C))."""
    return {
        "y_true": job.true_labels(name),
        "probs": scores,
        "labels": job.labels.names,
        "task": job.labels.task,
        "ids": job.splits[name].ids,
    }


def _run_meta(job: Job, fitted: Fitted, command) -> RunMeta:
    """genoml.json of the run (its config: the user's, with the adapted model under --adapt-steps)."""
    cfg, alphabet, arch = job.cfg, job.alphabet, fitted.arch
    config = dataclasses.replace(cfg, model=fitted.adapted) if fitted.adapted else cfg
    data = {
        n: {"source": s.source, "sha256": sha256(s.file), "n": len(s.seqs)} for n, s in job.splits.items()
    }
    return RunMeta(
        kind="finetuned",
        arch=arch,
        labels=job.labels,
        alphabet=alphabet,
        tokenizer=getattr(fitted.tokenizer, "spec", None),
        max_tokens=fitted.max_tokens,
        stride=cfg.stride,
        aggregate=cfg.aggregate,
        rc_average=cfg.rc_average and alphabet == "dna",
        threshold=cfg.threshold,
        pooling=getattr(fitted.model, "pooling", "mean"),
        head=cfg.head,
        strategy=cfg.strategy if arch == "hf" or getattr(fitted.model, "from_base", None) else "full",
        source_model=fitted.source,
        revision=cfg.revision,
        seed=cfg.seed,
        config=config.to_dict(),
        command=command,
        extra={"data": data},
    )
