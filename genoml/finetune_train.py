"""Training one fine-tuning run's torch model with the shared loop of `genoml.train`.

`Job(cfg, out, splits, alphabet)` holds the run's label space (task inferred from the training labels,
binary positive class chosen), encoded targets and evaluation. `train_torch(job, model, tokenizer,
max_tokens)` trains a SequenceModel on windows of token ids (B, L) -- or, for a probe, only its head on
pooled features (B, H) cached once -- and returns (TrainResult, {"trainable", "total"} parameter counts).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

import genoml.train  # Trainer looked up at call time (tests stand in their own)
from genoml.alphabet import reverse_complement
from genoml.config import FinetuneConfig, TrainConfig
from genoml.data import LabelSpace, aggregate_windows, bucketed_batches, collate, make_windows
from genoml.device import model_device, resolve_device
from genoml.errors import InputError
from genoml.finetune_data import Split
from genoml.heads import FeatureHead, encode_features, loss_function
from genoml.inference import Predictor, logits_to_scores
from genoml.metrics import compute_metrics, headline_metric
from genoml.positive import choose_positive, order_binary
from genoml.strategies import count_parameters
from genoml.train import TrainResult

log = logging.getLogger(__name__)


class Job:
    """Holds one run's data, model and settings while it trains and evaluates."""

    def __init__(self, cfg: FinetuneConfig, out: Path, splits: dict[str, Split], alphabet: str):
        self.cfg, self.out, self.splits, self.alphabet = cfg, out, splits, alphabet
        self.labels = LabelSpace.infer(
            splits["train"].labels, cfg.task, cfg.standardize, where=str(splits["train"].source)
        )
        self.positive = None
        if self.labels.task == "binary":
            pos, why = choose_positive(self.labels.names, splits["train"].labels, cfg.positive_class)
            self.labels.names = order_binary(self.labels.names, pos)
            self.positive = (pos, why)
            log.info("positive class: '%s' (%s)", pos, why)
        elif cfg.positive_class is not None:
            raise InputError(f"--positive-class: only for binary tasks; this task is {self.labels.task}")
        self.targets = {n: self.labels.encode(s.labels, where=str(s.source)) for n, s in splits.items()}

    def predictor(self, model, tokenizer, max_tokens: int) -> Predictor:
        return Predictor(
            model,
            self.labels,
            tokenizer=tokenizer,
            max_tokens=max_tokens,
            stride=self.cfg.stride,
            aggregate=self.cfg.aggregate,
            rc_average=self.cfg.rc_average and self.alphabet == "dna",
        )

    def class_weights(self) -> torch.Tensor | None:
        if not self.cfg.class_weights or self.labels.task not in ("binary", "multiclass"):
            return None
        counts = torch.bincount(self.targets["train"], minlength=self.labels.n_out).float().clamp(min=1)
        return counts.sum() / (len(counts) * counts)

    def train_items(self, tokenizer, max_tokens: int):
        """Training windows (with reverse complements under --rc-augment) and their targets."""
        seqs = list(self.splits["train"].seqs)
        y = self.targets["train"]
        if self.cfg.rc_augment and self.alphabet == "dna":
            seqs += [reverse_complement(s) for s in seqs]
            y = torch.cat([y, y])
        win = make_windows(seqs, tokenizer, max_tokens, self.cfg.stride)
        return win.ids, y[torch.as_tensor(win.parent)]

    def true_labels(self, name: str) -> list:
        """The decoded targets of split `name` (label strings, or values for regression)."""
        return self.labels.decode(self.targets[name].numpy())

    def evaluate_split(self, predictor: Predictor, name: str) -> tuple[dict, np.ndarray]:
        scores = predictor.scores(self.splits[name].seqs)
        y = self.true_labels(name)
        return compute_metrics(self.labels.task, y, scores, self.labels.names, self.cfg.threshold), scores


class Trained(NamedTuple):
    result: TrainResult
    parameters: dict  # {"trainable": n, "total": n} while training (before LoRA is merged)


def train_torch(job: Job, model, tokenizer, max_tokens: int) -> Trained:
    """Train a SequenceModel (or its head on cached features) with the shared loop."""
    cfg = job.cfg
    ids, y = job.train_items(tokenizer, max_tokens)  # windows of ids, targets (W,) or (W, C)
    probe = model.arch == "hf" and cfg.strategy_name() == "probe"
    feats = valid_feats = None
    if probe:
        feats, valid_feats = _cache_features(job, model, tokenizer, max_tokens, ids)
    trainee = FeatureHead(model.classifier) if probe else model
    parameters = _log_parameters(model, cfg)
    steps_per_epoch = max(1, math.ceil(len(ids) / cfg.batch_size))
    get_batch = _batch_source(cfg, ids, y, tokenizer.pad_id, steps_per_epoch, feats)
    loss_of = loss_function(job.labels, job.class_weights())

    def loss_fn(m, batch: dict) -> torch.Tensor:
        logits = m(batch["features"]) if probe else m(batch["input_ids"], batch["attention_mask"])
        return loss_of(logits.float(), batch["y"])

    evaluate = _validation(job, tokenizer, max_tokens, valid_feats if probe else None)
    tcfg = _train_config(job, model, steps_per_epoch)
    trainer = genoml.train.Trainer(
        trainee, tcfg, job.out, get_batch=get_batch, loss_fn=loss_fn, evaluate=evaluate
    )
    result = trainer.fit(resume=cfg.resume)
    if probe:
        model.classifier = trainee.classifier
    return Trained(result, parameters)


