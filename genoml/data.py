"""Labels, windows and batches: from `Record`s to padded id tensors.

`LabelSpace` infers the task from raw labels and encodes them; `make_windows` cuts sequences
longer than the model into token windows (each window keeps its parent record index);
`collate` pads to `(B, L)` ids + mask; `bucketed_batches` groups similar lengths.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genoml.errors import InputError
from genoml.splits import small_split

MAX_CLASSES = 1000


def _is_float(s: str) -> bool:
    try:
        return math.isfinite(float(s))
    except ValueError:
        return False


def _sort_names(names: set[str]) -> list[str]:
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)


@dataclass
class LabelSpace:
    """Task + label names (+ regression scaling). `n_out` is the width of the head."""

    task: str
    names: list[str] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0

    @property
    def n_out(self) -> int:
        return 1 if self.task == "regression" else len(self.names)

    @classmethod
    def infer(
        cls, labels: Sequence[str | None], task: str = "auto", standardize: bool = True, where: str = "labels"
    ):
        """Infer the task from the raw labels (override with task != 'auto')."""
        missing = [i for i, lab in enumerate(labels) if lab is None or lab == ""]
        if missing:
            raise InputError(
                f"{where}: {len(missing)} record(s) have no label (first at record {missing[0] + 1}); "
                "give every training record a label"
            )
        if task == "auto":
            if any(";" in lab for lab in labels):
                task = "multilabel"
            elif all(_is_float(lab) for lab in labels) and (
                not all(lab.lstrip("-").isdigit() for lab in labels) or len(set(labels)) > 20
            ):
                task = "regression"
            else:
                task = "binary" if len(set(labels)) == 2 else "multiclass"
        if task == "regression":
            bad = next((lab for lab in labels if not _is_float(lab)), None)
            if bad is not None:
                raise InputError(f"{where}: label '{bad}' is not a number, but the task is regression")
            y = np.array([float(lab) for lab in labels])
            mean, std = (float(y.mean()), float(y.std() or 1.0)) if standardize else (0.0, 1.0)
            return cls("regression", ["value"], mean, std)
        if task == "multilabel":
            names = _sort_names({p.strip() for lab in labels for p in lab.split(";") if p.strip()})
        else:
            names = _sort_names(set(labels))
        if len(names) < 2:
            raise InputError(
                f"{where}: only one class ('{names[0] if names else ''}') in the training labels; "
                "a classifier needs at least two classes"
            )
        if len(names) > MAX_CLASSES:
            raise InputError(
                f"{where}: {len(names)} distinct labels; is the label column numeric? use --task regression"
            )
        if task == "binary" and len(names) != 2:
            raise InputError(f"--task binary: found {len(names)} classes ({', '.join(names[:5])}...)")
        return cls(task, names)

    def decode(self, values):
        """Model-scale targets or predictions -> the user's scale: de-standardised values for regression
        (numpy array or tensor, any shape), unchanged for classification."""
        return values * self.std + self.mean if self.task == "regression" else values

    def encode(self, labels: Sequence[str], where: str = "labels") -> torch.Tensor:
        """Raw labels -> targets: class ids (N,), multi-hot (N, C) or standardized values (N,)."""
        if self.task == "regression":
            out = []
            for lab in labels:
                if not _is_float(lab):
                    raise InputError(f"{where}: label '{lab}' is not a number, but the task is regression")
                out.append((float(lab) - self.mean) / self.std)
            return torch.tensor(out, dtype=torch.float32)
        index = {n: i for i, n in enumerate(self.names)}
        if self.task == "multilabel":
            y = torch.zeros(len(labels), len(self.names))
            for r, lab in enumerate(labels):
                for part in filter(None, (p.strip() for p in lab.split(";"))):
                    if part not in index:
                        raise InputError(
                            f"{where}: label '{part}' was not seen in training ({', '.join(self.names)})"
                        )
                    y[r, index[part]] = 1.0
            return y
        unknown = next((lab for lab in labels if lab not in index), None)
        if unknown is not None:
            raise InputError(
                f"{where}: label '{unknown}' was not seen in the training data (known: {', '.join(self.names)})"
            )
        return torch.tensor([index[lab] for lab in labels], dtype=torch.long)

    def to_dict(self) -> dict:
        return {"task": self.task, "names": self.names, "mean": self.mean, "std": self.std}


@dataclass
class Windows:
    """Tokenized windows of a list of sequences. ids[i] is a list of token ids of window i."""

    ids: list[list[int]]
    parent: np.ndarray  # (W,) index of the source sequence
    n_seqs: int
    truncated: np.ndarray  # (n_seqs,) bool: the sequence needed more than one window


def window_starts(length: int, width: int, stride: int) -> list[int]:
    """Start offsets covering [0, length) with windows of `width` bases every `stride` bases."""
    if length <= width:
        return [0]
    starts = list(range(0, length - width + 1, stride))
    if starts[-1] + width < length:
        starts.append(length - width)
    return starts


def make_windows(seqs: Sequence[str], tokenizer, max_tokens: int, stride: int | None = None) -> Windows:
    """Tokenize sequences, cutting those longer than `max_tokens` tokens into overlapping windows."""
    width = tokenizer.max_bases(max_tokens)
    stride = stride or max(1, width // 2)
    ids, parent = [], []
    truncated = np.zeros(len(seqs), dtype=bool)
    for i, seq in enumerate(seqs):
        starts = window_starts(len(seq), width, stride)
        truncated[i] = len(starts) > 1
        for s in starts:
            ids.append(tokenizer.encode(seq[s : s + width], max_tokens=max_tokens).ids)
            parent.append(i)
    return Windows(ids, np.asarray(parent, dtype=np.int64), len(seqs), truncated)


def collate(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest: -> input_ids (B, L), attention_mask (B, L)."""
    width = max(len(x) for x in ids)
    out = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for r, x in enumerate(ids):
        out[r, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[r, : len(x)] = 1
    return out, mask


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort by length inside chunks of 50 batches, split, shuffle the batch order."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    lengths = np.asarray(lengths)
    batches = []
    for c in range(0, len(order), chunk):
        part = order[c : c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def aggregate_windows(logits: torch.Tensor, parent: np.ndarray, n: int, how: str = "mean") -> torch.Tensor:
    """Window logits (W, C) -> sequence logits (n, C) by mean or max over each parent's windows."""
    idx = torch.as_tensor(parent, dtype=torch.long)
    out = torch.zeros(n, logits.shape[1], dtype=logits.dtype)
    if how == "max":
        out.fill_(-torch.inf)
        return out.scatter_reduce(0, idx.unsqueeze(1).expand_as(logits), logits, reduce="amax")
    out.index_add_(0, idx, logits)
    counts = torch.bincount(idx, minlength=n).clamp(min=1).unsqueeze(1).to(logits.dtype)
    return out / counts


def stratified_split(
    labels: Sequence[str], fractions: tuple[float, float], seed: int
) -> tuple[list, list, list]:
    """Seeded stratified split of indices into (train, valid, test); falls back to random for regression."""

    try:
        return _sklearn_split(labels, fractions, seed)
    except ValueError:  # too few records (per class) for scikit-learn: a per-class split that never fails
        return small_split([str(lab) for lab in labels], fractions, seed)


def _sklearn_split(
    labels: Sequence[str], fractions: tuple[float, float], seed: int
) -> tuple[list, list, list]:
    from sklearn.model_selection import train_test_split  # heavy: scikit-learn loads in seconds

    idx = np.arange(len(labels))
    valid_f, test_f = fractions
    strat = list(labels) if len(set(labels)) <= MAX_CLASSES and min(_counts(labels)) >= 3 else None
    rest, test = (
        (idx, idx[:0])
        if test_f == 0
        else train_test_split(idx, test_size=test_f, random_state=seed, stratify=strat)
    )
    if valid_f == 0:
        return sorted(rest), [], sorted(test)
    strat_rest = [labels[i] for i in rest] if strat else None
    train, valid = train_test_split(
        rest, test_size=valid_f / (1 - test_f), random_state=seed, stratify=strat_rest
    )
    return sorted(train), sorted(valid), sorted(test)


def _counts(labels: Sequence[str]) -> list[int]:
    return list(Counter(labels).values())


def token_budget_batches(lengths: Sequence[int], batch_tokens: int, max_batch: int = 512) -> list[np.ndarray]:
    """Length-sorted batches whose padded size (B * max L) stays within `batch_tokens` (ESM-style)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, start = [], 0
    for end in range(1, len(order) + 1):
        longest = lengths[order[end - 1]]
        if end - start > 1 and ((end - start) * longest > batch_tokens or end - start > max_batch):
            batches.append(order[start : end - 1])
            start = end - 1
    if start < len(order):
        batches.append(order[start:])
    return batches
