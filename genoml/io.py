"""Sequence input: FASTA, CSV/TSV tables, label tables and BED + genome, as streams of `Record`s.

Every reader is a generator (one record in memory at a time, plus the ids seen so far); sequences
come out uppercased and alphabet-normalised by `normalize_sequence`. Files are plain, gzip, bzip2, xz
or zstd (told by magic bytes), '-' is stdin, CRLF is fine; GenBank, EMBL and FASTQ are read through
Biopython (`genoml.bioformats`). Bad input raises `InputError("path:line: what; fix")`.
`atomic_output` writes a file all-or-nothing ('-' = stdout).
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import gzip
import hashlib
import io
import logging
import lzma
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pyfaidx

from genoml import alphabet as alphabet_mod
from genoml.bioformats import bio_raws, sniff_format
from genoml.errors import InputError, where
from genoml.outputs import atomic_file

log = logging.getLogger(__name__)

ALPHABETS = ("auto", "dna", "protein")
DNA_BASES = alphabet_mod.DNA.letters
DNA_AMBIGUOUS = alphabet_mod.DNA.extra  # IUPAC codes; all read as N
PROTEIN_RESIDUES = alphabet_mod.PROTEIN.all_letters  # 20 standard + the extra tokens ESM-2 knows
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".faa", ".ffn", ".frn", ".fas", ".mpfa")
AUTO_SAMPLE_RECORDS = 100  # alphabet="auto": buffer at most this many records ...
AUTO_SAMPLE_CHARS = 100_000  # ... or this many characters, whichever comes first
SHOW_IDS = 5  # how many offending ids an error message lists
_WHITESPACE = b" \t\r\n\v\f"
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
_LABEL_ALIASES = ("label", "class")
_ID_ALIASES = ("id", "name")
_SEQUENCE_ALIASES = ("sequence", "seq")


@dataclass(frozen=True, slots=True)
class Record:
    """One input sequence; `where` is the "path:line" of its header or row, for messages."""

    id: str
    seq: str  # uppercased, whitespace removed, alphabet-normalised by normalize_sequence
    label: str | None = None  # raw label text ("1", "promoter", "a;b", "0.37")
    where: str = ""
    interval: tuple[str, int, int, str] | None = None  # (chrom, start, end, strand) for BED input
    flags: tuple[str, ...] = ()  # "has_N"; lenient readers: "empty", "invalid_chars", "duplicate_id"


@dataclass
class InputSpec:
    """What `read_records` reads: exactly one of `path`, `classes` or `bed` (+ `genome`)."""

    path: str | None = None  # FASTA or CSV/TSV table ('-' = stdin)
    labels: str | None = None  # id<TAB>label table joined to the records by id
    classes: list[tuple[str, str]] = field(default_factory=list)  # [(label, fasta_path), ...]
    bed: str | None = None
    genome: str | None = None
    alphabet: str = "auto"
    rna: bool = False
    lenient: bool = False
    label_column: int | None = None  # BED only: 1-based column holding the label


# --------------------------------------------------------------------------- opening files


@contextmanager
def open_text(path: str | Path) -> Iterator[TextIO]:
    """Open `path` ('-' = stdin) as UTF-8 text; gzip is detected by magic bytes; CRLF reads as LF.

    Undecodable bytes come through as surrogate escapes; `_numbered_lines` turns them into errors.
    """
    if str(path) == "-":
        stdin = sys.stdin
        binary = getattr(stdin, "buffer", None)
        if binary is None and isinstance(stdin, io.TextIOBase):
            yield stdin  # a text-only stdin (tests, notebooks): no gzip detection possible
            return
        with _decoded(binary if binary is not None else stdin, "-") as fh:
            yield fh
        return
    try:
        raw = open(path, "rb")  # closed by the `with` below
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file; give the path of a file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot open ({err.strerror}); check the path and permissions") from None
    with raw, _decoded(raw, path) as fh:
        yield fh


@contextmanager
def _decoded(binary, path: str | Path) -> Iterator[TextIO]:
    """Wrap a binary stream as text, unzipping gzip; the caller keeps ownership of `binary`."""
    wrapper = None
    if not hasattr(binary, "peek"):
        binary = wrapper = io.BufferedReader(binary)  # e.g. a BytesIO standing in for stdin
    kind = compression_of(binary.peek(8)[:8])
    stream = _decompressed(binary, kind, path)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline=None)
    try:
        yield text
    finally:
        text.detach()  # leaves `binary` (maybe sys.stdin.buffer) open
        if stream is not binary:
            stream.close()
        if wrapper is not None:
            wrapper.detach()


def _decompressed(binary, kind: str | None, path: str | Path):
    """A binary stream of the decompressed bytes (gzip, bzip2, xz, zstd); zip archives are refused."""
    if kind is None:
        return binary
    if kind == "gzip":
        return gzip.GzipFile(fileobj=binary, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(binary, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(binary, mode="rb")
    if kind == "zstd":
        try:
            import zstandard  # optional: only zstd input needs it
        except ImportError:
            raise InputError(
                f"{where(path)}: zstd-compressed input needs the 'zstandard' package (pip install zstandard), "
                "or decompress it first"
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(binary, closefd=False)
    raise InputError(
        f"{where(path)}: {kind}-compressed input is not supported; decompress it or recompress with gzip"
    )


def compression_of(head: bytes) -> str | None:
    """Name the compression whose magic bytes start `head` ("gzip", "bzip2", ...), or None."""
    for magic, name in _MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def _numbered_lines(fh: TextIO, path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (line_number, line) from `fh`; binary or corrupt data becomes an InputError."""
    lineno = 0
    try:
        for line in fh:
            lineno += 1
            if "\x00" in line or not line.isascii():
                _check_text(line, path, lineno)
            yield lineno, line
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as err:
        raise InputError(
            f"{where(path, lineno + 1)}: cannot read ({err}); the file is truncated or corrupt: "
            "re-download or re-compress it"
        ) from None
    except Exception as err:  # noqa: BLE001 - zstandard.ZstdError is not an OSError
        if type(err).__name__ != "ZstdError":
            raise
        raise InputError(
            f"{where(path, lineno + 1)}: cannot read ({err}); the file is truncated or corrupt: "
            "re-download or re-compress it"
        ) from None