def _cache_features(
    job: Job, model, tokenizer, max_tokens: int, ids
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Probe: pooled features of the training windows (W, H) and of the validation windows (or None)."""
    t0 = time.time()
    device = resolve_device(job.cfg.device)
    if device.type != "cpu":  # the frozen encoder runs once, on the training device
        model.to(device)  # (Accelerate would move it later anyway)
    feats = encode_features(model, ids, tokenizer.pad_id)
    valid_feats = None
    if "valid" in job.splits:
        valid_ids = make_windows(job.splits["valid"].seqs, tokenizer, max_tokens, job.cfg.stride).ids
        valid_feats = encode_features(model, valid_ids, tokenizer.pad_id)
    log.info("probe: cached %d training windows' features in %.1fs", len(ids), time.time() - t0)
    return feats, valid_feats


def _log_parameters(model, cfg: FinetuneConfig) -> dict:
    trainable, total = count_parameters(model)
    log.info(
        "parameters: %s trainable of %s (%.2f%%), strategy %s",
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / max(total, 1),
        cfg.strategy if model.arch == "hf" else "full (baseline)",
    )
    return {"trainable": trainable, "total": total}


def _batch_source(cfg: FinetuneConfig, ids, y: torch.Tensor, pad_id: int, steps_per_epoch: int, feats):
    """get_batch(step, rank, world) for the loop: length-bucketed batches, reshuffled per epoch (seeded);
    rank r of `world` takes rows r, r + world, ... of the global batch."""
    lengths = [len(x) for x in ids]
    epoch_batches: dict[int, list[np.ndarray]] = {}

    def get_batch(step: int, rank: int = 0, world: int = 1) -> dict:
        epoch = step // steps_per_epoch
        if epoch not in epoch_batches:
            epoch_batches.clear()
            epoch_batches[epoch] = bucketed_batches(
                lengths, cfg.batch_size, np.random.default_rng([cfg.seed, epoch])
            )
        idx = epoch_batches[epoch][step % steps_per_epoch][rank::world]
        t = torch.as_tensor(idx)
        if feats is not None:
            return {"features": feats[t], "y": y[t]}  # (B, H)
        x, mask = collate([ids[i] for i in idx], pad_id)  # (B, L) each
        return {"input_ids": x, "attention_mask": mask, "y": y[t]}

    return get_batch


def _validation(job: Job, tokenizer, max_tokens: int, valid_feats: torch.Tensor | None):
    """evaluate(model) for the loop: validation metrics, the headline one never NaN (-1.0 instead)."""
    headline = headline_metric(job.labels.task)

    def evaluate(m) -> dict:
        if "valid" not in job.splits:
            return {}
        if valid_feats is not None:
            metrics = _probe_validation(job, m, tokenizer, max_tokens, valid_feats)
        else:
            metrics, _ = job.evaluate_split(job.predictor(m, tokenizer, max_tokens), "valid")
        m.train()
        value = metrics.get(headline)
        metrics[headline] = (
            value if value is not None and not (isinstance(value, float) and math.isnan(value)) else -1.0
        )
        return metrics

    return evaluate


def _probe_validation(job: Job, head, tokenizer, max_tokens: int, valid_feats: torch.Tensor) -> dict:
    """Validation metrics of a FeatureHead on the cached validation features (W, H), windows aggregated."""
    cfg = job.cfg
    with torch.no_grad():
        head.eval()
        win_logits = head(valid_feats.to(model_device(head))).cpu()  # (W, C)
    win = make_windows(job.splits["valid"].seqs, tokenizer, max_tokens, cfg.stride)
    logits = aggregate_windows(win_logits.float(), win.parent, win.n_seqs, cfg.aggregate)  # (N, C)
    scores = logits_to_scores(logits, job.labels)
    return compute_metrics(job.labels.task, job.true_labels("valid"), scores, job.labels.names, cfg.threshold)


def _train_config(job: Job, model, steps_per_epoch: int) -> TrainConfig:
    """The loop's settings: epochs of `steps_per_epoch`, lr by strategy and encoder width unless --lr."""
    cfg = job.cfg
    hidden = (
        getattr(getattr(model.encoder, "config", None), "hidden_size", None) if model.arch == "hf" else None
    )
    lr = cfg.default_lr(hidden, model.arch)
    log.info("lr %.2g (%s)", lr, "--lr" if cfg.lr is not None else f"default for {cfg.strategy}")
    has_valid = "valid" in job.splits
    return TrainConfig(
        max_steps=cfg.epochs * steps_per_epoch,
        lr=lr,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        grad_accum=cfg.grad_accum,
        clip_norm=cfg.clip_norm,
        seed=cfg.seed,
        eval_every=steps_per_epoch,
        checkpoint_every=steps_per_epoch,
        log_every=max(1, steps_per_epoch // 4),
        patience=cfg.patience if has_valid else None,
        time_budget_s=cfg.time_budget_min * 60 if cfg.time_budget_min else None,
        select_metric=headline_metric(job.labels.task) if has_valid else None,
        greater_is_better=True,
        device=cfg.device,
        ema_decay=cfg.ema or None,
    )
