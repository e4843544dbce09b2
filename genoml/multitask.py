"""`genoml multitask`: supervised pretraining of one trunk on several labelled datasets, one head each.

As Basset/Basenji/Enformer trunks are made: a shared convolutional (or recurrent) trunk, and a linear
head per dataset over its pooled features (B, H) -> (B, C_t). Each step draws one dataset (with
probability proportional to the square root of its size, so large sets do not drown small ones) and
a batch of `batch_size` of its training sequences; the loss is that dataset's cross-entropy.
Training is the shared loop of `genoml.train` (time budget, linear lr decay, best weights by the
mean validation MCC over datasets, on a seeded stratified `valid_fraction` of each dataset).

Self-supervised task (`shuffled`): unlabelled DNA files, each cut into `shuffled_width`-base windows; every
window (label "real") and a dinucleotide-shuffled copy of it (label "shuffled", genoml.shuffle) form one more
binary dataset with its own head — a trunk learns what real sequence looks like beyond its dinucleotide
content (TF-binding sets commonly use such shuffles as negatives). With `shuffled` alone the trunk is
self-supervised; with datasets too, both kinds of pretraining share it.

Leakage guard (`exclude`): files of the target task's dev/test sequences. A training sequence is
removed when it equals, contains, or is contained in any of them, on either strand (DNA); the counts
per dataset are reported in `metrics.json` and `genoml.json` ("exclusion"). Matching uses an index of
k-mer anchors (k = the shortest sequence length, at most 16) and exact substring checks.

The trunk is a from-scratch net (`arch`: cnn, cnn-shallow, cnn-attn, rnn) or, with `base`, the trunk of any
model `finetune --model` takes: a genoml cnn/cnn-shallow/rnn run or multitask folder (trained further),
or an encoder (a transformers folder, genoml's ConvLM or transformer pretrain folders, `embedded`):
then self-supervised and supervised pretraining combine (the base's weights are the starting point)
and an encoder's features are its last hidden states pooled as `finetune --pooling auto` pools them.

The output folder holds the tokenizer, `genoml.json` (kind "multitask") and the trunk: for a net,
`model.safetensors` with `encoder.*`, `embedding.*` (the trunk) and `heads.<i>.*`; for a `base`, a
transformers folder (`config.json`, `model.safetensors`: the encoder only) and `heads.safetensors`.
Either way `genoml finetune --model FOLDER` uses the trunk with a new head (genoml.trunks, or the
transformers loader).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from genoml.config import FinetuneConfig, MultitaskConfig, TrainConfig, write_json
from genoml.data import (
    LabelSpace,
    aggregate_windows,
    collate,
    make_windows,
    stratified_split,
    token_budget_batches,
)
from genoml.device import model_device
from genoml.errors import InputError
from genoml.finetune_model import build_model, model_name
from genoml.inference import logits_to_scores
from genoml.io import InputSpec, Record, detect_alphabet, read_records, reverse_complement
from genoml.metrics import compute_metrics
from genoml.models import Head, build_baseline, trunk_features
from genoml.outputs import discard_outputs, record_outputs
from genoml.runs import RunMeta, prepare_run_dir
from genoml.shuffle import genome_windows, real_vs_shuffled
from genoml.tokenizers import build_tokenizer
from genoml.train import Trainer

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- leakage screen


def screen_overlap(
    sources: list[str], targets: list[str], both_strands: bool = True
) -> tuple[np.ndarray, dict]:
    """Which source sequences overlap a target sequence: equal to it, containing it or contained in it
    (either strand of the target when both_strands).

    -> (keep (N,) bool, counts {"exact", "contains_target", "inside_target", "removed", "kept"}).
    A source matching several ways is counted once, in the first of exact / contains / inside."""
    tset = set(targets) | ({reverse_complement(t) for t in targets} if both_strands else set())
    tlist = [t for t in tset if t]
    keep = np.ones(len(sources), dtype=bool)
    counts = {"exact": 0, "contains_target": 0, "inside_target": 0}
    if not tlist or not sources:
        counts.update(removed=0, kept=len(sources))
        return keep, counts
    k = max(1, min(16, min(len(t) for t in tlist), min(len(s) for s in sources if s) if any(sources) else 16))
    by_prefix: dict[str, list[str]] = {}
    for t in tlist:
        by_prefix.setdefault(t[:k], []).append(t)
    src_prefix: dict[str, list[int]] = {}
    for i, s in enumerate(sources):
        if s in tset:
            keep[i] = False
            counts["exact"] += 1
            continue
        hit = False
        for p in range(len(s) - k + 1):  # does s contain some target t? t starts with one of s's k-mers
            for t in by_prefix.get(s[p : p + k], ()):
                if len(t) <= len(s) and s.startswith(t, p):
                    hit = True
                    break
            if hit:
                break
        if hit:
            keep[i] = False
            counts["contains_target"] += 1
        elif s:
            src_prefix.setdefault(s[:k], []).append(i)
    for t in tlist:  # is some source s inside target t? s starts with one of t's k-mers
        for p in range(len(t) - k + 1):
            for i in src_prefix.get(t[p : p + k], ()):
                if keep[i] and len(sources[i]) <= len(t) and t.startswith(sources[i], p):
                    keep[i] = False
                    counts["inside_target"] += 1
    counts["removed"] = int((~keep).sum())
    counts["kept"] = int(keep.sum())
    return keep, counts


# ---------------------------------------------------------------- model


class MultitaskNet(nn.Module):
    """Trunk + one head per dataset. forward(input_ids (B, L), mask (B, L), task: int) -> logits (B, C_task).

    `encoder` and `embedding` are named as in SequenceModel, so a saved net trunk loads into it. `hf`: the
    encoder is a transformers model (features: last_hidden_state (B, L, H) pooled over real tokens as
    finetune's `--pooling auto` pools that encoder: `hidden` is the pooled width)."""

    def __init__(
        self, encoder: nn.Module, embedding: nn.Module | None, hidden: int, n_outs: list[int], pooling="mean"
    ):
        super().__init__()
        self.encoder, self.embedding = encoder, embedding
        self.hf = embedding is None
        self.pooling = pooling
        self.heads = nn.ModuleList(Head(hidden, n) for n in n_outs)

    @classmethod
    def from_arch(cls, arch: str, tokenizer, n_outs: list[int]) -> MultitaskNet:
        """A from-scratch cnn / cnn-shallow / cnn-attn / rnn trunk over one-hot input."""
        base = build_baseline(arch, tokenizer, n_outs[0], labels=["0"] * n_outs[0], task="multiclass")
        return cls(base.encoder, base.embedding, base.encoder.hidden_size, n_outs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, task: int) -> torch.Tensor:
        features = trunk_features(
            self.encoder, self.embedding, self.pooling, input_ids, attention_mask
        )  # (B, H')
        return self.heads[task](features)  # (B, C_task)


def _trunk(
    cfg: MultitaskConfig, alphabet: str, spaces: list[LabelSpace]
) -> tuple[MultitaskNet, object, int, str]:
    """The model to train -> (net, tokenizer, tokens per window, arch recorded in genoml.json). `base` is
    resolved and loaded as `finetune --model` does (genoml.finetune_model): a genoml run or multitask folder
    (its trunk), an encoder folder or hub id, or "embedded"; its tokenizer and positions decide the windows."""
    n_outs = [s.n_out for s in spaces]
    if cfg.base is None:
        tok = build_tokenizer("char" if alphabet == "dna" else "esm")
        return MultitaskNet.from_arch(cfg.arch, tok, n_outs), tok, 1024, cfg.arch
    fcfg = FinetuneConfig(model=cfg.base)
    seq, tok, max_tokens, _ = build_model(fcfg, model_name(fcfg, alphabet), alphabet, spaces[0])
    net = MultitaskNet(seq.encoder, seq.embedding, seq.feature_width, n_outs, pooling=seq.pooling)
    return net, tok, min(1024, max_tokens), seq.arch


# ---------------------------------------------------------------- run


@dataclass
class _Set:
    name: str
    source: str
    labels: object  # LabelSpace
    train_ids: list
    train_y: torch.Tensor
    valid_ids: list
    valid_parent: np.ndarray
    valid_y: np.ndarray
    n_valid_seqs: int
    counts: dict


def _read(path: str):
    recs = list(read_records(InputSpec(path=path)))
    if not recs:
        raise InputError(f"{path}: no sequences found")
    return recs


def _shuffled_task(path: str, width: int, seed: int) -> list[Record]:
    """The self-supervised task of a `--shuffled` file: its DNA cut into `width`-base windows (genoml.shuffle),
    each window (label "real") followed by a dinucleotide shuffle of itself (label "shuffled")."""
    recs = _read(path)
    if detect_alphabet(r.seq for r in recs[:200]) != "dna":
        raise InputError(f"--shuffled {path}: expected DNA (dinucleotide shuffles of DNA windows)")
    windows = list(genome_windows((r.seq for r in recs), width))
    if not windows:
        raise InputError(f"--shuffled {path}: no window of {width} bases without N or other non-ACGT letters")
    return [
        Record(id=f"w{i // 2}.{label}", seq=seq, label=label, where=f"{path} window {i // 2 + 1}")
        for i, (seq, label) in enumerate(real_vs_shuffled(windows, seed))
    ]


def run_multitask(cfg: MultitaskConfig, command: list[str] | None = None) -> dict:
    """Train the trunk; write the folder. Returns {"out", "metrics"}."""
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    named = []
    for spec in cfg.datasets:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).parent.name + "/" + Path(spec).stem, spec
        if not name or not path:
            raise InputError(f"multitask dataset {spec!r}: expected NAME=FILE or FILE")
        named.append((name, path))
    records = {name: _read(path) for name, path in named}
    for i, path in enumerate(cfg.shuffled):
        name = f"shuffled/{Path(path).name}"
        name += f"#{i}" if name in records else ""  # the same file name twice
        records[name] = _shuffled_task(path, cfg.shuffled_width, cfg.seed + i)
        named.append((name, path))
    alphabets = {name: detect_alphabet(r.seq for r in recs[:200]) for name, recs in records.items()}
    if len(set(alphabets.values())) > 1:
        raise InputError(f"multitask: datasets mix alphabets ({alphabets}); use one alphabet")
    alphabet = next(iter(alphabets.values()))
    targets = [r.seq for path in cfg.exclude for r in _read(path)]
    out = prepare_run_dir(cfg.out, force=cfg.force, inputs=[p for _, p in named] + list(cfg.exclude))
    try:
        result = _train_in(cfg, out, named, records, alphabet, targets, command)
    except BaseException:
        discard_outputs(out)  # a failed run leaves nothing behind (the folder holds only what it wrote)
        raise
    record_outputs(out)
    return result


