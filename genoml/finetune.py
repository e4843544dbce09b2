"""`genoml finetune`: labelled sequences + an encoder (or baseline) -> a run directory.

Steps: read and split the data, infer the task, build the model and apply the strategy, train
with the one loop in `genoml.train` (probe: on cached features), evaluate valid/test with the
shared inference code, then write weights, genoml.json, metrics.json, report and model card.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genoml.alphabet import reverse_complement
from genoml.config import BASELINE_NETS, FinetuneConfig, write_json
from genoml.data import (
    LabelSpace,
    bucketed_batches,
    collate,
    make_windows,
    token_budget_batches,
)
from genoml.errors import GenomlError, InputError
from genoml.inference import Predictor, logits_to_scores

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- data


@dataclass
class Split:
    name: str
    ids: list[str]
    seqs: list[str]
    labels: list[str]
    source: str | None = None
    file: str | None = None  # the file the records were read from (its sha256 goes into genoml.json)
    intervals: list | None = None  # BED input: (chrom, start, end, strand) per record


def sha256(path: str | None) -> str | None:
    if not path or path == "-" or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read(
    cfg: FinetuneConfig, path: str | None, with_extras: bool, alphabet: str | None = None
) -> tuple[list, str]:
    from genoml.io import InputSpec, read_records

    d = cfg.data
    spec = InputSpec(
        path=path,
        labels=d.labels if with_extras else None,
        classes=d.classes if with_extras else [],
        bed=d.bed if with_extras else None,
        genome=d.genome if with_extras else None,
        alphabet=alphabet or d.alphabet,
        rna=d.rna,
    )
    if with_extras and d.label_column is not None and hasattr(spec, "label_column"):
        spec.label_column = d.label_column
    records = list(read_records(spec))
    if not records:
        raise InputError(f"{path or 'input'}: no sequences found")
    return records, path or (d.bed or "classes")


def load_splits(cfg: FinetuneConfig) -> tuple[dict[str, Split], str]:
    """Read train (+valid/test, or a seeded stratified split) -> splits and the alphabet."""
    from genoml.io import detect_alphabet

    d = cfg.data
    from genoml.checks import check_labels

    train, src = _read(cfg, d.train, True)
    check_labels(train, cfg.task, src)
    if cfg.model == "kmer-linear" and (
        cfg.task == "multilabel" or (cfg.task == "auto" and any(r.label and ";" in r.label for r in train))
    ):
        raise InputError(
            "--model kmer-linear: does not do multilabel tasks (labels with ';'); use --model cnn, rnn "
            "or a transformer"
        )
    alphabet = d.alphabet if d.alphabet != "auto" else detect_alphabet(r.seq for r in train[:200])
    splits = {
        "train": Split(
            "train",
            [r.id for r in train],
            [r.seq for r in train],
            [r.label for r in train],
            src,
            d.train or d.bed,
            [r.interval for r in train],
        )
    }
    for name, path in (("valid", d.valid), ("test", d.test)):
        if path:
            recs, _ = _read(
                cfg, path, False, alphabet
            )  # the train alphabet: a protein test set for a DNA run is an error
            check_labels(recs, cfg.task, path)
            splits[name] = Split(
                name, [r.id for r in recs], [r.seq for r in recs], [r.label for r in recs], path, path
            )
    missing = [n for n in ("valid", "test") if n not in splits]
    if missing:
        from genoml.splits import groups_for, split_indices

        full = splits["train"]
        fr = (d.valid_fraction if "valid" in missing else 0.0, d.test_fraction if "test" in missing else 0.0)
        split_by = getattr(d, "split_by", "random")
        groups = groups_for(split_by, full.seqs, full.intervals or [], alphabet == "dna", gap=split_gap(cfg))
        tr, va, te = split_indices(full.labels, fr, cfg.seed, groups=groups, where=str(full.source))
        parts = {"train": tr, "valid": va, "test": te}
        how = f"split by {split_by}, seed {cfg.seed}" if split_by != "random" else f"split, seed {cfg.seed}"
        for name in ["train", *missing]:
            idx = parts[name]
            if len(idx):
                splits[name] = Split(
                    name,
                    [full.ids[i] for i in idx],
                    [full.seqs[i] for i in idx],
                    [full.labels[i] for i in idx],
                    f"{full.source} ({how})",
                    full.file,
                    [full.intervals[i] for i in idx] if full.intervals else None,
                )
        log.info("split %s: %s", full.source, ", ".join(f"{n}={len(s.seqs)}" for n, s in splits.items()))
    return splits, alphabet


def split_gap(cfg: FinetuneConfig) -> int:
    """--split-by region: intervals closer than this many bases are grouped (the --window, else 0 = overlap)."""
    return int(cfg.max_tokens or 0)


# ---------------------------------------------------------------- model


def default_model(alphabet: str) -> str:
    from genoml.pretrained import default_model_dir

    path = default_model_dir(alphabet)
    if path is None:
        raise InputError(
            f"no embedded genoml {alphabet} model is installed; pass --model <hub id or folder> "
            "(or --model cnn / rnn / kmer-linear for a baseline)"
        )
    return str(path)


def model_name(cfg: FinetuneConfig, alphabet: str) -> str:
    """--model, with "embedded" (or no model outside --model auto) resolved to the shipped model folder."""
    return default_model(alphabet) if cfg.model in (None, "auto", "embedded") else cfg.model


def build_model(cfg: FinetuneConfig, alphabet: str, labels: LabelSpace):
    """-> (SequenceModel, tokenizer, max_tokens, source description)."""
    from genoml.models import SequenceModel, build_baseline, load_hf_encoder, max_positions
    from genoml.tokenizers import build_tokenizer, load_tokenizer

    name = model_name(cfg, alphabet)
    common = dict(labels=labels.names, task=labels.task)
    from genoml.trunks import base_meta, build_from_base

    if base_meta(name) is not None:  # a genoml cnn / cnn-shallow / rnn run or multitask folder: its trunk
        model, tok = build_from_base(name, alphabet, labels.n_out, head=cfg.head, **common)
        return model, tok, cfg.max_tokens or 1024, name
    if name in BASELINE_NETS:
        tok = build_tokenizer("char" if alphabet == "dna" else "esm")
        model = build_baseline(name, tok, labels.n_out, head=cfg.head, **common)
        return model, tok, cfg.max_tokens or 1024, name
    if name.startswith("random:"):
        from genoml.presets import build_random_encoder

        tok = build_tokenizer("char" if alphabet == "dna" else "esm")
        encoder = build_random_encoder(name.split(":", 1)[1], tok, 512)
        source = name
    else:
        encoder = load_hf_encoder(name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
        tok = load_tokenizer(name) if Path(name).is_dir() else load_tokenizer(_hub_snapshot(name, cfg))
        source = name
    if tok.alphabet != alphabet:
        raise InputError(f"--model {name}: a {tok.alphabet} model, but the input sequences are {alphabet}")
    max_tokens = min(cfg.max_tokens or max_positions(encoder), max_positions(encoder))
    model = SequenceModel(
        "hf", encoder, labels.n_out, tokenizer=tok, pooling=cfg.pooling, head=cfg.head, **common
    )
    return model, tok, max_tokens, source


def _hub_snapshot(name: str, cfg: FinetuneConfig) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, revision=cfg.revision, allow_patterns=["*.json", "*.txt", "*.model"])
    except Exception as e:  # noqa: BLE001
        from genoml.models import HUB_HINT

        raise InputError(f"--model {name}: {HUB_HINT} ({type(e).__name__})") from None


# ---------------------------------------------------------------- training


def loss_function(labels: LabelSpace, class_weights: torch.Tensor | None):
    if labels.task == "regression":
        return lambda logits, y: nn.functional.mse_loss(logits.squeeze(-1), y)
    if labels.task == "multilabel":
        return lambda logits, y: nn.functional.binary_cross_entropy_with_logits(logits, y)
    return lambda logits, y: nn.functional.cross_entropy(logits, y, weight=class_weights)


class FeatureHead(nn.Module):
    """Probe: the trainable head applied to cached pooled features (B, H) -> (B, C)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.classifier = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


