"""`genoml predict`: streaming inference that writes one row per input record, in input order.

Records are read lazily in chunks (constant memory); inside a chunk the Predictor batches by
length under a token budget; rows are written back in input order. Unusable records (empty,
invalid characters) still get a row with a flag. Output to a file goes through a temporary file
renamed at the end, so an interrupted run never leaves a complete-looking file.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from itertools import chain, islice

import numpy as np
import torch
from tqdm import tqdm

from genoml import runs
from genoml.config import PredictConfig
from genoml.data import LabelSpace, window_starts
from genoml.device import resolve_device as resolve_torch_device
from genoml.device import resolve_precision
from genoml.errors import InputError
from genoml.io import InputSpec, atomic_output, read_records
from genoml.log import progress_enabled
from genoml.outputs import check_output_file
from genoml.runs import RunMeta

log = logging.getLogger(__name__)


def chunks(it: Iterable, n: int) -> Iterator[list]:
    it = iter(it)
    while batch := list(islice(it, n)):
        yield batch


def resolve_device(name: str) -> str:
    """--device auto|cpu|cuda -> "cpu" / "cuda[:N]" (InputError for cuda without a GPU); see genoml.device."""
    return str(resolve_torch_device(name))


def columns(meta: RunMeta) -> list[str]:
    labels = meta.labels
    if labels.task == "regression":
        score_cols = ["value"]
    else:
        score_cols = [f"prob_{n}" for n in labels.names]
    return ["id", "prediction", *score_cols, "n_windows", "flags"]


def decide(scores: np.ndarray, labels: LabelSpace, threshold: float) -> list[str]:
    """Scores (N, C) -> prediction strings (threshold for binary and multilabel, argmax for multiclass)."""
    task, names = labels.task, labels.names
    if task == "regression":
        return [f"{v:.6g}" for v in scores[:, 0]]
    if task == "binary":
        return [names[1] if p >= threshold else names[0] for p in scores[:, 1]]
    if task == "multilabel":
        return [";".join(n for n, p in zip(names, row) if p >= threshold) for row in scores]
    return [names[i] for i in scores.argmax(1)]


class RowWriter:
    """Writes rows as TSV, CSV or JSON lines to an open text handle."""

    def __init__(self, fh, cols: list[str], fmt: str):
        if fmt not in ("tsv", "csv", "jsonl"):
            raise InputError(f"--format {fmt}: use tsv, csv or jsonl")
        self.fh, self.cols, self.fmt = fh, cols, fmt
        if fmt != "jsonl":
            self.w = csv.writer(fh, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
            self.w.writerow(cols)

    def write(self, row: list) -> None:
        if self.fmt == "jsonl":
            regression = "value" in self.cols
            self.fh.write(
                json.dumps({c: _json_value(c, v, regression) for c, v in zip(self.cols, row)}) + "\n"
            )
        else:
            self.w.writerow(row)


def _json_value(col: str, value, regression: bool = False):
    """JSON lines: scores, values and counts as numbers (NA as null); ids, class labels and flags as text."""
    if col.startswith("prob_") or col in ("value", "n_windows") or (col == "prediction" and regression):
        if value in ("NA", "", None):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        return int(number) if col == "n_windows" else number
    return value


def predict_rows(predictor, meta: RunMeta, records: list, threshold: float) -> list[list]:
    """One output row per record (same order). Unusable records get NA scores and a flag."""
    usable = [i for i, r in enumerate(records) if r.seq and not set(r.flags) & {"empty", "invalid_chars"}]
    scores = predictor.scores([records[i].seq for i in usable]) if usable else np.zeros((0, 1))
    decisions = decide(scores, meta.labels, threshold) if usable else []
    n_cols = meta.labels.n_out
    width = predictor.tokenizer.max_bases(predictor.max_tokens) if predictor.tokenizer is not None else None
    rows, k = [], 0
    pos = {i: j for j, i in enumerate(usable)}
    for i, r in enumerate(records):
        flags = list(r.flags) or []
        if i in pos:
            j = pos[i]
            n_win = 1 if width is None else _n_windows(len(r.seq), width, predictor.stride)
            if n_win > 1:
                flags.append("windowed")
            rows.append([r.id, decisions[j], *(f"{v:.6g}" for v in scores[j]), n_win, ",".join(flags)])
            k += 1
        else:
            if "empty" not in flags and not r.seq:
                flags.append("empty")
            rows.append([r.id, "NA", *(["NA"] * n_cols), 0, ",".join(flags)])
    return rows


def _n_windows(length: int, width: int, stride: int | None) -> int:
    return len(window_starts(length, width, stride or max(1, width // 2)))


def _predict_hints(records, alphabet: str):
    """predict has no --alphabet: the model decides; say so instead of io's generic hint."""
    try:
        yield from records
    except InputError as e:
        text = str(e)
        if "pass --alphabet" in text:
            text = text.replace(
                "is this protein? pass --alphabet protein",
                f"is this protein? this model reads {alphabet.upper()}: predict with a protein model",
            )
            raise InputError(text) from None
        raise