def _train_in(
    cfg: MultitaskConfig, out: Path, named, records, alphabet: str, targets: list[str], command
) -> dict:
    """The multitask run proper, writing into the prepared `out`."""
    spaces = {name: _labels(records[name], path) for name, path in named}  # before the screen: all classes
    torch.manual_seed(cfg.seed)  # the trunk's (from scratch) and heads' initial weights follow --seed
    model, tok, window, arch = _trunk(cfg, alphabet, [spaces[name] for name, _ in named])
    sets, exclusion = _prepare_sets(cfg, named, records, spaces, targets, tok, window, alphabet)
    sizes = np.array([len(s.train_ids) for s in sets], dtype=float)
    probs = np.sqrt(sizes) / np.sqrt(sizes).sum()
    steps_per_epoch = max(1, int(math.ceil(sizes.sum() / cfg.batch_size)))
    get_batch, evaluate = _batch_sampler(sets, probs, cfg, tok), _evaluator(sets, tok)
    tcfg = _train_config(cfg, steps_per_epoch, peak_lr(cfg, model))
    t0 = time.time()
    log.info(
        "multitask: %s trunk, %d datasets (%s), %d steps of %d at most, lr %g",
        cfg.base or cfg.arch,
        len(sets),
        ", ".join(f"{s.name} {len(s.train_ids)}" for s in sets),
        tcfg.max_steps,
        cfg.batch_size,
        tcfg.lr,
    )
    result = Trainer(model, tcfg, out, get_batch=get_batch, loss_fn=_loss, evaluate=evaluate).fit()
    model.eval()
    final = evaluate(model)
    _save(model, out)
    tok.save_pretrained(out)
    metrics = _write_run_files(out, cfg, sets, tok, alphabet, final, exclusion, result, command, t0, arch)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    log.info(
        "multitask: mean valid MCC %.4f after %d steps (%s); removed %d overlapping sequences",
        final["mean_mcc"],
        result.steps,
        result.stopped_reason,
        sum(d["removed"] for d in exclusion["per_dataset"].values()),
    )
    return {"out": str(out), "metrics": metrics}