def encode_features(
    model, ids: list[list[int]], pad_id: int, batch_tokens: int | None = None
) -> torch.Tensor:
    """Pooled encoder features for every window (W, H) float32 on the CPU: computed once, reused every epoch.
    Batches run on the model's device (bf16 autocast on CUDA)."""
    from genoml.device import autocast, default_batch_tokens, fused_kernels, model_device

    model.eval()
    device = model_device(model)
    batch_tokens = default_batch_tokens(device, batch_tokens)
    out = None
    with torch.inference_mode(), fused_kernels():
        for idx in token_budget_batches([len(x) for x in ids], batch_tokens):
            x, mask = collate([ids[i] for i in idx], pad_id)  # (B, L) each
            with autocast(device):
                f = model.features(x.to(device), mask.to(device))  # (B, H)
            if out is None:
                out = torch.zeros(len(ids), f.shape[1])
            out[torch.as_tensor(idx)] = f.float().cpu()
    return torch.zeros(0, 0) if out is None else out.clone()  # clone: a normal tensor, usable under autograd


class Job:
    """Holds one run's data, model and settings while it trains and evaluates."""

    def __init__(self, cfg: FinetuneConfig, out: Path, splits: dict[str, Split], alphabet: str):
        self.cfg, self.out, self.splits, self.alphabet = cfg, out, splits, alphabet
        self.labels = LabelSpace.infer(
            splits["train"].labels, cfg.task, cfg.standardize, where=str(splits["train"].source)
        )
        self.positive = None
        if self.labels.task == "binary":
            from genoml.positive import choose_positive, order_binary

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

    def evaluate_split(self, predictor: Predictor, name: str) -> tuple[dict, np.ndarray]:
        from genoml.metrics import compute_metrics

        scores = predictor.scores(self.splits[name].seqs)
        y = self.targets[name].numpy()
        y = self.labels.decode(y)
        return compute_metrics(self.labels.task, y, scores, self.labels.names, self.cfg.threshold), scores