def _check_text(line: str, path: str | Path, lineno: int) -> None:
    """Raise for a NUL byte or an undecodable byte (a surrogate escape) in `line`."""
    loc = where(path, lineno)
    if "\x00" in line:
        col = line.index("\x00") + 1
        raise InputError(
            f"{loc}: NUL byte at column {col}: this is a binary file, not text; "
            "give a plain or gzip-compressed text file"
        )
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as err:
        byte = ord(line[err.start]) - 0xDC00
        raise InputError(
            f"{loc}: undecodable byte 0x{byte & 0xFF:02x} at column {err.start + 1} (not UTF-8 text); "
            "is this a binary file? give a plain or gzip-compressed text file"
        ) from None


def _first_content_line(lines: Iterator[tuple[int, str]], path: str | Path, what: str) -> tuple[int, str]:
    """Return the first non-blank (line_number, line); an empty file is an InputError."""
    for lineno, line in lines:
        if line.strip():
            return lineno, line
    raise InputError(f"{where(path)}: empty file (no {what}); give a non-empty file")


# --------------------------------------------------------------------------- alphabets


class _BadChar(Exception):
    """Internal: the first character at `pos` of a sequence text that the alphabet refuses."""

    def __init__(self, pos: int, char: str, what: str, fix: str, detail: str = ""):
        super().__init__(what)
        self.pos, self.char, self.what, self.fix, self.detail = pos, char, what, fix, detail

    def message(self, loc: str, position: str) -> str:
        detail = f" {self.detail}" if self.detail else ""
        return f"{loc}: {self.what} at {position}{detail}; {self.fix}"


@cache
def _translation(alphabet: str, rna: bool) -> tuple[bytes, bytes]:
    """(256-byte table that uppercases and maps IUPAC->N, U->T; bytes the result may contain)."""
    src, dst = bytearray(), bytearray()
    for low in range(ord("a"), ord("z") + 1):
        src.append(low)
        dst.append(low - 32)
    table = bytearray(bytes.maketrans(bytes(src), bytes(dst)))
    if alphabet == "protein":
        return bytes(table), PROTEIN_RESIDUES.encode()
    for code in DNA_AMBIGUOUS:
        table[ord(code)] = table[ord(code.lower())] = ord("N")
    if rna:
        table[ord("U")] = table[ord("u")] = ord("T")
    return bytes(table), b"ACGTN"


def _normalize(seq: str, alphabet: str, rna: bool) -> tuple[str, tuple[str, ...]]:
    """Fast path of `normalize_sequence`; raises `_BadChar` for the first refused character."""
    if alphabet == "protein":
        stripped = seq.rstrip()
        if stripped.endswith("*"):
            seq = stripped[:-1]  # a stop codon mark closing a protein record
    table, allowed = _translation(alphabet, rna)
    if seq.isascii():
        out = seq.encode("ascii").translate(table, _WHITESPACE)
        if not out.translate(None, allowed):
            flags = ("has_N",) if alphabet == "dna" and b"N" in out else ()
            return out.decode("ascii"), flags
    raise _first_bad_char(seq, alphabet, rna)


def _first_bad_char(seq: str, alphabet: str, rna: bool) -> _BadChar:
    """Slow path: find and explain the first character of `seq` the alphabet refuses."""
    ok = set(PROTEIN_RESIDUES if alphabet == "protein" else DNA_BASES + DNA_AMBIGUOUS + ("U" if rna else ""))
    ok |= {ch.lower() for ch in ok} | set(_WHITESPACE.decode())
    for pos, ch in enumerate(seq):
        if ch not in ok:
            return _BadChar(pos, ch, *_explain(ch, alphabet))
    raise AssertionError("unreachable: _first_bad_char called on a valid sequence")  # pragma: no cover


