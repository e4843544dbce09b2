"""Evaluation metrics as pure functions returning JSON-ready dicts (plain floats/ints/lists, None for undefined).

Classification takes labels ``y_true (N,)`` as class indices and ``probs (N, C)``; multilabel takes
``y_true (N, C)`` 0/1 and independent per-label ``probs (N, C)``; regression takes ``(N,)`` values.
Uncertainty comes from percentile bootstrap over rows (``bootstrap_ci``, ``paired_bootstrap``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from genoml.alphabet import reverse_complement
from genoml.errors import GenomlError

log = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "multilabel", "regression")
_HEADLINES = {
    "binary": "mcc",
    "multiclass": "mcc",
    "classification": "mcc",
    "multilabel": "mcc",
    "regression": "spearman",
}


# ----------------------------------------------------------------------------- small helpers


def to_plain(value: Any) -> Any:
    """Recursively turn numpy scalars/arrays into Python types and NaN/inf into None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_plain(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _is_missing(value: float | None) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and not math.isfinite(value))


def _check_rows(name: str, *arrays: np.ndarray) -> int:
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise GenomlError(
            f"{name}: arrays have different numbers of rows {lengths}; pass one row per sequence"
        )
    if lengths[0] == 0:
        raise GenomlError(f"{name}: no rows to score; the split is empty, give at least one sequence")
    return lengths[0]


def _class_indices(y_true: Any, n_classes: int, name: str) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise GenomlError(f"{name}: y_true must be 1-D class indices, got shape {y.shape}")
    if y.dtype.kind == "f" and np.all(np.mod(y, 1) == 0):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub":
        raise GenomlError(f"{name}: y_true must hold integer class indices, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise GenomlError(
            f"{name}: class index out of range [0, {n_classes}) (min {y.min()}, max {y.max()}); "
            "map labels to indices of the labels list"
        )
    return y.astype(np.int64)