def train_torch(job: Job, model, tokenizer, max_tokens: int):
    """Train a SequenceModel (or its head on cached features) with the shared loop. Returns TrainResult."""
    from genoml.device import model_device
    from genoml.metrics import headline_metric
    from genoml.strategies import count_parameters
    from genoml.train import TrainConfig, Trainer

    cfg = job.cfg
    ids, y = job.train_items(tokenizer, max_tokens)
    probe = model.arch == "hf" and cfg.strategy_name() == "probe"
    t0 = time.time()
    if probe:  # the frozen encoder runs once, on the training device (Accelerate would move it later anyway)
        from genoml.device import resolve_device

        device = resolve_device(cfg.device)
        if device.type != "cpu":
            model.to(device)
        feats = encode_features(model, ids, tokenizer.pad_id)
        valid_feats = (
            encode_features(
                model,
                make_windows(job.splits["valid"].seqs, tokenizer, max_tokens, cfg.stride).ids,
                tokenizer.pad_id,
            )
            if "valid" in job.splits
            else None
        )
        log.info("probe: cached %d training windows' features in %.1fs", len(ids), time.time() - t0)
        trainee = FeatureHead(model.classifier)
    else:
        trainee = model
    trainable, total = count_parameters(model)
    job.param_counts = {"trainable": trainable, "total": total}
    log.info(
        "parameters: %s trainable of %s (%.2f%%), strategy %s",
        f"{trainable:,}",
        f"{total:,}",
        100 * trainable / max(total, 1),
        cfg.strategy if model.arch == "hf" else "full (baseline)",
    )
    steps_per_epoch = max(1, math.ceil(len(ids) / cfg.batch_size))
    lengths = [len(x) for x in ids]
    epoch_batches: dict[int, list[np.ndarray]] = {}
    loss_of = loss_function(job.labels, job.class_weights())

    def get_batch(step: int, rank: int = 0, world: int = 1) -> dict:
        epoch = step // steps_per_epoch
        if epoch not in epoch_batches:
            epoch_batches.clear()
            epoch_batches[epoch] = bucketed_batches(
                lengths, cfg.batch_size, np.random.default_rng([cfg.seed, epoch])
            )
        idx = epoch_batches[epoch][step % steps_per_epoch][rank::world]
        t = torch.as_tensor(idx)
        if probe:
            return {"features": feats[t], "y": y[t]}
        x, mask = collate([ids[i] for i in idx], tokenizer.pad_id)
        return {"input_ids": x, "attention_mask": mask, "y": y[t]}

    def loss_fn(m, batch: dict) -> torch.Tensor:
        logits = m(batch["features"]) if probe else m(batch["input_ids"], batch["attention_mask"])
        return loss_of(logits.float(), batch["y"])

    headline = headline_metric(job.labels.task)

    def evaluate(m) -> dict:
        if "valid" not in job.splits:
            return {}
        if probe:
            with torch.no_grad():
                m.eval()
                win_logits = m(valid_feats.to(model_device(m))).cpu()
            from genoml.data import aggregate_windows

            win = make_windows(job.splits["valid"].seqs, tokenizer, max_tokens, cfg.stride)
            logits = aggregate_windows(win_logits.float(), win.parent, win.n_seqs, cfg.aggregate)
            from genoml.metrics import compute_metrics

            yv = job.targets["valid"].numpy()
            yv = job.labels.decode(yv)
            metrics = compute_metrics(
                job.labels.task, yv, logits_to_scores(logits, job.labels), job.labels.names, cfg.threshold
            )
        else:
            metrics, _ = job.evaluate_split(job.predictor(m, tokenizer, max_tokens), "valid")
        m.train()
        value = metrics.get(headline)
        metrics[headline] = (
            value if value is not None and not (isinstance(value, float) and math.isnan(value)) else -1.0
        )
        return metrics

    hidden = (
        getattr(getattr(model.encoder, "config", None), "hidden_size", None) if model.arch == "hf" else None
    )
    lr = cfg.default_lr(hidden, model.arch)
    log.info("lr %.2g (%s)", lr, "--lr" if cfg.lr is not None else f"default for {cfg.strategy}")
    tcfg = TrainConfig(
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
        patience=cfg.patience if "valid" in job.splits else None,
        time_budget_s=cfg.time_budget_min * 60 if cfg.time_budget_min else None,
        select_metric=headline if "valid" in job.splits else None,
        greater_is_better=True,
        device=cfg.device,
    )
    trainer = Trainer(trainee, tcfg, job.out, get_batch=get_batch, loss_fn=loss_fn, evaluate=evaluate)
    result = trainer.fit(resume=cfg.resume)
    if probe:
        model.classifier = trainee.classifier
    return result