def _explain(ch: str, alphabet: str) -> tuple[str, str, str]:
    """(what is wrong, how to fix it, detail) for a refused character `ch`."""
    if alphabet == "dna" and ch in "Uu":
        return f"looks like RNA: {ch!r}", "pass --rna to read U as T", ""
    allowed = (
        "A C G T, and IUPAC codes N R Y K M S W B D H V (read as N)"
        if alphabet == "dna"
        else "the 20 standard amino acids and X B Z U O"
    )
    what, detail = f"invalid character {ch!r}", f"of a {alphabet} sequence (allowed: {allowed})"
    if ch == ">":
        fix = "a '>' header must start its own line"
    elif ch in "-.":
        fix = "alignment gaps are not sequence: remove them (e.g. `seqkit seq -g`)"
    elif ch.isdigit():
        fix = "remove the numbers (GenBank-style numbered lines are not FASTA)"
    elif alphabet == "dna" and (ch == "*" or ch.upper() in PROTEIN_RESIDUES):
        fix = "is this protein? pass --alphabet protein"
    else:
        fix = "remove or replace the character"
    return what, fix, detail


def normalize_sequence(
    seq: str, alphabet: str, *, rna: bool = False, where: str = ""
) -> tuple[str, tuple[str, ...]]:
    """Uppercase `seq`, drop whitespace and map it onto `alphabet` ("dna" | "protein").

    DNA keeps ACGT, reads IUPAC codes as N (flag "has_N"), reads U as T only with `rna`. Protein
    keeps the 20 residues plus X B Z U O and drops one trailing '*'. Anything else is an InputError
    naming `where`, the character and its 1-based column.
    """
    if alphabet not in ("dna", "protein"):
        raise InputError(f"alphabet: got {alphabet!r}; allowed: 'dna', 'protein'")
    try:
        return _normalize(seq, alphabet, rna)
    except _BadChar as bad:
        raise InputError(bad.message(where or "sequence", f"column {bad.pos + 1}")) from None


def detect_alphabet(seqs: Iterable[str]) -> Literal["dna", "protein"]:
    """Return "dna" if >= 90% of the letters in a sample of `seqs` are ACGTUN, else "protein"."""
    return alphabet_mod.detect(seqs, AUTO_SAMPLE_CHARS)


reverse_complement = alphabet_mod.reverse_complement


# --------------------------------------------------------------------------- raw records -> Records


@dataclass(slots=True)
class _Raw:
    """A record as parsed, before alphabet normalisation; `lines[i]` is the line of `chunks[i]`."""

    id: str
    label: str | None
    line: int
    chunks: list[str]
    lines: list[int]
    position: str = "column"  # how a character's place is named: "column" (FASTA), "position" (table)


def _finish(raw: _Raw, path: str | Path, alphabet: str, rna: bool, lenient: bool) -> Record:
    """Normalise one raw record; record-level problems raise, or flag the record when lenient."""
    loc = where(path, raw.line)
    text = raw.chunks[0] if len(raw.chunks) == 1 else "".join(raw.chunks)
    try:
        seq, flags = _normalize(text, alphabet, rna)
    except _BadChar as bad:
        line, col = _locate(raw, bad.pos)
        message = bad.message(where(path, line), f"{raw.position} {col}")
        if not lenient:
            raise InputError(message) from None
        log.warning("%s (record %r kept with an empty sequence, flag 'invalid_chars')", message, raw.id)
        return Record(raw.id, "", raw.label, loc, flags=("invalid_chars",))
    if not seq:
        if not lenient:
            raise InputError(
                f"{loc}: record {raw.id!r} has no sequence; give its bases on the lines after the header, "
                "or remove the record"
            )
        log.warning("%s: record %r has no sequence (kept, flag 'empty')", loc, raw.id)
        return Record(raw.id, "", raw.label, loc, flags=("empty",))
    return Record(raw.id, seq, raw.label, loc, flags=flags)


def _locate(raw: _Raw, pos: int) -> tuple[int, int]:
    """Map a position in the joined sequence text to (line, 1-based column)."""
    for chunk, line in zip(raw.chunks, raw.lines):
        if pos < len(chunk):
            return line, pos + 1
        pos -= len(chunk)
    return raw.line, pos + 1  # pragma: no cover - pos is always inside the text


def _normalized(
    raws: Iterator[_Raw],
    path: str | Path,
    alphabet: str,
    rna: bool,
    lenient: bool,
    on_alphabet: Callable[[str], None] | None = None,
) -> Iterator[Record]:
    """Turn raw records into Records; with alphabet="auto", detect it from the first records."""
    if alphabet not in ALPHABETS:
        raise InputError(f"alphabet: got {alphabet!r}; allowed: {', '.join(ALPHABETS)}")
    if alphabet == "auto":
        head: list[_Raw] = []
        chars = 0
        for raw in raws:
            head.append(raw)
            chars += sum(len(chunk) for chunk in raw.chunks)
            if len(head) >= AUTO_SAMPLE_RECORDS or chars >= AUTO_SAMPLE_CHARS:
                break
        alphabet = detect_alphabet(_sample(raw) for raw in head)
        log.debug("%s: detected alphabet %s", where(path), alphabet)
        raws = chain(head, raws)
    if on_alphabet is not None:
        on_alphabet(alphabet)
    for raw in raws:
        yield _finish(raw, path, alphabet, rna, lenient)


def _sample(raw: _Raw, limit: int = 10_000) -> str:
    """The first ~`limit` characters of a raw record, without joining a whole chromosome."""
    parts, size = [], 0
    for chunk in raw.chunks:
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return "".join(parts)


