"""report.md, plots and the model card, on synthetic predictions for every task kind."""

from __future__ import annotations

import re

import numpy as np
import pytest

from genoml.metrics import compute_metrics, headline_fn, paired_bootstrap
from genoml.plots import plot_calibration, plot_confusion, plot_curves, plot_regression, plot_roc_pr
from genoml.report import write_model_card, write_report

HISTORY = [
    {"epoch": e, "train_loss": 1.0 / e, "valid_loss": 1.1 / e, "valid_mcc": 0.2 * e} for e in (1, 2, 3)
]


def _binary(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(y * 0.5 + rng.normal(0.25, 0.2, n), 0, 1)
    return y, np.stack([1 - p1, p1], axis=1)


def _images(run_dir):
    """Paths of the images report.md references, checked to be relative."""
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (run_dir / "report.md").read_text())
    assert refs and all(not ref.startswith("/") for ref in refs)
    return [run_dir / ref for ref in refs]


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, path


@pytest.fixture
def binary_run():
    labels = ["neg", "pos"]
    data = {
        split: _binary(n, seed)
        for seed, (split, n) in enumerate([("train", 120), ("valid", 60), ("test", 80)])
    }
    metrics = {split: compute_metrics("binary", y, p, labels, n_boot=100) for split, (y, p) in data.items()}
    metrics["leakage"] = {"valid": {"exact": 0, "revcomp": 0}, "test": {"exact": 3, "revcomp": 2}}
    y_test, p_test = data["test"]
    majority = np.tile([0.6, 0.4], (len(y_test), 1))
    base = compute_metrics("binary", y_test, majority, labels, n_boot=100)
    base["vs_model"] = paired_bootstrap(headline_fn("binary"), y_test, p_test, majority, n=100)
    predictions = {
        s: {"y_true": y, "probs": p, "labels": labels, "task": "binary"} for s, (y, p) in data.items()
    }
    return metrics, predictions, {"kmer-linear": metrics["valid"], "majority class": base}


def test_binary_report_mentions_every_split_and_writes_pngs(tmp_path, binary_run):
    import matplotlib
    import matplotlib.pyplot as plt

    metrics, predictions, baselines = binary_run
    backend = matplotlib.get_backend()
    settings = {"task": "binary", "lr": 2e-05, "data": {"train": "train.csv"}, "threshold": 0.5}
    path = write_report(
        tmp_path,
        metrics=metrics,
        history=HISTORY,
        settings=settings,
        predictions=predictions,
        baselines=baselines,
        extra_sections=[("Attention", "Heads attend to the TATA box.")],
    )
    text = path.read_text()
    assert path == tmp_path / "report.md"
    for split in ("train", "valid", "test"):
        m = metrics[split]
        lo, hi = m["mcc_ci95"]
        assert f"| {split} | {m['mcc']:.4f} [{lo:.4f}, {hi:.4f}] |" in text
    assert "| data.train | train.csv |" in text and "| lr | 2e-05 |" in text
    assert "| genoml model |" in text and "| kmer-linear |" in text and "| majority class |" in text
    assert f"{baselines['majority class']['vs_model']['delta']:+.4f}" in text
    assert "| test | 3 | 2 | n/a | n/a | 80 | 6.25% |" in text and "5 sequences also occur in train" in text
    assert "drawn on the **test** split" in text
    assert text.index("## Plots") < text.index("## Attention") and "Heads attend to the TATA box." in text
    images = _images(tmp_path)
    assert {p.name for p in images} == {"roc_pr.png", "confusion.png", "calibration.png", "curves.png"}
    for image in images:
        _assert_png(image)
    assert plt.get_fignums() == [] and matplotlib.get_backend() == backend  # no pyplot state leaked


def test_report_falls_back_to_valid_and_handles_missing_parts(tmp_path, binary_run):
    metrics, predictions, _ = binary_run
    text = write_report(
        tmp_path,
        metrics={"valid": metrics["valid"]},
        history=[],
        settings={},
        predictions={"valid": predictions["valid"]},
        baselines=None,
    ).read_text()
    assert "drawn on the **valid** split" in text
    assert "No baselines were run." in text and "were not checked" in text
    assert "curves.png" not in text
    for image in _images(tmp_path):
        _assert_png(image)


