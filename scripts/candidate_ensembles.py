"""Would averaging `--model auto`'s candidates beat the one it keeps? (issue 16, "ensembling candidates")

Reads the candidates' predictions_valid.tsv / predictions_test.tsv of finished `genoml finetune` auto runs and
prints the validation and test MCC of every candidate and of the mean of the class probabilities of every
combination of them (argmax decision). Nothing is retrained.

Usage: python scripts/candidate_ensembles.py runs/auto_mouse_3 [RUN ...]
  where each RUN is made by: genoml finetune TRAIN --valid DEV --test TEST --time-budget 4 --seed 0 --no-attention --out RUN
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import matthews_corrcoef


def load(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """-> (true labels (N,), class probabilities (N, C), class names)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    names = [k[len("prob_") :] for k in rows[0] if k.startswith("prob_")]
    probs = np.array([[float(r[f"prob_{n}"]) for n in names] for r in rows])
    return np.array([r["true_label"] for r in rows]), probs, names


def main(runs: list[str]) -> None:
    for run in runs:
        folders = sorted(
            p for p in Path(run, "candidates").iterdir() if (p / "predictions_valid.tsv").is_file()
        )
        preds = {p.name: {s: load(p / f"predictions_{s}.tsv") for s in ("valid", "test")} for p in folders}

        def mcc(combo: tuple[str, ...], split: str, preds=preds) -> float:
            y, _, names = preds[combo[0]][split]
            mean = np.mean([preds[c][split][1] for c in combo], axis=0)  # (N, C)
            return matthews_corrcoef(y, np.array(names)[mean.argmax(1)])

        print(run)
        for k in range(1, len(preds) + 1):
            for combo in itertools.combinations(preds, k):
                print(
                    f"  {' + '.join(combo):50s} valid {mcc(combo, 'valid'):.3f}  test {mcc(combo, 'test'):.3f}"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
