"""Human-readable outputs of a run directory: plots (PNG), ``report.md`` and a ``README.md`` model card.

Plots are drawn on standalone Agg figures (no pyplot, no global backend change) and written under
``run_dir/plots/``; the report references them relatively. ``metrics`` maps split name -> the dict of
``genoml.metrics.compute_metrics``; duplicate counts ``{"exact", "revcomp"}`` come from a top-level
``"leakage"`` key (split -> counts) or from each split's ``"duplicates_with_train"``.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from genoml.config import BASELINE_NETS
from genoml.metrics import confusion, predict_classes, regression_metrics

log = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "valid", "test")
LEAKAGE_KEY = "leakage"  # metrics["leakage"] = {split: {"exact": int, "revcomp": int}}
DUPLICATES_KEY = "duplicates_with_train"  # or metrics[split]["duplicates_with_train"] = {"exact", "revcomp"}
_COLUMNS = {  # metrics shown per split after the headline, by task
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "auprc", "brier", "n"),
    "multilabel": ("f1_micro", "f1_macro", "auroc", "auprc", "subset_accuracy", "hamming_loss", "n"),
    "regression": ("pearson", "r2", "mse", "mae", "n"),
}
_BASELINE_ARCHS = (*BASELINE_NETS, "kmer-linear", "kmer_linear", "majority")


# ----------------------------------------------------------------------------- plots


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
    title = f"Pearson {_fmt(m['pearson'])}, Spearman {_fmt(m['spearman'])}, n={m['n']}"
    ax.set(xlabel="true", ylabel="predicted", title=title)
    return _save(fig, out_png)


# ----------------------------------------------------------------------------- markdown helpers


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)


def _cell(value: Any, limit: int = 120) -> str:
    if isinstance(value, (list, tuple)):
        value = ", ".join(
            _fmt(v) if not isinstance(v, (list, tuple)) else "/".join(map(str, v)) for v in value
        )
    text = _fmt(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _flatten(settings: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in settings.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def _splits(metrics: dict) -> dict[str, dict]:
    """Split name -> metrics dict, ordered train/valid/test first; a flat dict is one split named "data"."""
    if "n" in metrics:
        return {"data": metrics}
    splits = {
        k: v for k, v in metrics.items() if isinstance(v, dict) and "n" in v
    }  # skips leakage, baselines
    order = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    return {s: splits[s] for s in order}


def _reference_split(names: Iterable[str]) -> str | None:
    names = list(names)
    for name in ("test", "valid"):
        if name in names:
            return name
    return names[-1] if names else None


def _task_kind(m: dict) -> str:
    task = m.get("task") or ("regression" if m.get("headline") == "spearman" else "classification")
    return task if task in ("multilabel", "regression") else "classification"


def _headline_cell(m: dict) -> str:
    name = m.get("headline", "mcc")
    if m.get("undefined"):
        return f"undefined: {m['undefined']}"
    ci = m.get(f"{name}_ci95") or [None, None]
    if ci[0] is None:
        return _fmt(m.get(name))
    return f"{_fmt(m.get(name))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"


# ----------------------------------------------------------------------------- report sections


def _summary(splits: dict[str, dict]) -> str:
    ref = _reference_split(splits)
    if ref is None:
        return "No metrics were recorded."
    m = splits[ref]
    name = m.get("headline", "mcc")
    if m.get("undefined"):
        return (
            f"**No headline:** the {ref} split has {m['undefined'].split(':')[0]} ({m['undefined']}, "
            f"n = {_fmt(m.get('n'))}), so {name.upper()}, AUROC and their CIs are undefined. **Warning:** "
            "this run cannot be judged on it; give a test set with both classes (--test) or more data."
        )
    return f"**Headline:** {ref} {name.upper()} = {_headline_cell(m)} (95% bootstrap CI, n = {_fmt(m.get('n'))})."


def _settings_section(settings: dict) -> str:
    if not settings:
        return "## Settings\n\nNo settings were recorded."
    rows = [(key, str(value) if isinstance(value, float) else value) for key, value in _flatten(settings)]
    return "## Settings\n\n" + _table(["setting", "value"], rows)  # floats as given: 2e-05, not 0.0000


def _metrics_table(splits: dict[str, dict]) -> str:
    if not splits:
        return "No metrics were recorded."
    first = next(iter(splits.values()))
    name = first.get("headline", "mcc")
    columns = [c for c in _COLUMNS[_task_kind(first)] if any(c in m for m in splits.values())]
    rows = [[split, _headline_cell(m)] + [m.get(c) for c in columns] for split, m in splits.items()]
    table = _table(["split", f"{name} [95% CI]"] + columns, rows)
    note = "CIs: percentile bootstrap over sequences; undefined values (a class absent) show as n/a."
    if "brier" in columns:
        note += " Brier is the multiclass form, summed over classes (0 best, 2 worst)."
    return f"{table}\n\n{note}"


def _paired_cell(paired: dict | None) -> str:
    if not paired or paired.get("delta") is None:
        return "n/a"
    low, high = paired.get("ci_low"), paired.get("ci_high")
    noise = low is not None and high is not None and low <= 0 <= high
    text = f"{paired['delta']:+.4f} [{_fmt(low)}, {_fmt(high)}], p={_fmt(paired.get('p_value'))}"
    return text + (" (within noise)" if noise else "")


def _baselines_section(splits: dict[str, dict], baselines: dict[str, dict] | None) -> str:
    ref = _reference_split(splits)
    named = {k: v for k, v in (baselines or {}).items() if isinstance(v, dict)}  # skips e.g. "split": "test"
    if not named or ref is None:
        return "## Baselines\n\nNo baselines were run."
    ref = str((baselines or {}).get("split", ref))
    model = splits.get(ref, {})
    name = model.get("headline", "mcc")
    second = "r2" if _task_kind(model) == "regression" else "auroc"
    rows = [["genoml model", _headline_cell(model), model.get(second), "—"]]
    for base_name, m in named.items():
        rows.append([base_name, _headline_cell(m), m.get(second), _paired_cell(m.get("vs_model"))])
    header = ["model", f"{name} [95% CI]", second, "model − baseline [95% CI], p"]
    intro = f"All rows are scored on the same {ref} sequences."
    return f"## Baselines\n\n{intro}\n\n" + _table(header, rows)


def _leakage(metrics: dict, splits: dict[str, dict]) -> dict[str, dict]:
    """Split -> duplicate counts: top-level ``"leakage"``, else each split's ``"duplicates_with_train"``."""
    if isinstance(metrics.get(LEAKAGE_KEY), dict):
        return metrics[LEAKAGE_KEY]
    return {s: m[DUPLICATES_KEY] for s, m in splits.items() if isinstance(m.get(DUPLICATES_KEY), dict)}