def test_report_reads_finetune_layout(tmp_path, binary_run):
    """Duplicates stored per split, baselines with a "split" entry, non-metric keys beside the splits."""
    metrics, predictions, baselines = binary_run
    layout = {s: dict(metrics[s]) for s in ("valid", "test")}
    layout["test"]["duplicates_with_train"] = {"exact": 1, "revcomp": 0}
    layout["valid"]["duplicates_with_train"] = {"exact": 0, "revcomp": 0}
    layout["train_seconds"] = 12.5
    layout["baselines"] = {"split": "test", "majority": baselines["majority class"]}
    path = write_report(
        tmp_path,
        metrics=layout,
        history=[],
        settings={},
        predictions={"test": predictions["test"]},
        baselines=layout["baselines"],
    )
    text = path.read_text()
    assert "| test | 1 | 0 | n/a | n/a | 80 | 1.25% |" in text and "1 sequences also occur in train" in text
    assert "| majority |" in text and "| split |" not in text.split("## Baselines")[1].split("## Leakage")[0]
    assert "| train_seconds" not in text and "| baselines" not in text
    card = write_model_card(
        tmp_path, settings={}, metrics=layout, source_model="m", licence="MIT", data_description="d"
    ).read_text()
    assert "1 evaluation sequences also occur" in card


def test_multiclass_report(tmp_path):
    rng = np.random.default_rng(1)
    labels = ["EI", "IE", "N"]
    y = rng.integers(0, 3, 90)
    probs = rng.dirichlet([1, 1, 1], 90) + np.eye(3)[y]
    probs /= probs.sum(axis=1, keepdims=True)
    metrics = {"test": compute_metrics("multiclass", y, probs, labels, n_boot=50)}
    pred = {"test": {"y_true": y, "probs": probs, "labels": labels, "task": "multiclass"}}
    text = write_report(
        tmp_path, metrics=metrics, history=HISTORY, settings={}, predictions=pred, baselines=None
    ).read_text()
    assert "| test |" in text and "balanced_accuracy" in text
    assert {p.name for p in _images(tmp_path)} == {
        "roc_pr.png",
        "confusion.png",
        "calibration.png",
        "curves.png",
    }
    for image in _images(tmp_path):
        _assert_png(image)


def test_regression_report(tmp_path):
    rng = np.random.default_rng(2)
    y = rng.normal(size=70)
    pred_values = y + rng.normal(scale=0.5, size=70)
    metrics = {"test": compute_metrics("regression", y, pred_values, None, n_boot=50)}
    pred = {"test": {"y_true": y, "probs": pred_values, "labels": [], "task": "regression"}}
    baselines = {"kmer-linear": compute_metrics("regression", y, rng.normal(size=70), None, n_boot=50)}
    text = write_report(
        tmp_path, metrics=metrics, history=HISTORY, settings={}, predictions=pred, baselines=baselines
    ).read_text()
    assert "| split | spearman [95% CI] | pearson | r2 | mse | mae | n |" in text
    assert "| model | spearman [95% CI] | r2 |" in text
    assert {p.name for p in _images(tmp_path)} == {"regression.png", "curves.png"}
    for image in _images(tmp_path):
        _assert_png(image)


def test_multilabel_report(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (50, 3))
    probs = np.clip(y * 0.6 + rng.uniform(0, 0.4, (50, 3)), 0, 1)
    metrics = {"test": compute_metrics("multilabel", y, probs, ["a", "b", "c"], n_boot=50)}
    pred = {"test": {"y_true": y, "probs": probs, "labels": ["a", "b", "c"], "task": "multilabel"}}
    text = write_report(
        tmp_path, metrics=metrics, history=[], settings={}, predictions=pred, baselines=None
    ).read_text()
    assert "subset_accuracy" in text and "hamming_loss" in text
    assert [p.name for p in _images(tmp_path)] == ["roc_pr.png"]


def test_undefined_metrics_show_as_na(tmp_path):
    y = np.zeros(6, int)  # only one class: AUROC undefined, CI undefined
    probs = np.tile([0.7, 0.3], (6, 1))
    metrics = {"test": compute_metrics("binary", y, probs, ["a", "b"], n_boot=20)}
    assert metrics["test"]["auroc"] is None and metrics["test"]["mcc_ci95"] == [None, None]
    pred = {"test": {"y_true": y, "probs": probs, "labels": ["a", "b"], "task": "binary"}}
    text = write_report(
        tmp_path, metrics=metrics, history=[], settings={}, predictions=pred, baselines=None
    ).read_text()
    # issue 12: one class in a split is no headline number (not MCC 0.0): null in metrics, stated in the report
    assert metrics["test"]["mcc"] is None and metrics["test"]["undefined"].startswith("one class")
    assert "| test | undefined: one class: every sequence of this split is 'a' | 1.0000 |" in text, text
    assert "**No headline:**" in text and "MCC = 0.0000" not in text and "n/a" in text
    _assert_png(tmp_path / "plots" / "roc_pr.png")