class IdRegistry:
    """The ids seen so far, in constant-ish memory: 64-bit hashes and first line numbers kept in sorted
    numpy arrays (16 bytes per id instead of ~120 for a dict of strings), recent ids in a small dict.

    `setdefault(id, line)` returns the line the id was first seen at (== line for a new id). A 64-bit
    hash collision would report a false duplicate; for a million ids its probability is about 3e-8.
    """

    def __init__(self, flush_at: int = 65_536):
        self._keys = np.empty(0, dtype=np.uint64)  # (n,) sorted hashes
        self._lines = np.empty(0, dtype=np.int64)  # (n,) first line of each hash
        self._recent: dict[int, int] = {}
        self._flush_at = flush_at

    @staticmethod
    def _hash(rec_id: str) -> int:
        return int.from_bytes(
            hashlib.blake2b(rec_id.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little"
        )

    def setdefault(self, rec_id: str, lineno: int) -> int:
        h = self._hash(rec_id)
        if h in self._recent:
            return self._recent[h]
        key = np.uint64(h)
        i = int(np.searchsorted(self._keys, key))
        if i < len(self._keys) and self._keys[i] == key:
            return int(self._lines[i])
        self._recent[h] = lineno
        if len(self._recent) >= self._flush_at:
            self._flush()
        return lineno

    def _flush(self) -> None:
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), np.uint64, len(self._recent))])
        lines = np.concatenate([self._lines, np.fromiter(self._recent.values(), np.int64, len(self._recent))])
        order = np.argsort(keys, kind="stable")
        self._keys, self._lines = keys[order], lines[order]
        self._recent.clear()


def _check_duplicate(rec_id: str, lineno: int, seen: IdRegistry, path: str | Path, lenient: bool) -> bool:
    """Remember `rec_id`; return True if it was seen before (lenient) or raise (strict)."""
    first = seen.setdefault(rec_id, lineno)
    if first == lineno:
        return False
    message = (
        f"{where(path, lineno)}: duplicate id {rec_id!r} (first at line {first}); "
        "ids must be unique: rename one of the two records"
    )
    if not lenient:
        raise InputError(message)
    log.warning("%s (kept, flag 'duplicate_id')", message)
    return True


def _flag_duplicates(records: Iterator[Record], duplicate_lines: set[str]) -> Iterator[Record]:
    """Add the "duplicate_id" flag to the records whose `where` is in `duplicate_lines`."""
    for rec in records:
        if rec.where in duplicate_lines:
            rec = dataclasses.replace(rec, flags=(*rec.flags, "duplicate_id"))
        yield rec


# --------------------------------------------------------------------------- FASTA


def read_fasta(
    path: str | Path, *, alphabet: str = "auto", rna: bool = False, lenient: bool = False
) -> Iterator[Record]:
    """Stream the records of a FASTA file (plain/gzip/'-'); id = first word of the header,
    label from a `label=VALUE` word in the header, lowercase bases uppercased."""
    with open_text(path) as fh:
        duplicates: set[str] = set()
        raws = _fasta_raw(_numbered_lines(fh, path), path, lenient, duplicates)
        yield from _flag_duplicates(_normalized(raws, path, alphabet, rna, lenient), duplicates)


def _fasta_raw(
    lines: Iterator[tuple[int, str]], path: str | Path, lenient: bool, duplicates: set[str]
) -> Iterator[_Raw]:
    """Parse FASTA lines into raw records (sequence lines kept as chunks, joined once later)."""
    seen = IdRegistry()
    current: _Raw | None = None
    for lineno, line in lines:
        if line.startswith(">"):
            if current is not None:
                yield current
            current = _parse_header(line, lineno, path)
            if _check_duplicate(current.id, lineno, seen, path, lenient):
                duplicates.add(where(path, lineno))
        elif current is not None:
            text = line.rstrip()
            if text:
                current.chunks.append(text)
                current.lines.append(lineno)
        elif line.strip():
            raise InputError(
                f"{where(path, lineno)}: text before the first '>' header ({_preview(line)}); "
                "a FASTA file starts with a '>id' line (is this a table? give it a .csv/.tsv name)"
            )
    if current is None:
        raise InputError(f"{where(path)}: empty file (no FASTA records); give a FASTA file with '>id' lines")
    yield current


def _parse_header(line: str, lineno: int, path: str | Path) -> _Raw:
    """Parse `>id [description with label=VALUE]` into an empty raw record."""
    words = line[1:].split()
    if not words:
        raise InputError(
            f"{where(path, lineno)}: empty header ('>' with no id); write an id after '>', e.g. '>seq1'"
        )
    label = None
    for word in words[1:]:
        if word.startswith("label="):
            label = word[len("label=") :] or None
            break
    return _Raw(words[0], label, lineno, [], [])


def _preview(line: str, width: int = 30) -> str:
    text = line.strip()
    return repr(text if len(text) <= width else text[:width] + "...")


# --------------------------------------------------------------------------- tables


