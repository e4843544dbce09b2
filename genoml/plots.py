"""Plots of a run as PNG files: ROC/PR curves, confusion matrix, calibration, training curves, regression.

Each `plot_*` takes arrays (y_true (N,), scores (N, C) or values (N,)) or the Trainer's history and a PNG path,
draws on a standalone Agg figure (no pyplot, no global backend change) and returns the path written.
`curve_rows` turns the Trainer's history into per-step train_loss / valid_<metric> rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from genoml.metrics import regression_metrics


def _number(value: Any) -> str:
    """A metric in a plot title: 4 decimals, n/a when missing or not finite."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{float(value):.4f}"


def _figure(ncols: int = 1, size: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)  # private Agg canvas: pyplot's state and backend are never touched
    return fig, fig.subplots(1, ncols)


def _save(fig: Figure, out_png: str | Path) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    fig.clear()
    return out


def _binary_columns(
    y_true: Any, probs: Any, labels: Sequence[str]
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, 0/1 truth (N,), score (N,)) per curve: positive class, one-vs-rest classes, or labels."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)  # (N, 2)
    if y.ndim == 2:  # multilabel (N, C)
        return [(str(labels[k]), y[:, k].astype(int), p[:, k]) for k in range(p.shape[1])]
    if p.shape[1] == 2:
        return [(str(labels[1]), (y == 1).astype(int), p[:, 1])]
    return [(str(labels[k]), (y == k).astype(int), p[:, k]) for k in range(p.shape[1])]


def plot_roc_pr(y_true: Any, probs: Any, labels: Sequence[str], out_png: str | Path) -> Path:
    """ROC (left) and precision-recall (right): positive class, one-vs-rest per class, or per label."""
    fig, (roc_ax, pr_ax) = _figure(2, (10.0, 4.2))
    drawn = 0
    for name, truth, score in _binary_columns(y_true, probs, labels):
        if not 0 < truth.sum() < len(truth):
            continue  # curve undefined without both positives and negatives
        fpr, tpr, _ = roc_curve(truth, score)
        precision, recall, _ = precision_recall_curve(truth, score)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        pr_ax.step(recall, precision, where="post", label=f"{name} (prevalence {truth.mean():.2f})")
        drawn += 1
    roc_ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    roc_ax.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02)
    )
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    if 0 < drawn <= 15:  # beyond 15 classes a legend hides the curves
        roc_ax.legend(fontsize="small", loc="lower right")
        pr_ax.legend(fontsize="small", loc="lower left")
    elif not drawn:
        for ax in (roc_ax, pr_ax):
            ax.text(0.5, 0.5, "undefined: needs positives and negatives", ha="center", va="center")
    return _save(fig, out_png)


def plot_confusion(cm: Any, labels: Sequence[str], out_png: str | Path) -> Path:
    """Confusion matrix (rows = true class), coloured by row fraction, annotated with counts."""
    cm = np.asarray(cm, dtype=np.int64)
    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)  # (C, C)
    side = 2.5 + 0.6 * n
    fig, ax = _figure(1, (side + 1.0, side))
    image = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            colour = "white" if frac[i, j] > 0.5 else "black"
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.0%}", ha="center", va="center", color=colour, fontsize=8)
    names = [str(lab)[:14] for lab in labels]
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    fig.colorbar(image, ax=ax, label="fraction of true class")
    return _save(fig, out_png)