# ---------------------------------------------------------------- orchestration


def run_finetune(cfg: FinetuneConfig, command: list[str] | None = None) -> dict:
    """Run a whole fine-tuning job; returns {"out": path, "metrics": ..., "stopped": reason}.

    No model (or `auto`): candidates are trained and the best on validation is kept (genoml.auto).
    Unset epochs / batch size / patience take the recipe of the model family (config.RECIPES)."""
    from genoml.checks import check_finetune_flags
    from genoml.device import resolve_device

    cfg.validate()
    resolve_device(cfg.device)  # --device cuda without a GPU: exit 2 before anything is written
    check_finetune_flags(cfg)
    if cfg.is_auto():
        from genoml.auto import run_auto

        return run_auto(cfg, command)
    from genoml.trunks import is_convolutional

    cfg = cfg.with_recipe_defaults(is_convolutional(cfg.model) or cfg.model == "kmer-linear")
    cfg.validate()
    if cfg.model and Path(cfg.model).is_dir():
        from genoml.checks import check_safetensors
        from genoml.models import check_safe_weights

        check_safe_weights(Path(cfg.model))  # an unsafe pickle is exit 3 before any "corrupt file" message
        check_safetensors(cfg.model)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    splits, alphabet = load_splits(cfg)  # read before touching --out: bad input leaves nothing behind
    from genoml.outputs import discard_outputs, record_outputs
    from genoml.runs import prepare_run_dir

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
    from genoml.kmer_linear import KmerLinear
    from genoml.runs import save_model
    from genoml.splits import leakage

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
        from genoml.auto import resolve_rc

        cfg, rc_info = resolve_rc(cfg, splits, alphabet, job.labels)
        job.cfg = cfg
    t0 = time.time()
    stopped, history = "completed", []
    if cfg.model == "kmer-linear":
        arch, model, tokenizer, max_tokens, source = "kmer-linear", None, None, 0, "kmer-linear"
        y = job.targets["train"].numpy()
        km = KmerLinear(
            job.labels.task if job.labels.task == "regression" else "classification", alphabet, seed=cfg.seed
        ).fit(splits["train"].seqs, y)
        predictor = Predictor(None, job.labels, kmer=km)
    else:
        if cfg.adapt_steps > 0 and cfg.model not in BASELINE_NETS:
            from genoml.adapt import adapt_model

            cfg.model = adapt_model(
                model_name(cfg, alphabet),
                splits["train"].seqs,
                out,
                steps=cfg.adapt_steps,
                seed=cfg.seed,
                threads=cfg.threads,
                device=cfg.device,
            )
        model, tokenizer, max_tokens, source = build_model(cfg, alphabet, job.labels)
        arch = model.arch
        from genoml.checks import check_model_fits

        check_model_fits(cfg, model, tokenizer, max_tokens)
        from genoml.strategies import apply_strategy_, merge_lora_

        apply_strategy_(model, cfg.strategy_name(), cfg.partial_layers(), cfg.lora_rank)
        if getattr(model, "from_base", None):  # a transferred cnn / cnn-shallow / rnn trunk
            from genoml.trunks import apply_trunk_strategy_

            apply_trunk_strategy_(model, cfg.strategy_name(), cfg.partial_layers())
        result = train_torch(job, model, tokenizer, max_tokens)
        stopped, history = result.stopped_reason, result.history
        merge_lora_(model)
        model.eval()
        predictor = job.predictor(model, tokenizer, max_tokens)
    train_seconds = time.time() - t0
    metrics, predictions = {}, {}
    for name in ("valid", "test"):
        if name in splits:
            metrics[name], scores = job.evaluate_split(predictor, name)
            metrics[name]["duplicates_with_train"] = leakage(
                splits["train"].seqs,
                splits[name].seqs,
                alphabet == "dna",
                train_intervals=splits["train"].intervals or [],
                other_intervals=splits[name].intervals or [],
                gap=split_gap(cfg),
            )
            write_predictions(
                out / f"predictions_{name}.tsv",
                splits[name].ids,
                scores,
                job.labels,
                true_labels=splits[name].labels,
                threshold=cfg.threshold,
            )
            y_true = job.targets[name].numpy()
            y_true = job.labels.decode(y_true)
            predictions[name] = {
                "y_true": y_true,
                "probs": scores,
                "labels": job.labels.names,
                "task": job.labels.task,
                "ids": splits[name].ids,
            }
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["stopped"] = stopped
    if rc_info is not None:
        metrics["rc"] = rc_info
    metrics["parameters"] = getattr(job, "param_counts", None) or _parameters(
        model, km if arch == "kmer-linear" else None
    )
    metrics["train_windows_per_s"] = round(
        len(splits["train"].seqs) * max(1, len(history) or 1) / max(train_seconds, 1e-9), 1
    )
    meta = {
        "kind": "finetuned",
        "arch": arch,
        "labels": job.labels.to_dict(),
        "alphabet": alphabet,
        "tokenizer": getattr(tokenizer, "spec", None),
        "max_tokens": max_tokens,
        "stride": cfg.stride,
        "aggregate": cfg.aggregate,
        "rc_average": cfg.rc_average and alphabet == "dna",
        "threshold": cfg.threshold,
        "pooling": cfg.pooling,
        "head": cfg.head,
        "strategy": cfg.strategy if arch == "hf" or getattr(model, "from_base", None) else "full",
        "source_model": source,
        "revision": cfg.revision,
        "seed": cfg.seed,
        "data": {
            n: {"source": s.source, "sha256": sha256(s.file), "n": len(s.seqs)} for n, s in splits.items()
        },
        "config": cfg.to_dict(),
        "command": command,
    }
    if arch == "kmer-linear":
        km.save(out)
    save_model(model, out, meta)
    if km_needed := (cfg.baselines and cfg.model != "kmer-linear"):
        metrics["baselines"] = baseline_metrics(job, alphabet, predictions)
    write_json(out / "metrics.json", metrics)
    write_json(out / "history.json", history)
    _write_reports(job, out, meta, metrics, history, predictions, model, km_needed)
    log.info("done in %.0fs: %s", time.time() - t0, _summary(metrics, job.labels.task))
    return {"out": str(out), "metrics": metrics, "stopped": stopped}


