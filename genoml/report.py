"""Human-readable outputs of a run directory: ``report.md`` and a ``README.md`` model card.

Plots (`genoml.plots`) are written under ``run_dir/plots/``; the report references them relatively.
``metrics`` maps split name -> the dict of ``genoml.metrics.compute_metrics``; duplicate counts
``{"exact", "revcomp"}`` come from a top-level ``"leakage"`` key (split -> counts) or from each split's
``"duplicates_with_train"``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genoml.config import BASELINE_NETS
from genoml.metrics import confusion, predict_classes
from genoml.outputs import write_atomic
from genoml.plots import plot_calibration, plot_confusion, plot_curves, plot_regression, plot_roc_pr

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
    return write_atomic(path, text)


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
