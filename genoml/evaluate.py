"""`genoml evaluate`: a trained run + labelled sequences -> metrics.json and report.md.

Uses the same inference (`Predictor`), metrics (`compute_metrics`) and report code as finetune.
"""

from __future__ import annotations

import logging

from genoml import runs
from genoml.config import write_json
from genoml.device import resolve_device, resolve_precision
from genoml.errors import InputError
from genoml.io import read_records
from genoml.metrics import compute_metrics
from genoml.outputs import discard_outputs, prepare_output_dir, record_outputs
from genoml.report import write_report

log = logging.getLogger(__name__)


def run_evaluate(
    model: str,
    spec,
    out: str,
    *,
    threshold: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    batch_tokens: int | None = None,
    force: bool = False,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> dict:
    """Evaluate the run in `model` on the records of `spec` (an io.InputSpec with labels); write to `out`."""
    dev = resolve_device(device)
    precision = resolve_precision(precision)
    predictor, meta = runs.load_predictor(
        model,
        device=str(dev),
        batch_tokens=batch_tokens,
        trust_remote_code=trust_remote_code,
        revision=revision,
    )
    predictor.precision = precision
    if spec.alphabet == "auto":
        spec.alphabet = meta.alphabet or "auto"
    records = list(read_records(spec))
    labels = meta.labels
    where = spec.path or "input"
    unlabelled = [r for r in records if not r.label]
    if unlabelled:
        raise InputError(
            f"{unlabelled[0].where or where}: record '{unlabelled[0].id}' has no label ({len(unlabelled)} of "
            f"{len(records)} unlabelled); evaluate needs labelled input (a label column, label= in headers, or --labels)"
        )
    y = labels.encode([r.label if r.label is not None else "" for r in records], where=where).numpy()
    y = labels.decode(y)
    scores = predictor.scores([r.seq for r in records])
    thr = threshold if threshold is not None else meta.threshold
    metrics = {"eval": compute_metrics(labels.task, y, scores, labels.names, thr)}
    out_dir = prepare_output_dir(
        out, flag="--out", inputs=[spec.path, spec.labels, model], force=force, kind="evaluate"
    )
    try:
        write_json(out_dir / "metrics.json", metrics)
        preds = {"eval": {"y_true": y, "probs": scores, "labels": labels.names, "task": labels.task}}
        settings = {"model": model, "input": where, "threshold": thr, "task": labels.task}
        write_report(
            out_dir, metrics=metrics, history=[], settings=settings, predictions=preds, baselines=None
        )
    except BaseException:
        discard_outputs(out_dir)
        raise
    record_outputs(out_dir)
    log.info(
        "evaluated %d records: %s",
        len(records),
        ", ".join(f"{k}={v:.4f}" for k, v in metrics["eval"].items() if isinstance(v, float))[:300],
    )
    return metrics