def read_table(
    path: str | Path, *, alphabet: str = "auto", rna: bool = False, lenient: bool = False
) -> Iterator[Record]:
    """Stream the rows of a CSV/TSV table with a header naming `sequence`, optional `label` and `id`
    (any order and case), or a modlamp-style table (first line `n_samples,n_features,name0,name1`)."""
    with open_text(path) as fh:
        duplicates: set[str] = set()
        raws = _table_raw(_numbered_lines(fh, path), path, lenient, duplicates)
        yield from _flag_duplicates(_normalized(raws, path, alphabet, rna, lenient), duplicates)


class _LineFeed:
    """Feeds text lines to `csv.reader` and remembers the number of the last line it gave."""

    def __init__(self, lines: Iterator[tuple[int, str]]):
        self.lines, self.line = lines, 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        self.line, text = next(self.lines)
        return text


def _csv_rows(
    lines: Iterator[tuple[int, str]], path: str | Path, what: str
) -> tuple[str, Iterator[tuple[int, list[str]]]]:
    """(delimiter, iterator of (start_line, stripped fields)) over the non-blank rows of a table.

    The delimiter is a tab if the first non-blank line has one, else a comma.
    """
    first = _first_content_line(lines, path, what)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # a sequence cell may be a whole genome
    delimiter = "\t" if "\t" in first[1] else ","
    feed = _LineFeed(chain([first], lines))
    reader = csv.reader(feed, delimiter=delimiter)

    def rows() -> Iterator[tuple[int, list[str]]]:
        start = first[0]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise InputError(
                    f"{where(path, feed.line)}: malformed CSV ({err}); fix the quoting"
                ) from None
            fields = [cell.strip() for cell in row]
            if any(fields):
                yield start, fields
            start = feed.line + 1

    return delimiter, rows()


def _table_raw(
    lines: Iterator[tuple[int, str]], path: str | Path, lenient: bool, duplicates: set[str]
) -> Iterator[_Raw]:
    """Parse a sequence table into raw records (one per data row)."""
    delimiter, rows = _csv_rows(lines, path, "table rows")
    header_line, header = next(rows, (0, []))
    if not header:
        raise InputError(
            f"{where(path)}: no header line; the first line must name the columns, e.g. 'sequence,label'"
        )
    if len(header) >= 3 and header[0].isdigit() and header[1].isdigit():
        yield from _modlamp_rows(rows, header_line, header, path)
        return
    columns = _table_columns(header, header_line, path)
    seen = IdRegistry()
    count = 0
    for lineno, fields in rows:
        count += 1
        _check_width(fields, len(header), lineno, header_line, delimiter, path)
        if columns["id"] is None:
            rec_id = f"row{count}"
        else:
            rec_id = fields[columns["id"]]
            if not rec_id:
                raise InputError(f"{where(path, lineno)}: empty id; give every row an id")
            if _check_duplicate(rec_id, lineno, seen, path, lenient):
                duplicates.add(where(path, lineno))
        label = None if columns["label"] is None else (fields[columns["label"]] or None)
        yield _Raw(rec_id, label, lineno, [fields[columns["sequence"]]], [lineno], "position")
    if count == 0:
        raise InputError(f"{where(path, header_line)}: no data rows after the header; add rows")


def _table_columns(header: list[str], header_line: int, path: str | Path) -> dict[str, int | None]:
    """Find the sequence / label / id columns of a header (case-insensitive, any order)."""
    names = [name.lower() for name in header]
    for name in set(names):
        if names.count(name) > 1:
            raise InputError(f"{where(path, header_line)}: column {name!r} appears twice; rename one")

    def find(aliases: tuple[str, ...]) -> int | None:
        return next((names.index(a) for a in aliases if a in names), None)

    columns = {"sequence": find(_SEQUENCE_ALIASES), "label": find(_LABEL_ALIASES), "id": find(_ID_ALIASES)}
    if columns["sequence"] is None:
        raise InputError(
            f"{where(path, header_line)}: no 'sequence' column in the header {header!r}; the first line must "
            "name the columns, e.g. 'sequence,label' or 'id,sequence,label' (or the modlamp line "
            "'n_samples,n_features,name0,name1')"
        )
    return columns


def _check_width(
    fields: list[str], width: int, lineno: int, header_line: int, delimiter: str, path: str | Path
) -> None:
    if len(fields) != width:
        sep = "tab" if delimiter == "\t" else "comma"
        raise InputError(
            f"{where(path, lineno)}: expected {width} {sep}-separated columns (as in the header at line "
            f"{header_line}), got {len(fields)}; fix the row, or quote a field that contains a {sep}"
        )


def _modlamp_rows(
    rows: Iterator[tuple[int, list[str]]], header_line: int, header: list[str], path: str | Path
) -> Iterator[_Raw]:
    """Rows `sequence,int_label` of a modlamp table; label i maps to the i-th class name."""
    names = header[2:]
    count = 0
    for lineno, fields in rows:
        count += 1
        _check_width(fields, 2, lineno, header_line, ",", path)
        index = fields[1]
        if not index.isdigit() or int(index) >= len(names):
            raise InputError(
                f"{where(path, lineno)}: label {index!r} is not a class index 0..{len(names) - 1} "
                f"(classes {names} from line {header_line}); fix the label"
            )
        yield _Raw(f"row{count}", names[int(index)], lineno, [fields[0]], [lineno], "position")
    if count != int(header[0]):
        log.warning("%s: header says %s samples, read %d", where(path, header_line), header[0], count)
    if count == 0:
        raise InputError(f"{where(path, header_line)}: no data rows after the header; add rows")