def _leakage_section(leakage: dict | None, splits: dict[str, dict]) -> str:
    if not leakage:
        return "## Leakage\n\nDuplicate sequences between train and the other splits were not checked."
    rows, total, near, overlap = [], 0, 0, 0
    for split, counts in leakage.items():
        n = splits.get(split, {}).get("n")
        dup = int(counts.get("exact", 0)) + int(counts.get("revcomp", 0))
        total += dup
        near += int(counts.get("near", 0) or 0)
        overlap += int(counts.get("overlap", 0) or 0)
        share = f"{dup / n:.2%}" if n else "n/a"
        rows.append(
            [
                split,
                counts.get("exact", 0),
                counts.get("revcomp", 0),
                counts.get("near", "n/a"),
                counts.get("overlap", "n/a"),
                n,
                share,
            ]
        )
    table = _table(
        [
            "split",
            "exact duplicates of train",
            "reverse-complement duplicates",
            "near-duplicates (k-mer Jaccard ≥ 0.5)",
            "intervals overlapping train",
            "n",
            "share (exact + rc)",
        ],
        rows,
    )
    warnings = []
    if total:
        warnings.append(
            f"**Warning: {total} sequences also occur in train**; metrics on those splits may be optimistic. "
            "Deduplicate the splits (including reverse complements for DNA) for an unbiased estimate."
        )
    if near:
        warnings.append(
            f"**Warning: {near} sequences are near-duplicates of training sequences**; re-split with "
            "`--split-by similarity` to keep similar sequences on one side."
        )
    if overlap:
        warnings.append(
            f"**Warning: {overlap} intervals overlap (or lie next to) training intervals**; re-split "
            "with `--split-by region` or `--split-by chrom`."
        )
    verdict = (
        "\n\n".join(warnings)
        or "No sequence of the evaluation splits occurs in train, nor a near-duplicate or overlapping interval."
    )
    return f"## Leakage\n\n{table}\n\n{verdict}"


