"""The per-record prediction table of a run's valid/test split (`predictions_<split>.tsv`).

Columns: id, true_label, predicted (class, `;`-joined classes, or value), then the scores: prob_<label> per
class, or `value` for regression (6 significant digits). `write_predictions` writes it for error analysis
and paired comparisons; `read_predictions` reads it back as ids, labels and scores (N, C).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genoml.data import LabelSpace
from genoml.errors import InputError
from genoml.outputs import atomic_file
from genoml.predict import decide

FIXED_COLUMNS = ["id", "true_label", "predicted"]


@dataclass
class PredictionTable:
    ids: list[str]
    true_labels: list[str]
    predicted: list[str]
    columns: list[str]  # the score columns: prob_<label>..., or ["value"]
    scores: np.ndarray  # (N, C) float64; regression (N, 1)


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
    cols = ["value"] if labels.task == "regression" else [f"prob_{n}" for n in labels.names]
    predicted = decide(np.asarray(scores), labels, threshold) if len(ids) else []
    true_labels = true_labels if true_labels is not None else [""] * len(ids)
    with atomic_file(path) as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow([*FIXED_COLUMNS, *cols])
        for i, t, p, row in zip(ids, true_labels, predicted, scores):
            w.writerow([i, t, p, *(f"{v:.6g}" for v in row)])


def read_predictions(path: str | Path) -> PredictionTable:
    """A table written by `write_predictions` -> PredictionTable (scores (N, C))."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    header = rows[0] if rows else []
    if header[: len(FIXED_COLUMNS)] != FIXED_COLUMNS or len(header) == len(FIXED_COLUMNS):
        raise InputError(
            f"{path}:1: expected the columns {', '.join(FIXED_COLUMNS)} then prob_<label>... or value, "
            f"got {', '.join(header) or 'an empty file'}; write it with genoml finetune"
        )
    n, body, scores = len(FIXED_COLUMNS), rows[1:], []
    for line, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise InputError(f"{path}:{line}: {len(r)} columns, expected {len(header)} as in the header")
        try:
            scores.append([float(v) for v in r[n:]])
        except ValueError as e:
            raise InputError(f"{path}:{line}: a score that is not a number ({e})") from None
    return PredictionTable(
        ids=[r[0] for r in body],
        true_labels=[r[1] for r in body],
        predicted=[r[2] for r in body],
        columns=header[n:],
        scores=np.asarray(scores, dtype=np.float64).reshape(len(body), len(header) - n),
    )