# --------------------------------------------------------------------------- label tables


def read_label_table(path: str | Path) -> dict[str, str]:
    """Read `id<TAB>label` (or `id,label`) lines, with an optional `id,label` header, into a dict."""
    return {rec_id: label for rec_id, (label, _) in _label_entries(path).items()}


def _label_entries(path: str | Path) -> dict[str, tuple[str, int]]:
    """id -> (label, line number) from a label table; malformed lines raise InputError."""
    entries: dict[str, tuple[str, int]] = {}
    with open_text(path) as fh:
        delimiter, rows = _csv_rows(_numbered_lines(fh, path), path, "id/label lines")
        for number, (lineno, fields) in enumerate(rows):
            if number == 0 and [f.lower() for f in fields] == ["id", "label"]:
                continue
            loc = where(path, lineno)
            if len(fields) != 2 or not all(fields):
                sep = "tab" if delimiter == "\t" else "comma"
                raise InputError(
                    f"{loc}: expected 2 {sep}-separated fields (id, label), got {fields!r}; fix the line"
                )
            rec_id, label = fields
            if rec_id in entries:
                first = entries[rec_id][1]
                raise InputError(
                    f"{loc}: duplicate id {rec_id!r} (first at line {first}); keep one line per id"
                )
            entries[rec_id] = (label, lineno)
    if not entries:
        raise InputError(f"{where(path)}: no id/label lines; give lines 'id<TAB>label'")
    return entries


def _join_labels(
    records: Iterator[Record], entries: dict[str, tuple[str, int]], label_path: str, source: str
) -> Iterator[Record]:
    """Give each record the label of its id; unlabelled records or unused labels raise at the end."""
    used: set[str] = set()
    for rec in records:
        entry = entries.get(rec.id)
        if entry is None:
            _raise_unlabelled(rec, records, entries, len(used), label_path, source)
        label, line = entry
        if rec.label is not None and rec.label != label:
            raise InputError(
                f"{rec.where}: record {rec.id!r} has label {rec.label!r} in the input but {label!r} at "
                f"{where(label_path, line)}; remove one of the two labels or make them agree"
            )
        used.add(rec.id)
        yield dataclasses.replace(rec, label=label)
    unused = [rec_id for rec_id in entries if rec_id not in used]
    if unused:
        raise InputError(
            f"{label_path}: {len(unused)} id(s) have no sequence in {source} (first: {_ids(unused)}); "
            f"{len(used)} matched, {len(unused)} unmatched; check the ids (a FASTA id is the first word "
            "after '>') or remove those lines"
        )


def _raise_unlabelled(
    first: Record,
    rest: Iterator[Record],
    entries: dict[str, tuple[str, int]],
    matched: int,
    label_path: str,
    source: str,
) -> None:
    """Count the records without a label (reading on to the end) and raise one InputError."""
    missing = [first.id]
    count = 1
    for rec in rest:
        if rec.id in entries:
            matched += 1
        else:
            count += 1
            if len(missing) < SHOW_IDS:
                missing.append(rec.id)
    raise InputError(
        f"{first.where}: {count} record(s) have no label in {label_path} (first: {_ids(missing)}); "
        f"{matched} of {matched + count} records matched; add those ids to the label table or remove "
        "the records"
    )


def _ids(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:SHOW_IDS])
    return shown + (", ..." if len(ids) > SHOW_IDS else "")


# --------------------------------------------------------------------------- BED + genome


def read_bed(
    bed_path: str | Path,
    genome_path: str | Path,
    *,
    label_column: int | None = None,
    alphabet: str = "dna",
    lenient: bool = False,
) -> Iterator[Record]:
    """Stream the intervals of a BED file (0-based, half-open) as genome sequences via pyfaidx.

    Strand '-' (column 6) gives the reverse complement; id = name (column 4) unless absent or '.',
    else `chrom:start-end(strand)`; label from the 1-based `label_column`.
    """
    if alphabet not in ("dna", "auto"):
        raise InputError(f"alphabet: got {alphabet!r} with BED input; a genome is DNA: use 'dna'")
    if label_column is not None and label_column < 1:
        raise InputError(f"label column: got {label_column}; give a 1-based BED column number, e.g. 4")
    genome = _open_genome(genome_path)
    try:
        seen = IdRegistry()
        with open_text(bed_path) as fh:
            for lineno, line in _numbered_lines(fh, bed_path):
                fields = _bed_fields(line)
                if fields is not None:
                    yield _bed_record(
                        fields, lineno, bed_path, genome, genome_path, label_column, seen, lenient
                    )
    finally:
        genome.close()


def _bed_fields(line: str) -> list[str] | None:
    """Split a BED line into fields; None for blank, comment, track and browser lines."""
    text = line.strip()
    if not text or text.startswith(("#", "track", "browser")):
        return None
    return [cell.strip() for cell in text.split("\t")] if "\t" in text else text.split()