def _plot_predictions(plots: Path, pred: dict, metrics: dict, threshold: float) -> list[tuple[str, Path]]:
    task = pred.get("task") or metrics.get("task") or "binary"
    y = np.asarray(pred["y_true"])
    outputs = np.asarray(pred.get("probs", pred.get("y_pred")), dtype=np.float64)
    labels = list(pred.get("labels") or metrics.get("labels") or [])
    if task == "regression":
        return [("Predicted vs true", plot_regression(y, outputs, plots / "regression.png"))]
    made = [("ROC and precision-recall", plot_roc_pr(y, outputs, labels, plots / "roc_pr.png"))]
    if task == "multilabel":
        return made
    if outputs.ndim == 1:
        outputs = np.stack([1.0 - outputs, outputs], axis=1)  # (N, 2)
    cm = metrics.get("confusion_matrix")
    if cm is None:
        cm = confusion(y.astype(np.int64), predict_classes(outputs, threshold), outputs.shape[1])
    made.append(("Confusion matrix", plot_confusion(cm, labels, plots / "confusion.png")))
    made.append(("Calibration", plot_calibration(y, outputs, plots / "calibration.png")))
    return made


def _plots_section(
    run_dir: Path, splits: dict, history: list[dict], predictions: dict | None, threshold: float
) -> str:
    plots = run_dir / "plots"
    made: list[tuple[str, Path]] = []
    split = _reference_split(predictions or {})
    if split is not None:
        made += _plot_predictions(plots, predictions[split], splits.get(split, {}), threshold)
    if history:
        made.append(("Training curves", plot_curves(history, plots / "curves.png")))
    if not made:
        return "## Plots\n\nNo predictions or training history were given, so nothing was drawn."
    lines = [f"Curves and matrices are drawn on the **{split}** split." if split else ""]
    for title, path in made:
        lines.append(f"### {title}\n\n![{title}]({path.relative_to(run_dir).as_posix()})")
    return "## Plots\n\n" + "\n\n".join(line for line in lines if line)