def plot_calibration(y_true: Any, probs: Any, out_png: str | Path) -> Path:
    """Reliability diagram, 10 equal-width bins: positive class (binary) or top-label confidence."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if p.ndim == 1 or p.shape[1] == 2:
        confidence = p if p.ndim == 1 else p[:, 1]
        hit, what = (y == 1).astype(float), "fraction positive"
    else:
        confidence, hit, what = p.max(axis=1), (p.argmax(axis=1) == y).astype(float), "accuracy (top label)"
    bins = np.clip((confidence * 10).astype(int), 0, 9)  # 10 bins on [0, 1]
    counts = np.bincount(bins, minlength=10)
    used = counts > 0
    mean_conf = np.bincount(bins, confidence, 10)[used] / counts[used]
    mean_hit = np.bincount(bins, hit, 10)[used] / counts[used]
    ece = float(np.sum(counts[used] * np.abs(mean_hit - mean_conf)) / len(y))
    fig, (ax, hist_ax) = _figure(2, (9.0, 4.0))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    ax.plot(mean_conf, mean_hit, marker="o", label="model")
    ax.set(
        xlabel="predicted probability",
        ylabel=what,
        title=f"Reliability (ECE {ece:.3f})",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(fontsize="small", loc="upper left")
    hist_ax.bar(np.arange(10) / 10 + 0.05, counts, width=0.1, edgecolor="white")
    hist_ax.set(xlabel="predicted probability", ylabel="sequences", title="Predictions per bin", xlim=(0, 1))
    hist_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, out_png)


def _series(history: list[dict], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for i, row in enumerate(history):
        if row.get(key) is not None:
            xs.append(row.get("epoch", i + 1))
            ys.append(float(row[key]))
    return xs, ys


CURVE_METRICS = (
    "mcc",
    "auroc",
    "auprc",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "spearman",
    "pearson",
    "r2",
    "loss",
    "perplexity",
    "masked_acc",
)


def curve_rows(history: list[dict]) -> tuple[list[dict], str]:
    """The Trainer's history (``{"event": "train"|"eval", "step", "loss", <metrics>}``) as rows with
    ``train_loss`` / ``valid_<metric>`` keys; rows already in that form (with ``epoch``) pass through.
    Returns (rows, x-axis name)."""
    if not any("event" in row for row in history):
        return history, "epoch"
    rows = []
    for row in history:
        step = row.get("step")
        if row.get("event") == "train" and row.get("loss") is not None:
            rows.append({"epoch": step, "train_loss": row["loss"]})
        elif row.get("event") == "eval":
            values = {
                f"valid_{k}": row[k]
                for k in CURVE_METRICS
                if isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
            }
            if values:
                rows.append({"epoch": step, **values})
    return rows, "step"


def plot_curves(history: list[dict], out_png: str | Path) -> Path:
    """Training/validation loss (left) and every other ``valid_*`` metric (right) per epoch (or step)."""
    history, xlabel = curve_rows(history)
    fig, (loss_ax, metric_ax) = _figure(2, (10.0, 4.0))
    for key in ("train_loss", "valid_loss"):
        xs, ys = _series(history, key)
        if xs:
            loss_ax.plot(xs, ys, marker="o", label=key.replace("_", " "))
    metric_keys = sorted({k for row in history for k in row if k.startswith("valid_") and k != "valid_loss"})
    for key in metric_keys:
        xs, ys = _series(history, key)
        if xs:
            metric_ax.plot(xs, ys, marker="o", label=key.removeprefix("valid_"))
    loss_ax.set(xlabel=xlabel, ylabel="loss", title="Loss")
    metric_ax.set(xlabel=xlabel, ylabel="value", title="Validation metrics")
    for ax in (loss_ax, metric_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no values recorded", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out_png)


def plot_regression(y_true: Any, y_pred: Any, out_png: str | Path) -> Path:
    """Predicted vs true values with the identity line; hexbin density above 5,000 points."""
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    f = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    m = regression_metrics(y, f)
    fig, ax = _figure(1, (5.0, 4.5))
    if len(y) > 5000:
        fig.colorbar(ax.hexbin(y, f, gridsize=60, bins="log", cmap="viridis"), ax=ax, label="sequences")
    else:
        ax.scatter(y, f, s=8, alpha=0.5, edgecolors="none")
    low, high = float(min(y.min(), f.min())), float(max(y.max(), f.max()))
    ax.plot([low, high], [low, high], ls="--", color="grey", lw=0.8)
    title = f"Pearson {_number(m['pearson'])}, Spearman {_number(m['spearman'])}, n={m['n']}"
    ax.set(xlabel="true", ylabel="predicted", title=title)
    return _save(fig, out_png)