def _parameters(model, km) -> dict:
    if km is not None:
        n = int(km.coef.size + km.intercept.size)
        return {"trainable": n, "total": n}
    from genoml.strategies import count_parameters

    trainable, total = count_parameters(model)
    return {"trainable": trainable, "total": total}


def write_predictions(
    path: Path,
    ids: list[str],
    scores: np.ndarray,
    labels: LabelSpace,
    true_labels: list[str] | None = None,
    threshold: float = 0.5,
) -> None:
    """Per-record test/valid predictions: id, true label, predicted class (or value), then the scores
    (prob_<label> per class, or value) — for error analysis and later paired comparisons."""
    import csv

    from genoml.predict import decide

    cols = ["value"] if labels.task == "regression" else [f"prob_{n}" for n in labels.names]
    predicted = decide(np.asarray(scores), {"labels": labels.to_dict()}, threshold) if len(ids) else []
    true_labels = true_labels if true_labels is not None else [""] * len(ids)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "true_label", "predicted", *cols])
        for i, t, p, row in zip(ids, true_labels, predicted, scores):
            w.writerow([i, t, p, *(f"{v:.6g}" for v in row)])


def baseline_metrics(job: Job, alphabet: str, predictions: dict) -> dict:
    """kmer-linear and majority-class metrics on the test (or valid) split, trained in this run,
    each with a paired bootstrap of (model - baseline) on the headline metric."""
    from genoml.kmer_linear import KmerLinear
    from genoml.metrics import compute_metrics, headline_fn, paired_bootstrap

    split = "test" if "test" in job.splits else "valid" if "valid" in job.splits else None
    if split is None:
        return {}
    task = job.labels.task
    y_train = job.targets["train"].numpy()
    y = job.targets[split].numpy()
    out = {"split": split}
    try:
        km = KmerLinear(
            "regression" if task == "regression" else "classification", alphabet, seed=job.cfg.seed
        )
        if task == "multilabel":
            raise GenomlError("kmer-linear baseline does not do multilabel")
        km.fit(job.splits["train"].seqs, y_train)
        scores = logits_to_scores(
            torch.as_tensor(km.logits(job.splits[split].seqs), dtype=torch.float32), job.labels
        )
        yy = job.labels.decode(y)
        out["kmer-linear"] = compute_metrics(task, yy, scores, job.labels.names, job.cfg.threshold)
        out["kmer-linear"]["_scores"] = scores
    except GenomlError as e:
        log.info("kmer-linear baseline skipped: %s", e)
    if task in ("binary", "multiclass"):
        prior = np.bincount(y_train, minlength=job.labels.n_out) / len(y_train)
        out["majority"] = compute_metrics(
            task, y, np.tile(prior, (len(y), 1)), job.labels.names, job.cfg.threshold
        )
        out["majority"]["_scores"] = np.tile(prior, (len(y), 1))
    if split in predictions:
        fn = headline_fn(task, job.cfg.threshold)
        y_model = predictions[split]["y_true"]
        for name in ("kmer-linear", "majority"):
            if name in out and "_scores" in out[name]:
                out[name]["vs_model"] = paired_bootstrap(
                    fn, y_model, predictions[split]["probs"], out[name].pop("_scores")
                )
    return out