def _save(model: MultitaskNet, out: Path) -> None:
    """The trunk and heads: one model.safetensors for a net; a transformers folder + heads.safetensors for a base."""

    def tensors(module: nn.Module, prefix: str = "") -> dict:
        return {prefix + k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}

    if model.hf:
        model.encoder.save_pretrained(out, safe_serialization=True)
        save_file(tensors(model.heads, "heads."), str(out / "heads.safetensors"))
    else:
        save_file(tensors(model), str(out / "model.safetensors"))


def _labels(recs: list, path: str) -> LabelSpace:
    labels = LabelSpace.infer([r.label for r in recs], "auto", where=path)
    if labels.task not in ("binary", "multiclass"):
        raise InputError(f"{path}: multitask trains classification heads; this file is {labels.task}")
    return labels


def _prepare_sets(
    cfg: MultitaskConfig, named, records, spaces: dict, targets: list[str], tok, window: int, alphabet: str
) -> tuple[list[_Set], dict]:
    """Per dataset: drop the sequences overlapping `targets`, split off validation, window both splits.

    -> (the datasets, the exclusion record written to metrics.json and genoml.json)."""
    sets: list[_Set] = []
    exclusion = {
        "files": list(cfg.exclude),
        "target_sequences": len(targets),
        "both_strands": alphabet == "dna",
        "per_dataset": {},
    }
    for name, path in named:
        recs = records[name]
        keep, counts = screen_overlap([r.seq for r in recs], targets, alphabet == "dna")
        exclusion["per_dataset"][name] = {"total": len(recs), **counts}
        log.info(
            "multitask %s: %d sequences, %d removed as overlapping the excluded sequences (%s)",
            name,
            len(recs),
            counts["removed"],
            ", ".join(f"{k} {v}" for k, v in counts.items() if k != "kept"),
        )
        recs = [r for r, k in zip(recs, keep) if k]
        sets.append(_make_set(cfg, name, path, recs, spaces[name], counts, tok, window))
    return sets, exclusion


