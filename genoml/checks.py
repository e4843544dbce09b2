"""Flag checks that refuse absurd values before any work starts (exit code 2, the flag named)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from genoml.errors import InputError
from genoml.splits import SPLIT_BY


def check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise InputError(f"--threads: must be at least 1, got {threads}")


def check_time_budget(minutes: float | None) -> None:
    if minutes is not None and (not math.isfinite(minutes) or minutes <= 0):
        raise InputError(f"--time-budget: must be a positive number of minutes, got {minutes:g}")


def check_finetune_flags(cfg) -> None:
    """Flags of `genoml finetune` that FinetuneConfig.validate does not cover."""
    check_threads(cfg.threads)
    check_time_budget(cfg.time_budget_min)
    if cfg.stride is not None and cfg.max_tokens is not None and cfg.stride > cfg.max_tokens:
        raise InputError(
            f"--stride {cfg.stride} is larger than --window {cfg.max_tokens}: the bases between windows would never "
            f"be seen; use --stride {max(1, cfg.max_tokens // 2)} (half a window) or less than the window"
        )
    split_by = getattr(cfg.data, "split_by", "random")
    if split_by not in SPLIT_BY:
        raise InputError(f"--split-by: '{split_by}' is not a split; use one of {', '.join(SPLIT_BY)}")
    if split_by in ("region", "chrom") and not cfg.data.bed:
        raise InputError(
            f"--split-by {split_by}: needs BED intervals (--bed with --genome); "
            "use --split-by similarity for FASTA/CSV input"
        )
    if cfg.model == "kmer-linear" and getattr(cfg, "pooling", "auto") != "auto":
        raise InputError(
            f"--pooling {cfg.pooling}: kmer-linear counts k-mers and pools nothing; drop --pooling"
        )
    positive = getattr(cfg, "positive_class", None)
    if positive is not None and not str(positive).strip():
        raise InputError("--positive-class: give a label name, e.g. --positive-class 1")


def check_model_fits(cfg, model, tokenizer, max_tokens: int) -> None:
    """Checks that need the built model: partial:N against its layers, --stride against its window, --pooling
    against an encoder (the one-hot nets pool with their own max/mean layers)."""
    arch = getattr(model, "arch", None)
    if arch is not None and arch != "hf" and getattr(cfg, "pooling", "auto") != "auto":
        raise InputError(
            f"--pooling {cfg.pooling}: applies to encoders (transformers, genoml's ConvLM); the {arch} net pools "
            "with its own max/mean layer; drop --pooling"
        )
    if arch == "hf" and cfg.strategy_name() == "partial":
        from genoml.models import hidden_layers  # heavy (torch): the CLI imports this module for --help

        n_layers = len(hidden_layers(model.encoder))
        if cfg.partial_layers() > n_layers:
            raise InputError(
                f"--strategy {cfg.strategy}: the model has only {n_layers} layers; use partial:1 .. "
                f"partial:{n_layers} (or full)"
            )
    if cfg.stride is not None and tokenizer is not None:
        width = tokenizer.max_bases(max_tokens)
        if cfg.stride > width:
            raise InputError(
                f"--stride {cfg.stride}: larger than the window of {width} bases ({max_tokens} tokens), so bases "
                f"between windows would never be seen; use --stride {max(1, width // 2)} or at most {width}"
            )


def check_safetensors(folder, flag: str = "--model") -> None:
    """Refuse a model folder whose *.safetensors files are truncated or not safetensors (exit 2, file named)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.safetensors")):
        size = path.stat().st_size
        problem = None
        try:
            with open(path, "rb") as fh:
                raw = fh.read(8)
                if len(raw) < 8:
                    problem = f"only {size} bytes"
                else:
                    (n,) = struct.unpack("<Q", raw)
                    if n > size - 8:
                        problem = "its header is longer than the file (truncated or not safetensors)"
                    else:
                        header = json.loads(fh.read(n))
                        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
                        if 8 + n + max(ends, default=0) > size:
                            problem = f"truncated: {size} bytes, the header promises {8 + n + max(ends)}"
        except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
            problem = "not a safetensors file (unreadable header)"
        if problem:
            raise InputError(
                f"{flag} {folder}: {path.name} is corrupt ({problem}); re-create or re-download it"
            )


def check_labels(records, task: str, where: str) -> None:
    """Every training record has a label; regression values are finite numbers (path:line of the first bad one)."""
    missing = [rec for rec in records if rec.label is None or not str(rec.label).strip()]
    if missing:
        raise InputError(
            f"{missing[0].where or where}: {len(missing)} record(s) have no label (first: record "
            f"{short_id(missing[0].id)}); give every training record a label or remove it"
        )
    for rec in records:
        loc = rec.where or where
        if task in ("regression", "auto"):
            try:
                value = float(rec.label)
            except ValueError:
                continue
            if not math.isfinite(value):
                if task == "regression" or _looks_numeric_column(records):
                    raise InputError(
                        f"{loc}: label {rec.label!r} of record {short_id(rec.id)} is not a finite "
                        "number; give its value or remove the record"
                    )


def _looks_numeric_column(records, n: int = 200) -> bool:
    ok = 0
    for rec in records[:n]:
        try:
            float(rec.label)
            ok += 1
        except (TypeError, ValueError):
            return False
    return ok > 0


def short_id(rec_id: str, limit: int = 60) -> str:
    """A record id for messages: quoted, and cut to `limit` characters (a 1-MB id is not echoed whole)."""
    text = str(rec_id)
    if len(text) <= limit:
        return repr(text)
    return repr(text[:limit]) + f"… ({len(text)} characters)"