def _summary(metrics: dict, task: str) -> str:
    from genoml.metrics import headline_metric

    h = headline_metric(task)
    parts = [
        f"{n} {h}={metrics[n].get(h):.4f}"
        for n in ("valid", "test")
        if n in metrics and metrics[n].get(h) is not None
    ]
    return ", ".join(parts) or "no evaluation split"


def _write_reports(job, out, meta, metrics, history, predictions, model, with_baselines) -> None:
    from genoml.report import write_model_card, write_report

    settings = {
        k: meta[k]
        for k in (
            "arch",
            "source_model",
            "strategy",
            "tokenizer",
            "max_tokens",
            "pooling",
            "head",
            "seed",
            "alphabet",
        )
    }
    settings["task"] = job.labels.task
    settings["labels"] = ", ".join(job.labels.names)
    if job.positive:
        settings["positive_class"] = f"{job.positive[0]} ({job.positive[1]}; ROC/PR, precision, recall, F1)"
    stopped = metrics.get("stopped")
    extra = []
    if job.cfg.attention and model is not None and job.labels.task != "regression":
        if model.arch == "hf":
            extra += _attention_section(job, model, out)
        if job.labels.task == "binary" and job.alphabet == "dna":
            extra += _motif_section(job, model, out)
    baselines = metrics.get("baselines") if with_baselines else None
    write_report(
        out,
        metrics={k: v for k, v in metrics.items() if k in ("valid", "test")},
        history=history,
        settings=settings,
        predictions=predictions,
        baselines=baselines,
        extra_sections=extra,
        stopped=stopped,
    )
    write_model_card(
        out,
        settings=settings,
        metrics={k: v for k, v in metrics.items() if k in ("valid", "test")},
        source_model=str(meta["source_model"]),
        licence=_licence_of(meta["source_model"]),
        data_description=", ".join(
            f"{n}: {d['source']} ({d['n']} sequences)" for n, d in meta["data"].items()
        ),
        stopped=stopped,
    )