def test_model_card_contains_metrics_licence_and_usage(tmp_path, binary_run):
    metrics, _, _ = binary_run
    path = write_model_card(
        tmp_path / "promoter-model",
        settings={"arch": "hf", "strategy": "lora", "task": "binary"},
        metrics=metrics,
        source_model="shared/models/sapiens-vh",
        licence="MIT",
        data_description="GUE prom_core_tata (70 bp core promoters, Apache-2.0).",
    )
    text = path.read_text()
    assert path.name == "README.md" and text.startswith("---\nlicense: mit\n")
    lo, hi = metrics["test"]["mcc_ci95"]
    assert f"test MCC = {metrics['test']['mcc']:.4f} [{lo:.4f}, {hi:.4f}]" in text
    assert f"| valid | {metrics['valid']['mcc']:.4f}" in text
    assert "GUE prom_core_tata" in text and "inherits its licence: **MIT**" in text
    here = (
        tmp_path / "promoter-model"
    )  # issue 12: the usage names the real --out path, not only its last part
    assert f"genoml predict --model {here} in.fa" in text
    assert f'AutoModel.from_pretrained("{here}")' in text
    assert "5 evaluation sequences also occur in the training data" in text


def test_model_card_licence_paragraph_and_interrupted_banner(tmp_path, binary_run):
    metrics, _, _ = binary_run
    licence = (
        "Genome sequences are public NCBI/INSDC records; full provenance: `PROVENANCE.txt` of the "
        "corpus folder. The model weights are released under genoml's licence (MIT)."
    )
    text = write_model_card(
        tmp_path / "runs" / "demo",
        settings={"arch": "hf", "task": "binary"},
        metrics=metrics,
        source_model="m",
        licence=licence,
        data_description="d",
        stopped="interrupted",
    ).read_text()
    assert (
        "`PROVENANCE.txt` of the corpus folder. The model weights are released under genoml's licence (MIT)."
        in text
    )
    assert "of the**" not in text
    assert "**Interrupted run.**" in text
    assert f"genoml predict --model {tmp_path / 'runs' / 'demo'} in.fa" in text
    report = write_report(
        tmp_path / "r",
        metrics=metrics,
        history=[],
        settings={},
        predictions=None,
        baselines=None,
        stopped="interrupted",
    ).read_text()
    assert "**Interrupted run.**" in report


def test_model_card_for_a_baseline_regression(tmp_path):
    y = np.arange(10.0)
    metrics = {"test": compute_metrics("regression", y, y**2, None, n_boot=20)}
    text = write_model_card(
        tmp_path,
        settings={"arch": "cnn"},
        metrics=metrics,
        source_model="none",
        licence="CC BY 4.0",
        data_description="synthetic",
    ).read_text()
    assert "license: other" in text and "AutoModel" not in text and "load it with genoml only" in text
    assert "spearman [95% CI]" in text and "Numeric target" in text


def test_plot_functions_write_pngs(tmp_path):
    y, probs = _binary(40, 9)
    outputs = [
        plot_roc_pr(y, probs[:, 1], ["a", "b"], tmp_path / "a" / "roc.png"),  # positive-class vector
        plot_roc_pr(np.zeros(5, int), np.tile([0.5, 0.5], (5, 1)), ["a", "b"], tmp_path / "undef.png"),
        plot_confusion([[3, 1, 0], [0, 0, 0], [2, 2, 5]], ["x", "y", "z"], tmp_path / "cm.png"),  # empty row
        plot_calibration(y, probs, tmp_path / "cal.png"),
        plot_curves([{"epoch": 1, "train_loss": 0.5}], tmp_path / "curves.png"),
        plot_regression(np.arange(6000.0), np.arange(6000.0) * 1.1, tmp_path / "hex.png"),
    ]
    for path in outputs:
        _assert_png(path)
