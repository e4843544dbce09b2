"""Metrics: hand-computed values, edge cases (missing classes, constant inputs), bootstrap behaviour."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import matthews_corrcoef

from genoml.errors import GenomlError
from genoml.metrics import (
    bootstrap_ci,
    classification_metrics,
    compute_metrics,
    duplicate_overlap,
    headline_fn,
    headline_metric,
    mcc_from_confusion,
    multilabel_metrics,
    paired_bootstrap,
    regression_metrics,
)

# Binary example: positives scored [0.9, 0.8, 0.7, 0.3], negatives [0.6, 0.55, 0.4, 0.2, 0.1, 0.05].
# At threshold 0.5: TP=3, FN=1, FP=2, TN=4.
POS = [0.9, 0.8, 0.7, 0.3]
NEG = [0.6, 0.55, 0.4, 0.2, 0.1, 0.05]
Y_BIN = np.array([1] * 4 + [0] * 6)
P_BIN = np.array(POS + NEG)


def _probs(p1):
    p1 = np.asarray(p1, dtype=float)
    return np.stack([1 - p1, p1], axis=1)


def _assert_plain(value):
    """Every leaf is a Python bool/int/float/str/None, never a numpy type."""
    if isinstance(value, dict):
        for v in value.values():
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or type(value) in (bool, int, float, str), type(value)


def test_binary_hand_computed():
    m = classification_metrics(Y_BIN, _probs(P_BIN), ["neg", "pos"])
    assert m["confusion_matrix"] == [[4, 2], [1, 3]]  # rows = true (neg, pos)
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (3*4 - 2*1) / sqrt(5*4*6*5) = 10/sqrt(600)
    assert m["mcc"] == pytest.approx(10 / math.sqrt(600))
    assert m["accuracy"] == pytest.approx(7 / 10)
    # recall pos 3/4, recall neg 4/6 -> mean 17/24
    assert m["balanced_accuracy"] == pytest.approx(17 / 24)
    # F1 pos = 2*(3/5)(3/4)/(3/5+3/4) = 2/3; F1 neg = 2*(4/5)(4/6)/(4/5+4/6) = 8/11; mean = 23/33
    assert m["f1_macro"] == pytest.approx(23 / 33)
    assert m["precision_macro"] == pytest.approx((3 / 5 + 4 / 5) / 2)
    assert m["recall_macro"] == pytest.approx(17 / 24)
    # AUROC: pos/neg pairs ranked right: 6 + 6 + 6 + 3 (0.3 beats 0.2, 0.1, 0.05) = 21 of 24
    assert m["auroc"] == pytest.approx(21 / 24)
    # AP: positives at ranks 1, 2, 3, 7 -> (1 + 1 + 1 + 4/7) / 4 = 25/28
    assert m["auprc"] == pytest.approx(25 / 28)
    # Brier (multiclass form) = mean 2*(p1 - y)^2; sum of (p1-y)^2 = 0.63 + 0.875 = 1.505
    assert m["brier"] == pytest.approx(2 * 1.505 / 10)
    assert m["n"] == 10 and m["support"] == [6, 4] and m["labels"] == ["neg", "pos"]
    _assert_plain(m)
    json.dumps(m, allow_nan=False)


def test_binary_threshold_moves_predictions():
    m = classification_metrics(Y_BIN, _probs(P_BIN), ["neg", "pos"], threshold=0.65)
    # 0.6 and 0.55 become TN: TP=3, FN=1, FP=0, TN=6 -> (18 - 0) / sqrt(3*4*6*7)
    assert m["confusion_matrix"] == [[6, 0], [1, 3]]
    assert m["mcc"] == pytest.approx(18 / math.sqrt(504))
    assert m["auroc"] == pytest.approx(21 / 24)  # ranking metrics do not depend on the threshold


def test_binary_accepts_positive_class_vector():
    assert classification_metrics(Y_BIN, P_BIN, ["neg", "pos"]) == classification_metrics(
        Y_BIN, _probs(P_BIN), ["neg", "pos"]
    )


def test_perfect_and_inverted_predictions():
    y = np.array([0, 1, 0, 1, 1, 0])
    perfect = classification_metrics(y, _probs(y * 0.8 + 0.1), ["a", "b"])
    inverted = classification_metrics(y, _probs((1 - y) * 0.8 + 0.1), ["a", "b"])
    assert perfect["mcc"] == pytest.approx(1.0) and perfect["auroc"] == pytest.approx(1.0)
    assert perfect["accuracy"] == 1.0 and perfect["f1_macro"] == pytest.approx(1.0)
    assert perfect["brier"] == pytest.approx(2 * 0.01)
    assert inverted["mcc"] == pytest.approx(-1.0) and inverted["auroc"] == pytest.approx(0.0)
    assert inverted["accuracy"] == 0.0


def test_multiclass_hand_computed():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), pred] = 0.8
    m = classification_metrics(y, probs, ["x", "y", "z"])
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # Gorodkin: s=6, c=4, t=(2,2,2), p=(2,3,1); (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)) = 12/sqrt(22*24)
    assert m["mcc"] == pytest.approx(12 / math.sqrt(528))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert len(m["auroc_per_class"]) == 3 and m["auroc"] == pytest.approx(np.mean(m["auroc_per_class"]))
    assert m["support"] == [2, 2, 2]


def test_mcc_matches_sklearn_on_random_data():
    rng = np.random.default_rng(3)
    for n_classes in (2, 4):
        y, pred = rng.integers(0, n_classes, 300), rng.integers(0, n_classes, 300)
        cm = np.zeros((n_classes, n_classes), int)
        np.add.at(cm, (y, pred), 1)
        assert mcc_from_confusion(cm) == pytest.approx(matthews_corrcoef(y, pred))
    assert mcc_from_confusion(np.array([[5, 0], [0, 0]])) == 0.0  # undefined -> 0, like sklearn


def test_missing_class_gives_none_not_nan():
    only_neg = classification_metrics(np.zeros(4, int), _probs([0.1, 0.2, 0.7, 0.3]), ["a", "b"])
    assert only_neg["auroc"] is None and only_neg["auprc"] is None
    json.dumps(only_neg, allow_nan=False)
    y = np.array([0, 0, 1, 1])  # class 2 absent: scored over the classes that are present
    probs = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(y, probs, ["a", "b", "c"])
    assert m["auroc_per_class"] == [1.0, 1.0, None] and m["auroc"] == 1.0


def test_classification_rejects_bad_shapes():
    with pytest.raises(GenomlError, match="probs must be"):
        classification_metrics(Y_BIN, np.ones((10, 3)) / 3, ["a", "b"])
    with pytest.raises(GenomlError, match="out of range"):
        classification_metrics(np.array([0, 2]), _probs([0.1, 0.9]), ["a", "b"])
    with pytest.raises(GenomlError, match="different numbers of rows"):
        classification_metrics(Y_BIN[:5], _probs(P_BIN), ["a", "b"])


def test_multilabel_hand_computed():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.1, 0.4], [0.8, 0.7], [0.3, 0.6]])  # -> [[1,0],[0,0],[1,1],[0,1]]
    m = multilabel_metrics(y, probs, ["l0", "l1"])
    # flattened: TP=3, FN=1, FP=1, TN=3 -> (9 - 1) / sqrt(4*4*4*4) = 0.5
    assert m["mcc"] == pytest.approx(0.5)
    assert m["f1_micro"] == pytest.approx(6 / 8)  # 2TP / (2TP + FP + FN)
    assert m["f1_macro"] == pytest.approx((1.0 + 0.5) / 2)  # l0 perfect; l1 TP=1 FP=1 FN=1
    assert m["subset_accuracy"] == pytest.approx(0.5)
    assert m["hamming_loss"] == pytest.approx(2 / 8)
    # l0 separates perfectly; l1 positives (0.4, 0.7) vs negatives (0.2, 0.6): 3 of 4 pairs
    assert m["auroc_per_label"] == [1.0, 0.75] and m["auroc"] == pytest.approx(0.875)
    assert m["support"] == [2, 2]
    _assert_plain(m)


def test_regression_known_correlations():
    m = regression_metrics([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])
    # ranks equal values; d = (0, 1, -1, 1, -1): rho = 1 - 6*4 / (5*24) = 0.8
    assert m["spearman"] == pytest.approx(0.8) and m["pearson"] == pytest.approx(0.8)
    # residuals (0, -1, 1, -1, 1): MSE 4/5, MAE 4/5; SS_tot = 10 -> R2 = 1 - 4/10
    assert m["mse"] == pytest.approx(0.8) and m["mae"] == pytest.approx(0.8)
    assert m["r2"] == pytest.approx(0.6) and m["n"] == 5
    cubic = regression_metrics([1, 2, 3, 4], [1, 8, 27, 64])
    assert cubic["spearman"] == pytest.approx(1.0)
    assert (
        cubic["pearson"] == pytest.approx(pearsonr([1, 2, 3, 4], [1, 8, 27, 64])[0]) and cubic["pearson"] < 1
    )
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert regression_metrics(a, b)["spearman"] == pytest.approx(spearmanr(a, b)[0])


def test_regression_constant_prediction_is_none():
    m = regression_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert m["pearson"] is None and m["spearman"] is None
    assert m["mse"] == pytest.approx(2 / 3)
    json.dumps(m, allow_nan=False)


def test_headline_metric():
    assert [headline_metric(t) for t in ("binary", "multiclass", "multilabel")] == ["mcc"] * 3
    assert headline_metric("regression") == "spearman"
    with pytest.raises(GenomlError, match="unknown task"):
        headline_metric("ranking")


def test_bootstrap_ci_contains_point_estimate_and_is_reproducible():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    probs = _probs(np.clip(y * 0.6 + rng.normal(0.2, 0.25, 200), 0, 1))
    fn = headline_fn("binary")
    point = fn(y, probs)
    low, high = bootstrap_ci(fn, y, probs, n=300, seed=1)
    assert low < point < high and high - low < 0.5
    assert bootstrap_ci(fn, y, probs, n=300, seed=1) == (low, high)
    assert bootstrap_ci(fn, y, probs, n=300, seed=2) != (low, high)
    narrow = bootstrap_ci(fn, y, probs, n=300, seed=1, alpha=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_skips_degenerate_resamples():
    y = np.array([1] + [0] * 9)  # most resamples lack the positive
    probs = _probs([0.9] + [0.1] * 9)
    low, high = bootstrap_ci(headline_fn("binary"), y, probs, n=200, seed=0)
    assert low == high == pytest.approx(1.0)  # undefined (single-class) resamples were dropped, not scored 0
    all_bad = bootstrap_ci(headline_fn("binary"), np.zeros(5, int), _probs([0.2] * 5), n=20)
    assert all(math.isnan(v) for v in all_bad)


def test_paired_bootstrap_detects_a_real_difference():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    good = _probs(np.clip(y * 0.5 + rng.normal(0.25, 0.2, 300), 0, 1))
    noise = _probs(rng.uniform(size=300))
    fn = headline_fn("binary")
    res = paired_bootstrap(fn, y, good, noise, n=300, seed=0)
    assert res["delta"] == pytest.approx(fn(y, good) - fn(y, noise))
    assert 0 < res["ci_low"] < res["delta"] < res["ci_high"]
    assert res["p_value"] < 0.01
    same = paired_bootstrap(fn, y, good, good, n=100)
    assert same["delta"] == 0 and same["p_value"] == 1.0


def test_duplicate_overlap_counts_revcomp():
    train = ["AACCGT", "TTTTGA"]
    other = ["AACCGT", "TCAAAA", "GGGGGG", "aaccgt"]  # exact, revcomp of TTTTGA, new, exact (case)
    assert duplicate_overlap(train, other, dna=True) == {"exact": 2, "revcomp": 1}
    assert duplicate_overlap(train, other, dna=False) == {"exact": 2, "revcomp": 0}
    assert duplicate_overlap(["ACGYN"], ["NRCGT"], dna=True) == {"exact": 0, "revcomp": 1}  # IUPAC


@pytest.mark.parametrize(
    "task, y, outputs, labels, name",
    [
        ("binary", Y_BIN, _probs(P_BIN), ["neg", "pos"], "mcc"),
        ("multiclass", np.array([0, 1, 2, 0, 1, 2]), np.eye(3)[[0, 1, 2, 0, 2, 2]], ["a", "b", "c"], "mcc"),
        ("multilabel", np.eye(2, dtype=int)[[0, 1, 0, 1]], np.eye(2)[[0, 1, 1, 1]], ["a", "b"], "mcc"),
        ("regression", np.arange(8.0), np.arange(8.0) ** 2, None, "spearman"),
    ],
)
def test_compute_metrics_dispatch(task, y, outputs, labels, name):
    m = compute_metrics(task, y, outputs, labels, n_boot=100)
    assert m["headline"] == name and m["task"] == task and name in m
    low, high = m[f"{name}_ci95"]
    assert low <= m[name] <= high
    _assert_plain(m)
    json.dumps(m, allow_nan=False)


def test_compute_metrics_unknown_task():
    with pytest.raises(GenomlError, match="allowed: binary, multiclass, multilabel, regression"):
        compute_metrics("ranking", [0], [[1.0, 0.0]], ["a", "b"])