def _write_text(path: Path, text: str) -> Path:
    """Write atomically: a temporary file in the same folder, renamed on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        from genoml.outputs import chmod_like_open

        chmod_like_open(tmp)  # mkstemp makes 0600 files: give the mode open() would (umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_report(
    run_dir: str | Path,
    *,
    metrics: dict,
    history: list[dict],
    settings: dict,
    predictions: dict[str, dict] | None,
    baselines: dict[str, dict] | None,
    extra_sections: Sequence[tuple[str, str]] = (),
    stopped: str | None = None,
) -> Path:
    """Write ``run_dir/report.md`` and its plots under ``run_dir/plots/``; return the report path.

    ``predictions``: split -> ``{"y_true", "probs", "labels", "task"}`` (plots use test, else valid).
    ``baselines``: name -> metrics dict, optionally with ``"vs_model"`` = ``paired_bootstrap(fn, y, model, base)``.
    """
    run_dir = Path(run_dir)
    splits = _splits(metrics)
    threshold = float(dict(_flatten(settings or {})).get("threshold", 0.5))
    sections = [
        f"# genoml run report: {run_dir.name}",
        *([banner] if (banner := stopped_banner(stopped)) else []),
        _summary(splits),
        _settings_section(settings),
        "## Metrics\n\n" + _metrics_table(splits),
        _baselines_section(splits, baselines),
        _leakage_section(_leakage(metrics, splits), splits),
        _plots_section(run_dir, splits, history, predictions, threshold),
    ]
    sections += [f"## {title}\n\n{body.strip()}" for title, body in extra_sections]
    return _write_text(run_dir / "report.md", "\n\n".join(sections) + "\n")


def stopped_banner(stopped: str | None) -> str:
    """A warning at the top of the report and model card when training did not run to its end."""
    if stopped == "interrupted":
        return (
            "> **Interrupted run.** Training was stopped (Ctrl-C or SIGTERM) before it finished: the weights "
            "and metrics below are those of the last completed step, not of a finished run. Continue it with "
            "`genoml finetune ... --resume` (same arguments)."
        )
    if stopped == "time_budget":
        return (
            "> **Stopped by the time budget** (`--time-budget`): training ended before its last epoch; the "
            "metrics are those of the best checkpoint reached in time."
        )
    return ""


# ----------------------------------------------------------------------------- model card


def _front_matter(licence: str, task: str, is_transformers: bool) -> str:
    spdx = licence.strip().lower()
    lines = ["---", f"license: {spdx if re.fullmatch(r'[a-z0-9.+-]+', spdx) else 'other'}"]
    if is_transformers:
        lines.append("library_name: transformers")
    lines += ["tags:", "- genoml", "- biology", f"- {task}", "---"]
    return "\n".join(lines)


def _usage(name: str, is_transformers: bool) -> str:
    text = f"```bash\ngenoml predict --model {name} in.fa\n```"
    if is_transformers:
        text += (
            "\n\nThe encoder is a plain transformers model (the task head lives in `head.safetensors`, "
            "used by genoml):\n\n```python\nfrom transformers import AutoModel\n\n"
            f'encoder = AutoModel.from_pretrained("{name}")\n```\n\n'
            "To tokenize raw sequences exactly as in training, use "
            f'`genoml.tokenizers.load_tokenizer("{name}")`.'
        )
    else:
        text += "\n\nThis is a genoml baseline, not a transformers model: load it with genoml only."
    return text


def _limits(task: str, duplicates: int) -> str:
    items = [
        f"For research use: scoring sequences of the same kind as the training data for the {task} task above.",
        "The metrics come from held-out splits of the same data source; expect lower performance on other "
        "organisms, assays or sequence lengths. Not validated for clinical or diagnostic use.",
    ]
    if task != "regression":
        items.append(
            "Probabilities are model scores: check the calibration plot in `report.md` before reading them as frequencies."
        )
    if duplicates:
        items.append(
            f"{duplicates} evaluation sequences also occur in the training data (see `report.md`), "
            "so the metrics may be optimistic."
        )
    return "## Intended use and limits\n\n" + "\n".join(f"- {item}" for item in items)


def write_model_card(
    run_dir: str | Path,
    *,
    settings: dict,
    metrics: dict,
    source_model: str,
    licence: str,
    data_description: str,
    stopped: str | None = None,
) -> Path:
    """Write ``run_dir/README.md``: training data, intended use and limits, metrics with CIs, licence, usage."""
    run_dir = Path(run_dir)
    flat = dict(_flatten(settings or {}))
    splits = _splits(metrics)
    ref = _reference_split(splits)
    task = (splits[ref].get("task") if ref else None) or flat.get("task") or "classification"
    labels = (splits[ref].get("labels") if ref else None) or flat.get("labels") or []
    is_transformers = str(flat.get("arch", "hf")).lower() not in _BASELINE_ARCHS
    licence = " ".join(licence.split())
    shown = f"**{licence}**" if len(licence) <= 80 else f"\n\n> {licence}\n\n"
    if is_transformers:
        origin = f"fine-tuned from `{source_model}` (strategy: {flat.get('strategy', 'n/a')})"
        licence_text = f"This model derives from `{source_model}` and inherits its licence: {shown}".rstrip()
    else:
        origin = f"baseline ({flat.get('arch')}) trained from scratch"
        licence_text = f"Licence: {shown}".rstrip()
    if not licence_text.endswith((".", ">")) and not licence_text.endswith("**"):
        licence_text += "."
    leakage = _leakage(metrics, splits)
    duplicates = sum(int(c.get("exact", 0)) + int(c.get("revcomp", 0)) for c in leakage.values())
    label_text = ", ".join(f"`{lab}`" for lab in labels) if labels else "Numeric target (regression)."
    sections = [
        _front_matter(licence, task, is_transformers),
        f"# {run_dir.name}\n\nA genoml **{task}** model, {origin}."
        + (f"\n\n{banner}" if (banner := stopped_banner(stopped)) else ""),
        f"## Training data\n\n{data_description.strip()}",
        f"## Labels\n\n{label_text}",
        "## Evaluation\n\n" + _summary(splits) + "\n\n" + _metrics_table(splits),
        _limits(task, duplicates),
        f"## Licence\n\n{licence_text}\n\nThe licence of the training data also applies.",
        "## How to use\n\n" + _usage(str(run_dir), is_transformers),
    ]
    return _write_text(run_dir / "README.md", "\n\n".join(sections) + "\n")
