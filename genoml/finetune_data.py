"""The train/valid/test splits of a fine-tuning run, read from the user's files.

`load_splits(cfg)` reads --train (and --valid/--test when given; otherwise a seeded, stratified split of the
training records, grouped under --split-by) and returns ({name: Split}, alphabet). Every split is checked
(labels, alphabet of the training data) before anything is written; `sha256` fingerprints the files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from genoml.checks import check_labels
from genoml.config import FinetuneConfig
from genoml.errors import InputError
from genoml.io import InputSpec, detect_alphabet, read_records
from genoml.outputs import file_sha256
from genoml.splits import groups_for, split_indices

log = logging.getLogger(__name__)


@dataclass
class Split:
    name: str
    ids: list[str]
    seqs: list[str]
    labels: list[str]
    source: str | None = None
    file: str | None = None  # the file the records were read from (its sha256 goes into genoml.json)
    intervals: list | None = None  # BED input: (chrom, start, end, strand) per record


def sha256(path: str | None) -> str | None:
    if not path or path == "-" or not Path(path).is_file():
        return None
    return file_sha256(path)


def split_gap(cfg: FinetuneConfig) -> int:
    """--split-by region: intervals closer than this many bases are grouped (the --window, else 0 = overlap)."""
    return int(cfg.max_tokens or 0)


def _read(
    cfg: FinetuneConfig, path: str | None, with_extras: bool, alphabet: str | None = None
) -> tuple[list, str]:
    """Records of one input (with_extras: also --labels/--class/--bed/--genome) -> (records, source name)."""
    d = cfg.data
    spec = InputSpec(
        path=path,
        labels=d.labels if with_extras else None,
        classes=d.classes if with_extras else [],
        bed=d.bed if with_extras else None,
        genome=d.genome if with_extras else None,
        alphabet=alphabet or d.alphabet,
        rna=d.rna,
    )
    if with_extras and d.label_column is not None and hasattr(spec, "label_column"):
        spec.label_column = d.label_column
    records = list(read_records(spec))
    if not records:
        raise InputError(f"{path or 'input'}: no sequences found")
    return records, path or (d.bed or "classes")


def _check_kmer_task(cfg: FinetuneConfig, train: list) -> None:
    if cfg.model == "kmer-linear" and (
        cfg.task == "multilabel" or (cfg.task == "auto" and any(r.label and ";" in r.label for r in train))
    ):
        raise InputError(
            "--model kmer-linear: does not do multilabel tasks (labels with ';'); use --model cnn, rnn "
            "or a transformer"
        )


def load_splits(cfg: FinetuneConfig) -> tuple[dict[str, Split], str]:
    """Read train (+valid/test, or a seeded stratified split) -> splits and the alphabet."""
    d = cfg.data
    train, src = _read(cfg, d.train, True)
    check_labels(train, cfg.task, src)
    _check_kmer_task(cfg, train)
    alphabet = d.alphabet if d.alphabet != "auto" else detect_alphabet(r.seq for r in train[:200])
    splits = {
        "train": Split(
            "train",
            [r.id for r in train],
            [r.seq for r in train],
            [r.label for r in train],
            src,
            d.train or d.bed,
            [r.interval for r in train],
        )
    }
    for name, path in (("valid", d.valid), ("test", d.test)):
        if path:
            recs, _ = _read(
                cfg, path, False, alphabet
            )  # the train alphabet: a protein test set for a DNA run is an error
            check_labels(recs, cfg.task, path)
            splits[name] = Split(
                name, [r.id for r in recs], [r.seq for r in recs], [r.label for r in recs], path, path
            )
    missing = [n for n in ("valid", "test") if n not in splits]
    if missing:
        full = splits["train"]
        splits.update(_split_train(cfg, full, missing, alphabet))
        log.info("split %s: %s", full.source, ", ".join(f"{n}={len(s.seqs)}" for n, s in splits.items()))
    return splits, alphabet


def _split_train(cfg: FinetuneConfig, full: Split, missing: list[str], alphabet: str) -> dict[str, Split]:
    """The training records split (seeded, stratified, grouped by --split-by) into train + the missing splits."""
    d = cfg.data
    fr = (d.valid_fraction if "valid" in missing else 0.0, d.test_fraction if "test" in missing else 0.0)
    split_by = getattr(d, "split_by", "random")
    groups = groups_for(split_by, full.seqs, full.intervals or [], alphabet == "dna", gap=split_gap(cfg))
    tr, va, te = split_indices(full.labels, fr, cfg.seed, groups=groups, where=str(full.source))
    parts = {"train": tr, "valid": va, "test": te}
    how = f"split by {split_by}, seed {cfg.seed}" if split_by != "random" else f"split, seed {cfg.seed}"
    out = {}
    for name in ["train", *missing]:
        idx = parts[name]
        if len(idx):
            out[name] = Split(
                name,
                [full.ids[i] for i in idx],
                [full.seqs[i] for i in idx],
                [full.labels[i] for i in idx],
                f"{full.source} ({how})",
                full.file,
                [full.intervals[i] for i in idx] if full.intervals else None,
            )
    return out