def _make_set(
    cfg: MultitaskConfig, name: str, path: str, recs: list, labels: LabelSpace, counts: dict, tok, window: int
) -> _Set:
    """One classification dataset: a seeded stratified validation split, both splits cut into `window`-token
    windows; training labels repeated per window (N_windows,), validation labels per sequence."""
    tr, va, _ = stratified_split([r.label for r in recs], (cfg.valid_fraction, 0.0), cfg.seed)
    y = labels.encode([r.label for r in recs], where=path)
    wtr = make_windows([recs[i].seq for i in tr], tok, window)
    wva = make_windows([recs[i].seq for i in va], tok, window)
    return _Set(
        name,
        path,
        labels,
        wtr.ids,
        y[torch.as_tensor(tr)][torch.as_tensor(wtr.parent)],
        wva.ids,
        wva.parent,
        y[torch.as_tensor(va)].numpy(),
        len(va),
        counts,
    )


def _batch_sampler(sets: list[_Set], probs: np.ndarray, cfg: MultitaskConfig, tok):
    """get_batch(step, rank, world) for the Trainer: a dataset drawn with `probs`, then `batch_size` of its
    training windows, both seeded by (seed, step); -> input_ids (B, L), attention_mask (B, L), y (B,), task."""

    def get_batch(step: int, rank: int = 0, world: int = 1) -> dict:
        rng = np.random.default_rng([cfg.seed, step])
        t = int(rng.choice(len(sets), p=probs))
        idx = rng.choice(
            len(sets[t].train_ids), size=min(cfg.batch_size, len(sets[t].train_ids)), replace=False
        )
        idx = idx[rank::world]
        x, mask = collate([sets[t].train_ids[i] for i in idx], tok.pad_id)
        return {"input_ids": x, "attention_mask": mask, "y": sets[t].train_y[torch.as_tensor(idx)], "task": t}

    return get_batch