def _class_probs(probs: Any, labels: Sequence[str], name: str) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1 and len(labels) == 2:  # positive-class probability only
        p = np.stack([1.0 - p, p], axis=1)  # (N, 2)
    if p.ndim != 2 or p.shape[1] != len(labels) or len(labels) < 2:
        raise GenomlError(
            f"{name}: probs must be (N, C) with C = len(labels) = {len(labels)} >= 2, got shape {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise GenomlError(f"{name}: probs contain NaN or inf; check the model outputs")
    return p


def predict_classes(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class indices from ``probs (N, C)``: binary uses ``probs[:, 1] >= threshold``, else argmax."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(np.int64)
    return probs.argmax(axis=1).astype(np.int64)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion matrix ``(C, C)`` with rows = true class, columns = predicted class."""
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def mcc_from_confusion(cm: np.ndarray) -> float:
    """Matthews correlation (Gorodkin's multiclass form) from a confusion matrix; 0.0 when undefined."""
    cm = np.asarray(cm, dtype=np.float64)
    s, c = cm.sum(), np.trace(cm)
    t, p = cm.sum(axis=1), cm.sum(axis=0)  # true counts, predicted counts
    denom = math.sqrt((s * s - float(p @ p)) * (s * s - float(t @ t)))
    return 0.0 if denom == 0 else float((c * s - float(t @ p)) / denom)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float("nan") if denom == 0 else float(a @ b) / denom


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return _pearson(rankdata(a), rankdata(b))


def _per_class_score(score: Callable, y_onehot: np.ndarray, probs: np.ndarray) -> list[float | None]:
    """Score each column one-vs-rest; None where the column has no positives or no negatives."""
    out: list[float | None] = []
    for k in range(y_onehot.shape[1]):
        positives = int(y_onehot[:, k].sum())
        defined = 0 < positives < len(y_onehot)
        out.append(float(score(y_onehot[:, k], probs[:, k])) if defined else None)
    return out


def _macro(values: Iterable[float | None]) -> float | None:
    """Mean of the defined values; None when none is defined."""
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


# ----------------------------------------------------------------------------- point metrics


def classification_metrics(
    y_true: Any, probs: Any, labels: Sequence[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Binary/multiclass metrics from class indices ``(N,)`` and probabilities ``(N, C)``.

    Binary predictions are ``probs[:, 1] >= threshold``; multiclass uses argmax. AUROC/AUPRC are on the
    positive class (binary) or one-vs-rest macro over classes with both positives and negatives
    (multiclass); None where no class is scorable. Brier is the multiclass form,
    ``mean_i sum_c (p_ic - y_ic)^2`` in [0, 2] (twice the usual binary Brier).
    """
    labels = list(labels)
    p = _class_probs(probs, labels, "classification_metrics")
    y = _class_indices(y_true, len(labels), "classification_metrics")
    n = _check_rows("classification_metrics", y, p)
    n_classes = len(labels)
    pred = predict_classes(p, threshold)
    cm = confusion(y, pred, n_classes)
    onehot = np.eye(n_classes)[y]  # (N, C)
    auroc = _per_class_score(roc_auc_score, onehot, p)
    auprc = _per_class_score(average_precision_score, onehot, p)
    support = cm.sum(axis=1)
    recall = np.divide(np.diag(cm), support, out=np.zeros(n_classes), where=support > 0)
    average = dict(labels=list(range(n_classes)), average="macro", zero_division=0)
    out = {
        "n": n,
        "labels": labels,
        "accuracy": float(np.trace(cm)) / n,
        "balanced_accuracy": float(recall[support > 0].mean()),
        "mcc": mcc_from_confusion(cm),
        "f1_macro": f1_score(y, pred, **average),
        "precision_macro": precision_score(y, pred, **average),
        "recall_macro": recall_score(y, pred, **average),
        "auroc": auroc[1] if n_classes == 2 else _macro(auroc),
        "auprc": auprc[1] if n_classes == 2 else _macro(auprc),
        "brier": float(np.mean(np.sum((p - onehot) ** 2, axis=1))),
        "confusion_matrix": cm,
        "support": support,
    }
    if n_classes > 2:
        out["auroc_per_class"], out["auprc_per_class"] = auroc, auprc
    if n_classes == 2:
        out["threshold"] = float(threshold)
    return to_plain(out)


def multilabel_metrics(
    y_true: Any, probs: Any, labels: Sequence[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Multilabel metrics from 0/1 targets ``(N, C)`` and independent label probabilities ``(N, C)``.

    MCC is micro (over all flattened label decisions); AUROC/AUPRC are macro over labels that have both
    positives and negatives (None when none has).
    """
    labels = list(labels)
    y = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 2 or p.shape != y.shape or y.shape[1] != len(labels):
        raise GenomlError(
            f"multilabel_metrics: y_true and probs must both be (N, C={len(labels)}), got {y.shape} and {p.shape}"
        )
    if not np.isin(y, (0, 1)).all():
        raise GenomlError("multilabel_metrics: y_true must be 0/1 indicators per label")
    n = _check_rows("multilabel_metrics", y, p)
    y = y.astype(np.int64)
    pred = (p >= threshold).astype(np.int64)
    auroc = _per_class_score(roc_auc_score, y, p)
    auprc = _per_class_score(average_precision_score, y, p)
    out = {
        "n": n,
        "labels": labels,
        "mcc": mcc_from_confusion(confusion(y.ravel(), pred.ravel(), 2)),
        "f1_micro": f1_score(y, pred, average="micro", zero_division=0),
        "f1_macro": f1_score(y, pred, average="macro", zero_division=0),
        "auroc": _macro(auroc),
        "auprc": _macro(auprc),
        "auroc_per_label": auroc,
        "subset_accuracy": float(np.mean(np.all(y == pred, axis=1))),
        "hamming_loss": float(np.mean(y != pred)),
        "support": y.sum(axis=0),
        "threshold": float(threshold),
    }
    return to_plain(out)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Pearson, Spearman, R², MSE, MAE for ``(N,)`` targets and predictions; correlations None if constant."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    f = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    n = _check_rows("regression_metrics", y, f)
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(f))):
        raise GenomlError("regression_metrics: targets or predictions contain NaN or inf")
    residual = y - f
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    out = {
        "n": n,
        "pearson": _pearson(y, f),
        "spearman": _spearman(y, f),
        "r2": float("nan") if ss_tot == 0 else 1.0 - float(residual @ residual) / ss_tot,
        "mse": float(np.mean(residual**2)),
        "mae": float(np.mean(np.abs(residual))),
    }
    return to_plain(out)


def headline_metric(task: str) -> str:
    """The one metric a run is judged by: "mcc" for classification/multilabel, "spearman" for regression."""
    if task not in _HEADLINES:
        raise GenomlError(f"headline_metric: unknown task {task!r}; allowed: {', '.join(TASKS)}")
    return _HEADLINES[task]


def headline_fn(task: str, threshold: float = 0.5) -> Callable[[np.ndarray, np.ndarray], float]:
    """A fast ``fn(y_true, outputs) -> float`` for the headline metric; NaN when the rows are degenerate.

    Degenerate means a single true class (classification), a single flattened value (multilabel) or
    constant targets/predictions (regression) — such bootstrap resamples are skipped.
    """
    headline_metric(task)  # validates task
    if task == "regression":
        return lambda y, f: _spearman(np.ravel(y).astype(float), np.ravel(f).astype(float))
    if task == "multilabel":

        def multilabel_mcc(y: np.ndarray, p: np.ndarray) -> float:
            y = np.ravel(y).astype(np.int64)
            if np.unique(y).size < 2:
                return float("nan")
            return mcc_from_confusion(confusion(y, (np.ravel(p) >= threshold).astype(np.int64), 2))

        return multilabel_mcc

    def class_mcc(y: np.ndarray, p: np.ndarray) -> float:
        if np.unique(y).size < 2:
            return float("nan")
        return mcc_from_confusion(
            confusion(np.asarray(y, np.int64), predict_classes(p, threshold), p.shape[1])
        )

    return class_mcc


# ----------------------------------------------------------------------------- uncertainty


def _resampled(metric_fn: Callable, arrays: list[np.ndarray], n: int, seed: int) -> list[float]:
    """Metric on ``n`` row resamples (with replacement, same rows for every array); NaN ones dropped."""
    rows = _check_rows("bootstrap", *arrays)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        idx = rng.integers(0, rows, rows)
        value = metric_fn(*(a[idx] for a in arrays))
        if not _is_missing(value):
            values.append(float(value))
    if len(values) < n:
        log.info("bootstrap: skipped %d of %d degenerate resamples", n - len(values), n)
    return values


def bootstrap_ci(
    metric_fn: Callable[..., float], *arrays: Any, n: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` interval of ``metric_fn(*arrays)``; (nan, nan) if all degenerate."""
    if not 0 < alpha < 1 or n < 1:
        raise GenomlError(f"bootstrap_ci: need n >= 1 and 0 < alpha < 1, got n={n}, alpha={alpha}")
    values = _resampled(metric_fn, [np.asarray(a) for a in arrays], n, seed)
    if not values:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_bootstrap(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true: Any,
    probs_a: Any,
    probs_b: Any,
    n: int = 1000,
    seed: int = 0,
) -> dict[str, float | None]:
    """Difference ``metric(a) - metric(b)`` on the same rows, with a 95% percentile CI and a two-sided p-value.

    Both models are scored on the same resampled rows, so shared noise cancels. The p-value is
    ``2 * min(P(delta* <= 0), P(delta* >= 0))`` over resamples (with +1 smoothing), capped at 1.
    """
    y, a, b = np.asarray(y_true), np.asarray(probs_a), np.asarray(probs_b)
    delta = metric_fn(y, a) - metric_fn(y, b)

    def diff(ys: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> float:
        return metric_fn(ys, pa) - metric_fn(ys, pb)

    deltas = np.asarray(_resampled(diff, [y, a, b], n, seed))
    if _is_missing(delta) or deltas.size == 0:
        return {"delta": to_plain(delta), "ci_low": None, "ci_high": None, "p_value": None}
    low, high = np.quantile(deltas, [0.025, 0.975])
    tail = min(np.sum(deltas <= 0), np.sum(deltas >= 0))
    p_value = min(1.0, 2.0 * (tail + 1) / (deltas.size + 1))
    return to_plain({"delta": delta, "ci_low": low, "ci_high": high, "p_value": p_value})


# ----------------------------------------------------------------------------- leakage


def duplicate_overlap(train_seqs: Iterable[str], other_seqs: Iterable[str], dna: bool) -> dict[str, int]:
    """Count ``other_seqs`` found in train: ``exact`` matches, and (DNA) ``revcomp`` = only the reverse
    complement is in train. The two counts are disjoint; each occurrence in ``other_seqs`` counts."""
    train = {s.upper() for s in train_seqs}
    exact = revcomp = 0
    for seq in other_seqs:
        seq = seq.upper()
        if seq in train:
            exact += 1
        elif dna and reverse_complement(seq) in train:
            revcomp += 1
    return {"exact": exact, "revcomp": revcomp}


# ----------------------------------------------------------------------------- dispatcher


def compute_metrics(
    task: str,
    y_true: Any,
    outputs: Any,
    labels: Sequence[str] | None,
    threshold: float = 0.5,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics for ``task`` plus ``"headline"`` (its name) and ``"<headline>_ci95"`` ([low, high]).

    ``outputs`` is ``probs (N, C)`` for binary/multiclass/multilabel and predictions ``(N,)`` for regression.
    """
    if task in ("binary", "multiclass", "classification"):
        out = classification_metrics(y_true, outputs, labels or [], threshold)
    elif task == "multilabel":
        out = multilabel_metrics(y_true, outputs, labels or [], threshold)
    elif task == "regression":
        out = regression_metrics(y_true, outputs)
    else:
        raise GenomlError(f"compute_metrics: unknown task {task!r}; allowed: {', '.join(TASKS)}")
    name = headline_metric(task)
    y = np.asarray(y_true)
    f = np.asarray(outputs, dtype=np.float64)
    if task in ("binary", "multiclass", "classification") and f.ndim == 1:
        f = np.stack([1.0 - f, f], axis=1)  # (N, 2)
    if task in ("binary", "multiclass", "classification") and len(y) and len(np.unique(y)) < 2:
        # one class only: MCC, AUROC and their CIs are undefined, not 0.0; no headline number
        present = int(np.unique(y)[0])
        name_of = labels[present] if labels and present < len(labels) else str(present)
        out.update(
            task=task,
            headline=name,
            **{name: None, f"{name}_ci95": [None, None]},
            undefined=f"one class: every sequence of this split is '{name_of}'",
        )
        for key in ("auroc", "auprc"):
            if key in out:
                out[key] = None
        return out
    low, high = bootstrap_ci(headline_fn(task, threshold), y, f, n=n_boot, seed=seed)
    out.update(task=task, headline=name, **{f"{name}_ci95": to_plain([low, high])})
    return out