def _bed_record(
    fields: list[str],
    lineno: int,
    bed_path: str | Path,
    genome: Any,  # pyfaidx.Fasta
    genome_path: str | Path,
    label_column: int | None,
    seen: IdRegistry,
    lenient: bool,
) -> Record:
    """One BED line -> Record; every problem names bed:line."""
    loc = where(bed_path, lineno)
    chrom, start, end = _bed_interval(fields, loc, genome, genome_path)
    strand = fields[5] if len(fields) >= 6 else "."
    if strand not in ("+", "-", "."):
        raise InputError(f"{loc}: strand (column 6) is {strand!r}; allowed: '+', '-', '.'")
    name = fields[3] if len(fields) >= 4 else "."
    rec_id = name if name not in ("", ".") else f"{chrom}:{start}-{end}({strand})"
    flags: tuple[str, ...] = (
        ("duplicate_id",) if _check_duplicate(rec_id, lineno, seen, bed_path, lenient) else ()
    )
    label = None
    if label_column is not None:
        if label_column > len(fields):
            raise InputError(
                f"{loc}: label column {label_column} asked for, but the line has {len(fields)} columns; "
                "fix the line or the label column"
            )
        label = fields[label_column - 1]
    seq = genome[chrom][start:end]
    if strand == "-":
        seq = reverse_complement(seq)
    try:
        seq, found = _normalize(seq, "dna", False)
    except _BadChar as bad:
        message = bad.message(
            f"{loc}: genome sequence of {rec_id!r}", f"position {bad.pos + 1} of the interval"
        )
        if not lenient:
            raise InputError(message) from None
        log.warning("%s (kept with an empty sequence, flag 'invalid_chars')", message)
        return Record(rec_id, "", label, loc, (chrom, start, end, strand), ("invalid_chars", *flags))
    return Record(rec_id, seq, label, loc, (chrom, start, end, strand), found + flags)


def _bed_interval(fields: list[str], loc: str, genome: Any, genome_path: str | Path) -> tuple[str, int, int]:
    """Validate chrom/start/end of a BED line against the genome."""
    if len(fields) < 3:
        raise InputError(
            f"{loc}: expected at least 3 tab-separated columns (chrom, start, end), got {len(fields)}; "
            "a BED line is chrom<TAB>start<TAB>end[<TAB>name<TAB>score<TAB>strand]"
        )
    chrom = fields[0]
    start, end = (_bed_int(text, column, loc) for text, column in ((fields[1], "start"), (fields[2], "end")))
    if start >= end:
        raise InputError(
            f"{loc}: start {start} must be < end {end} (BED is 0-based, half-open: the first base is "
            "'0<TAB>1'); fix or remove the line"
        )
    if chrom not in genome:
        names = list(genome.keys())
        shown = ", ".join(names[:SHOW_IDS]) + (", ..." if len(names) > SHOW_IDS else "")
        raise InputError(
            f"{loc}: unknown chromosome {chrom!r}: not in {genome_path} (which has {shown}); "
            "check the naming (e.g. 'chr1' vs '1') or the genome"
        )
    length = len(genome[chrom])
    if end > length:
        raise InputError(
            f"{loc}: end {end} is past the end of {chrom} ({length} bp in {genome_path}); "
            "fix the interval or use the genome build the BED was made for"
        )
    return chrom, start, end


def _bed_int(text: str, column: str, loc: str) -> int:
    if not text.isdigit():
        raise InputError(f"{loc}: {column} {text!r} is not a non-negative integer; fix the line")
    return int(text)


def _open_genome(genome_path: str | Path) -> Any:
    """Open a (b)gzip-or-plain genome FASTA with pyfaidx (which writes `<genome>.fai` beside it)."""
    path = Path(genome_path)
    if str(genome_path) == "-" or not path.is_file():
        raise InputError(f"{genome_path}: genome not found; give the path of a FASTA file (not '-')")
    with open(path, "rb") as fh:
        head = fh.read(18)
    kind = compression_of(head)
    if kind == "gzip" and not (len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC"):
        raise InputError(
            f"{path}: genome is plain gzip, but random access needs bgzip (BGZF); run "
            f"`gunzip -c {path} | bgzip > {path.with_suffix('.bgz')}` and pass that, or decompress it"
        )
    if kind not in (None, "gzip") or (kind == "gzip" and not path.name.lower().endswith((".gz", ".bgz"))):
        raise InputError(
            f"{path}: genome is {kind}-compressed; decompress it, or bgzip it to a name ending .gz"
        )
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=True)
    except PermissionError as err:
        raise InputError(
            f"{path}: cannot index the genome ({err}); pyfaidx writes {path}.fai beside it: "
            "make that folder writable or copy the genome"
        ) from None
    except (pyfaidx.FastaIndexingError, ValueError, OSError) as err:  # ValueError: duplicate names
        raise InputError(
            f"{path}: cannot index the genome ({err}); fix the FASTA (equal line lengths within a "
            "record, unique names)"
        ) from None


# --------------------------------------------------------------------------- one entry point


