"""Annotated sequence formats read through Biopython: GenBank, EMBL and FASTQ -> genoml raw records.

`sniff_format(first_line)` names the format a file's first line announces ("genbank", "embl",
"fastq" or None); `bio_raws(lines, path, fmt)` parses the numbered lines with `Bio.SeqIO` and yields
`(id, label, line, sequence)` tuples, `line` being the 1-based line where the record starts. Labels
come from a `label=VALUE` word in the description (as in FASTA headers) or, for GenBank/EMBL, from a
`/label` (else `/genoml_label`) qualifier of the record's first feature that has one. Parse errors
become `InputError("path:line: ...")` naming the record that failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from Bio import SeqIO

from genoml.errors import InputError, where

FORMATS = {"genbank": "gb", "embl": "embl", "fastq": "fastq"}
LABEL_QUALIFIERS = ("label", "genoml_label")


def sniff_format(first_line: str) -> str | None:
    """The annotated format a file's first non-blank line announces, or None (FASTA / table)."""
    if first_line.startswith("LOCUS "):
        return "genbank"
    if first_line.startswith("ID   "):
        return "embl"
    if first_line.startswith("@") and len(first_line.strip()) > 1:
        return "fastq"
    return None


class _LineHandle:
    """A text handle over numbered lines that remembers how many lines Biopython has consumed."""

    def __init__(self, lines: Iterator[tuple[int, str]]):
        self._lines = lines
        self.lineno = 0

    def readline(self) -> str:
        for lineno, line in self._lines:
            self.lineno = lineno
            return line if line.endswith("\n") else line + "\n"
        return ""

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def read(self, size: int = -1) -> str:
        """Biopython probes the mode with read(0); other reads take the rest (SeqIO reads by line)."""
        return "" if size == 0 else "".join(self)


def _label(record) -> str | None:
    for word in (record.description or "").split():
        if word.startswith("label="):
            return word[len("label=") :] or None
    for feature in getattr(record, "features", []) or []:
        for key in LABEL_QUALIFIERS:
            values = feature.qualifiers.get(key)
            if values:
                return str(values[0])
    return None


def bio_raws(
    lines: Iterator[tuple[int, str]], path: str | Path, fmt: str
) -> Iterator[tuple[str, str | None, int, str]]:
    """Yield (id, label, start line, sequence text) for every record of a GenBank/EMBL/FASTQ stream."""
    handle = _LineHandle(lines)
    start = 1
    parser = SeqIO.parse(handle, FORMATS[fmt])
    n = 0
    while True:
        try:
            record = next(parser)
        except StopIteration:
            break
        except (ValueError, AssertionError, IndexError, KeyError) as err:
            raise InputError(
                f"{where(path, max(start, 1))}: {fmt} record {n + 1} could not be parsed "
                f"({str(err).splitlines()[0][:160] if str(err) else type(err).__name__}); check the file's format"
            ) from None
        n += 1
        try:
            seq = str(record.seq)
        except Exception as err:  # noqa: BLE001 - Biopython raises UndefinedSequenceError for CONTIG-only entries
            raise InputError(
                f"{where(path, start)}: {fmt} record {record.id!r} has no sequence ({type(err).__name__}); "
                "give entries with their ORIGIN/SQ sequence"
            ) from None
        yield record.id, _label(record), start, seq
        start = handle.lineno + 1
    if n == 0:
        raise InputError(f"{where(path)}: no {fmt} records found; check the file's format")