def _loss(m: MultitaskNet, batch: dict) -> torch.Tensor:
    """Cross-entropy of the batch's dataset head."""
    return nn.functional.cross_entropy(
        m(batch["input_ids"], batch["attention_mask"], batch["task"]).float(), batch["y"]
    )


def _evaluator(sets: list[_Set], tok):
    """evaluate(model) -> {"mcc/<name>": validation MCC per dataset (windows averaged per sequence), "mean_mcc"}."""

    @torch.no_grad()
    def evaluate(m) -> dict:
        dev = model_device(m)  # the Trainer may have moved the model (Accelerate, CUDA)
        res = {}
        for t, s in enumerate(sets):
            logits = torch.zeros(len(s.valid_ids), s.labels.n_out)
            for idx in token_budget_batches([len(x) for x in s.valid_ids], 16384):
                x, mask = collate([s.valid_ids[i] for i in idx], tok.pad_id)  # (B, L) each
                logits[torch.as_tensor(idx)] = m(x.to(dev), mask.to(dev), t).float().cpu()
            agg = aggregate_windows(logits, s.valid_parent, s.n_valid_seqs, "mean")
            mt = compute_metrics(s.labels.task, s.valid_y, logits_to_scores(agg, s.labels), s.labels.names)
            res[f"mcc/{s.name}"] = float(mt.get("mcc") or 0.0)
        res["mean_mcc"] = float(np.mean([res[f"mcc/{s.name}"] for s in sets]))
        return res

    return evaluate


def peak_lr(cfg: MultitaskConfig, model: MultitaskNet) -> float:
    """--lr, else 2e-3 for a from-scratch net and, for a --base encoder, finetune's default for the full
    strategy at its hidden size (1e-4 × 768 / hidden, capped at 1e-3)."""
    if cfg.lr is not None:
        return cfg.lr
    if not model.hf:
        return 2e-3
    return FinetuneConfig(strategy="full").default_lr(model.encoder.config.hidden_size)


def _train_config(cfg: MultitaskConfig, steps_per_epoch: int, lr: float) -> TrainConfig:
    """`epochs` over the summed training sets; evaluation and checkpoints every epoch or 200 steps."""
    eval_every = min(steps_per_epoch, 200)
    return TrainConfig(
        max_steps=cfg.epochs * steps_per_epoch,
        lr=lr,
        seed=cfg.seed,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        log_every=max(1, eval_every // 4),
        patience=None,
        time_budget_s=cfg.time_budget_min * 60 if cfg.time_budget_min else None,
        select_metric="mean_mcc",
        greater_is_better=True,
    )


def _write_run_files(
    out: Path,
    cfg: MultitaskConfig,
    sets: list[_Set],
    tok,
    alphabet: str,
    final: dict,
    exclusion: dict,
    result,
    command,
    t0: float,
    arch: str,
) -> dict:
    """genoml.json (kind "multitask"), metrics.json and history.json -> the metrics."""
    tasks = [
        {
            "name": s.name,
            "source": s.source,
            "labels": s.labels.to_dict(),
            "n_train_windows": len(s.train_ids),
            "n_valid": s.n_valid_seqs,
            "valid_mcc": final[f"mcc/{s.name}"],
        }
        for s in sets
    ]
    RunMeta(
        kind="multitask",
        arch=arch,
        alphabet=alphabet,
        tokenizer=getattr(tok, "spec", None),
        config=dataclasses.asdict(cfg),
        command=command,
        extra={"tasks": tasks, "exclusion": exclusion},
    ).write(out)
    metrics = {
        "valid": final,
        "tasks": tasks,
        "exclusion": exclusion,
        "steps": result.steps,
        "stopped": result.stopped_reason,
        "train_seconds": round(time.time() - t0, 1),
    }
    write_json(out / "metrics.json", metrics)
    write_json(out / "history.json", result.history)
    return metrics