def _licence_of(source: str) -> str:
    readme = Path(str(source)) / "README.md"
    if readme.is_file():
        lines = readme.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if line.lower().lstrip("-* ").startswith(("licence", "license")):
                paragraph = [line]  # the whole paragraph: a licence sentence may wrap onto the next lines
                for nxt in lines[i + 1 :]:
                    if not nxt.strip() or nxt.lstrip().startswith(("#", "-", "*", "|", "```")):
                        break
                    paragraph.append(nxt.strip())
                text = " ".join(paragraph)
                return text.split(":", 1)[-1].strip() or text
    return "inherited from the source model (see its model card)"


def _attention_section(job: Job, model, out: Path) -> list[tuple[str, str]]:
    """A few example attention maps of test positives for the report (never fails the run)."""
    try:
        from genoml.interpret import explain
    except ImportError:
        return []
    split = job.splits.get("test") or job.splits.get("valid")
    if split is None:
        return []
    from genoml.io import Record

    records = [Record(id=i, seq=s, label=lab) for i, s, lab in zip(split.ids, split.seqs, split.labels)][:3]
    try:
        summary = explain(model, records, out / "attention", methods=("attention",))
    except Exception as e:  # noqa: BLE001 - the report is optional; say why it is missing
        log.warning("attention maps skipped: %s", e)
        return []
    pngs = sorted((out / "attention").glob("**/*.png"))[:3]
    body = "\n".join(f"![{p.stem}]({p.relative_to(out)})" for p in pngs) or str(summary)[:500]
    return [("Attention maps (examples)", body)]


def _motif_section(job: Job, model, out: Path, n: int = 200) -> list[tuple[str, str]]:
    """Motifs enriched in the high-attribution windows of positive test sequences vs negatives (logos)."""
    from genoml.interpret import explain_sequence
    from genoml.motifs import find_motifs, write_motifs

    split = job.splits.get("test") or job.splits.get("valid")
    if split is None:
        return []
    positive = job.labels.names[1]
    pos = [s for s, lab in zip(split.seqs, split.labels) if lab == positive][:n]
    neg = [s for s, lab in zip(split.seqs, split.labels) if lab != positive][:n]
    try:
        tracks = [
            explain_sequence(model, s, methods=("grad-input",), target=1, keep_maps=False).tracks[
                "grad-input"
            ]
            for s in pos
        ]
        motifs = find_motifs(pos, tracks, neg, max_motifs=3)
        summary = write_motifs(motifs, out / "motifs")
    except Exception as e:  # noqa: BLE001 - the report is optional; say why it is missing
        log.warning("motif discovery skipped: %s", e)
        return []
    if not motifs:
        return [
            (
                "Motifs",
                f"No motif enriched in positive ({positive}) high-attribution windows vs negatives "
                f"(q < 0.05) among {len(pos)} positives / {len(neg)} negatives.",
            )
        ]
    rows = ["| consensus | hits | p | q | logo |", "|---|---|---|---|---|"]
    rows += [
        f"| `{m['consensus']}` | {m['n_hits']} | {m['pvalue']:.2g} | {m['qvalue']:.2g} | "
        f"![logo](motifs/{m['logo']}) |"
        for m in summary["motifs"]
    ]
    body = (
        f"Grad×input tracks of {len(pos)} positive ({positive}) sequences; enrichment vs {len(neg)} negatives "
        "(hypergeometric test, Benjamini–Hochberg). Full list: `motifs/motifs.json`, `motifs/motifs.meme`.\n\n"
    )
    return [("Motifs", body + "\n".join(rows))]