def check_config(cfg: PredictConfig) -> None:
    """Refuse bad flag values before any work (a zero chunk size would silently write no rows)."""
    if cfg.format not in ("tsv", "csv", "jsonl"):
        raise InputError(f"--format {cfg.format}: use tsv, csv or jsonl")
    for flag, value in (("--chunk-size", cfg.chunk_size), ("--batch-tokens", cfg.batch_tokens)):
        if value is not None and value < 1:
            raise InputError(f"{flag}: must be at least 1, got {value}")
    if cfg.threshold is not None and not 0 <= cfg.threshold <= 1:
        raise InputError(f"--threshold {cfg.threshold}: a probability threshold must be in [0, 1]")


def run_predict(cfg: PredictConfig) -> dict:
    """Stream records from cfg.input through the run's model into cfg.output. Returns a summary."""
    check_config(cfg)
    check_output_file(cfg.output, flag="-o", inputs=[cfg.input, cfg.bed, cfg.genome, cfg.labels, cfg.model])
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    precision = resolve_precision(cfg.precision)
    predictor, meta = runs.load_predictor(
        cfg.model,
        device=resolve_device(cfg.device),
        batch_tokens=cfg.batch_tokens,
        trust_remote_code=cfg.trust_remote_code,
        revision=cfg.revision,
    )
    predictor.precision = precision
    threshold = cfg.threshold if cfg.threshold is not None else meta.threshold
    spec = InputSpec(
        path=None if cfg.bed else cfg.input,
        bed=cfg.bed,
        genome=cfg.genome,
        alphabet=cfg.alphabet or meta.alphabet or "auto",
        rna=cfg.rna,
        lenient=not cfg.strict,
    )
    t0, n = time.time(), 0
    reader = chunks(_predict_hints(read_records(spec), spec.alphabet), cfg.chunk_size)
    first = next(reader, None)  # an empty or unreadable input fails here, before a header is written
    if first is None:
        raise InputError(f"{cfg.bed or cfg.input}: no records found; nothing to predict")
    bar = tqdm(unit=" seq", file=sys.stderr, disable=not progress_enabled())
    with atomic_output(cfg.output) as fh:
        writer = RowWriter(fh, columns(meta), cfg.format)
        for chunk in chain([first], reader):
            for row in predict_rows(predictor, meta, chunk, threshold):
                writer.write(row)
            n += len(chunk)
            bar.update(len(chunk))
    bar.close()
    secs = time.time() - t0
    summary = {"records": n, "rows": n, "seconds": round(secs, 2), "seq_per_s": round(n / max(secs, 1e-9), 1)}
    log.info("predicted %d records -> %d rows in %.1fs (%.0f seq/s)", n, n, secs, summary["seq_per_s"])
    return summary
