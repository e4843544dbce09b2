"""Which label of a binary task is the positive class (ROC/PR curves, precision, recall, F1, thresholds).

`--positive-class NAME` wins; else a label named 1 / true / yes / pos* (case-insensitive); else the minority
class of the training labels (ties: the second label in sorted order, genoml's earlier rule).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from genoml.errors import InputError

POSITIVE_NAMES = ("1", "true", "yes", "y", "t", "+", "+1")


def choose_positive(
    names: Sequence[str], train_labels: Sequence[str], requested: str | None = None
) -> tuple[str, str]:
    """-> (positive label, why) for a two-label task."""
    names = list(names)
    if requested is not None:
        if requested not in names:
            raise InputError(
                f"--positive-class {requested!r}: not a label of the training data "
                f"({', '.join(repr(n) for n in names)})"
            )
        return requested, "--positive-class"
    by_name = [n for n in names if n.strip().lower() in POSITIVE_NAMES]
    if len(by_name) == 1:
        return by_name[0], f"label named '{by_name[0]}'"
    by_prefix = [n for n in names if n.strip().lower().startswith("pos")]
    if len(by_prefix) == 1:
        return by_prefix[0], f"label named '{by_prefix[0]}'"
    counts = Counter(train_labels)
    a, b = names[0], names[1]
    if counts[a] != counts[b]:
        pos = a if counts[a] < counts[b] else b
        return pos, f"minority class in training ({counts[pos]} of {counts[a] + counts[b]})"
    return b, "no named positive and balanced classes: the second label in sorted order"


def order_binary(names: Sequence[str], positive: str) -> list[str]:
    """Label names with the positive class second (column 1 of the model's scores)."""
    return [n for n in names if n != positive] + [positive]