def read_records(spec: InputSpec) -> Iterator[Record]:
    """The single entry point for finetune/predict: records from a FASTA/table, class files or BED,
    optionally joined to a label table. Flag combinations are checked now; files when iterated."""
    _check_spec(spec)
    if spec.classes:
        records = _read_classes(spec)
    elif spec.bed is not None:
        records = read_bed(
            spec.bed,
            spec.genome,
            label_column=spec.label_column,
            alphabet=spec.alphabet,
            lenient=spec.lenient,
        )
    else:
        records = _read_path(spec)
    if spec.labels is not None:
        source = spec.path or spec.bed
        records = _join_labels_lazily(records, spec.labels, str(source))
    return records


def _join_labels_lazily(records: Iterator[Record], label_path: str, source: str) -> Iterator[Record]:
    yield from _join_labels(records, _label_entries(label_path), label_path, source)


def _check_spec(spec: InputSpec) -> None:
    given = [
        name for name, value in (("path", spec.path), ("classes", spec.classes), ("bed", spec.bed)) if value
    ]
    if len(given) != 1:
        raise InputError(
            f"input: got {given or 'nothing'}; give exactly one of: an input file, per-class FASTA files, "
            "or a BED file with a genome"
        )
    if spec.alphabet not in ALPHABETS:
        raise InputError(f"alphabet: got {spec.alphabet!r}; allowed: {', '.join(ALPHABETS)}")
    if (spec.bed is None) != (spec.genome is None):
        raise InputError(
            "bed/genome: a BED file needs a genome FASTA and a genome needs a BED file; give both"
        )
    if spec.label_column is not None and spec.bed is None:
        raise InputError(
            "label column: only applies to BED input; use a label table or header labels instead"
        )
    if spec.classes and spec.labels is not None:
        raise InputError("labels: per-class files already give the labels; drop the label table")
    names = [label for label, _ in spec.classes]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise InputError(f"classes: got labels {names}; each class needs a distinct, non-empty label")


def _read_path(spec: InputSpec) -> Iterator[Record]:
    """A FASTA or a table (told by the first line, or a FASTA file name) from `spec.path`."""
    path = spec.path
    with open_text(path) as fh:
        lines = _numbered_lines(fh, path)
        first = _first_content_line(lines, path, "records")
        lines = chain([first], lines)
        duplicates: set[str] = set()
        if fmt := sniff_format(first[1]):
            raws = _bio_raw(lines, path, fmt, spec.lenient, duplicates)
        elif first[1].startswith(">") or _looks_like_fasta_name(path):
            raws = _fasta_raw(lines, path, spec.lenient, duplicates)
        else:
            raws = _table_raw(lines, path, spec.lenient, duplicates)
        records = _normalized(raws, path, spec.alphabet, spec.rna, spec.lenient)
        yield from _flag_duplicates(records, duplicates)


def _bio_raw(
    lines: Iterator[tuple[int, str]], path: str | Path, fmt: str, lenient: bool, duplicates: set[str]
) -> Iterator[_Raw]:
    """GenBank/EMBL/FASTQ records (parsed by Biopython) as raw records, duplicate ids checked."""
    seen = IdRegistry()
    for rec_id, label, line, seq in bio_raws(lines, path, fmt):
        if _check_duplicate(rec_id, line, seen, path, lenient):
            duplicates.add(where(path, line))
        yield _Raw(rec_id, label, line, [seq], [line], position="position")


def _looks_like_fasta_name(path: str | Path) -> bool:
    name = str(path).lower().removesuffix(".gz")
    return name.endswith(FASTA_SUFFIXES)


def _read_classes(spec: InputSpec) -> Iterator[Record]:
    """Records of one FASTA per class, labelled by class, files in the given order."""
    alphabet = spec.alphabet
    seen: dict[str, str] = {}
    for label, path in spec.classes:
        resolved: list[str] = []
        with open_text(path) as fh:
            duplicates: set[str] = set()
            raws = _fasta_raw(_numbered_lines(fh, path), path, spec.lenient, duplicates)
            records = _normalized(raws, path, alphabet, spec.rna, spec.lenient, resolved.append)
            for rec in _flag_duplicates(records, duplicates):
                if rec.label is not None and rec.label != label:
                    raise InputError(
                        f"{rec.where}: record {rec.id!r} has label {rec.label!r} in its header but is in the "
                        f"file of class {label!r}; remove the header label or move the record"
                    )
                flags = rec.flags
                if rec.id in seen and "duplicate_id" not in flags:
                    message = (
                        f"{rec.where}: duplicate id {rec.id!r} (also at {seen[rec.id]}); ids must be unique "
                        "across the class files: rename one"
                    )
                    if not spec.lenient:
                        raise InputError(message)
                    log.warning("%s (kept, flag 'duplicate_id')", message)
                    flags = (*flags, "duplicate_id")
                seen.setdefault(rec.id, rec.where)
                yield dataclasses.replace(rec, label=label, flags=flags)
        alphabet = resolved[0] if resolved else alphabet


# --------------------------------------------------------------------------- output


@contextmanager
def atomic_output(path: str | Path) -> Iterator[TextIO]:
    """Write text to `path` all-or-nothing: a temp file in the same folder, renamed on success and
    removed on error. '-' yields sys.stdout (flushed, not closed)."""
    if str(path) == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise InputError(f"{target}: output folder {folder} does not exist; create it first")
    with atomic_file(target) as fh:
        yield fh
