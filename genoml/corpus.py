"""The pretraining corpus: FASTA files cached as one flat uint8 file, split and sampled as windows.

`build_corpus_cache(files, alphabet, cache_dir) -> (data path, index)` streams every record once into
`corpus-KEY.bin` (one byte per base or residue) + `corpus-KEY.json`; `Corpus(data path, index, window=,
eval_fraction=)` memory-maps it, splits it into training and held-out `Segments` that never overlap, and
draws windows: `sample(rng) -> Window` one at a time, `sample_batch(rng, rows) -> WindowBatch` with
letters (B, W) uint8. A row's window depends only on the generator's seed and its row index.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genoml.alphabet import reverse_complement
from genoml.errors import InputError
from genoml.io import read_fasta
from genoml.outputs import atomic_file, file_sha256, write_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MAX_N_FRACTION = 0.5  # DNA windows with more N are redrawn (gaps in assemblies)
_N = ord("N")


@dataclass
class Segments:
    """Parallel arrays: record index, offset of the first base in the corpus file, length."""

    record: np.ndarray  # (S,) int64
    offset: np.ndarray  # (S,) int64
    length: np.ndarray  # (S,) int64

    def __len__(self) -> int:
        return len(self.record)

    @property
    def bases(self) -> int:
        return int(self.length.sum())


@dataclass
class Window:
    """One window drawn by `Corpus.sample`; `seq` is reverse-complemented on the "-" strand."""

    record: int
    start: int  # in the record
    strand: str  # "+" or "-"
    seq: str


@dataclass
class WindowBatch:
    """Windows drawn together: record index, start in the record, minus strand, letters (B, W), lengths (B,)."""

    record: np.ndarray
    start: np.ndarray
    minus: np.ndarray
    letters: np.ndarray
    length: np.ndarray

    def rows(self) -> list[np.ndarray]:
        return [self.letters[i, : self.length[i]] for i in range(len(self.length))]


class Corpus:
    """Memory-mapped sequences + index; train/held-out segments; seeded window sampling."""

    def __init__(self, data_path: Path, index: dict, *, window: int, eval_fraction: float):
        self.index = index
        self.alphabet: str = index["alphabet"]
        self.ids = [r[1] for r in index["records"]]
        self.offsets = np.asarray([r[2] for r in index["records"]], dtype=np.int64)
        self.lengths = np.asarray([r[3] for r in index["records"]], dtype=np.int64)
        total = int(self.lengths.sum())
        self.data = (
            np.memmap(data_path, dtype=np.uint8, mode="r", shape=(total,)) if total else np.zeros(0, np.uint8)
        )
        self._flat = np.asarray(self.data)  # plain ndarray view of the map (no memmap wrapping per slice)
        self.window = window
        self.by_position = self.alphabet == "dna"  # DNA: uniform over bases; protein: uniform over records
        self.train, self.heldout = self._split(eval_fraction)
        self._cum = {False: self._starts(self.train), True: self._starts(self.heldout)}

    def _starts(self, segs: Segments) -> np.ndarray:
        """Cumulative count of window starts per segment (DNA), used to draw a start uniformly."""
        return np.cumsum(np.maximum(segs.length - self.window + 1, 1))

    def _split(self, fraction: float) -> tuple[Segments, Segments]:
        """Tail of each record long enough (fraction x length >= window) held out; shorter records are
        held out whole when their sequence hash falls under `fraction` (identical sequences share a side)."""
        train: list[tuple[int, int, int]] = []
        held: list[tuple[int, int, int]] = []
        for i, (off, n) in enumerate(zip(self.offsets.tolist(), self.lengths.tolist(), strict=True)):
            tail = int(n * fraction)
            if self.by_position and tail >= self.window:
                train.append((i, off, n - tail))
                held.append((i, off + n - tail, tail))
            elif _hash_fraction(self.data[off : off + n]) < fraction:
                held.append((i, off, n))
            else:
                train.append((i, off, n))
        if not train or not held:
            side = "training" if not train else "held-out"
            raise InputError(
                f"pretrain: the {side} part of the corpus is empty ({len(self.ids)} records, "
                f"{int(self.lengths.sum()):,} bases, --eval-fraction {fraction}); give more or longer sequences "
                "or change --eval-fraction"
            )
        as_arrays = [
            Segments(*(np.asarray(c, dtype=np.int64) for c in zip(*rows, strict=True)))
            for rows in (train, held)
        ]
        return as_arrays[0], as_arrays[1]

    def text(self, offset: int, length: int) -> str:
        return self.data[offset : offset + length].tobytes().decode("ascii")

    def _draw(self, rng: np.random.Generator, heldout: bool) -> tuple[int, int, int, str]:
        """(segment, start in segment, length, strand) of one window; the rng draws of `sample`."""
        segs = self.heldout if heldout else self.train
        weights = self._cum[heldout]
        for _ in range(10):
            if self.by_position:
                u = int(rng.integers(int(weights[-1])))
                s = int(np.searchsorted(weights, u, side="right"))
                start = u - (int(weights[s - 1]) if s else 0)
            else:
                s = int(rng.integers(len(segs)))
                start = int(rng.integers(max(1, int(segs.length[s]) - self.window + 1)))
            n = min(self.window, int(segs.length[s]) - start)
            strand = "+"
            if self.alphabet == "dna":
                strand = "-" if rng.integers(2) else "+"
                off = int(segs.offset[s]) + start
                if np.count_nonzero(self.data[off : off + n] == _N) > MAX_N_FRACTION * n:
                    continue
            break
        return s, start, n, strand

    def sample(self, rng: np.random.Generator, heldout: bool = False) -> Window:
        """One window: DNA uniform over start positions (random strand), protein uniform over records
        (random crop). DNA windows that are mostly N are redrawn (up to 10 times)."""
        segs = self.heldout if heldout else self.train
        s, start, n, strand = self._draw(rng, heldout)
        seq = self.text(int(segs.offset[s]) + start, n)
        rec = int(segs.record[s])
        if strand == "-":
            seq = reverse_complement(seq)
        return Window(rec, int(segs.offset[s]) - int(self.offsets[rec]) + start, strand, seq)

    def sample_batch(
        self, rng: np.random.Generator, rows: int, take=None, heldout: bool = False
    ) -> WindowBatch:
        """`rows` windows drawn at once from one generator (the rules of `sample`), of which the rows `take`
        (default all) are gathered: a row's window depends only on the generator's seed and its row index.
        DNA: uniform start over all positions, random strand, redrawn (up to 10 candidates) when more than
        half N; protein: uniform record, uniform crop."""
        segs = self.heldout if heldout else self.train
        weights = self._cum[heldout]
        tries = 10
        if self.by_position:
            u = rng.integers(int(weights[-1]), size=(tries, rows))  # (T, R)
            s = np.searchsorted(weights, u, side="right")
            start = u - np.where(s > 0, weights[np.maximum(s - 1, 0)], 0)
        else:
            s = rng.integers(len(segs), size=(tries, rows))
            room = np.maximum(1, segs.length[s] - self.window + 1)
            start = np.minimum((rng.random((tries, rows)) * room).astype(np.int64), room - 1)
        minus = (
            rng.integers(2, size=(tries, rows)).astype(bool)
            if self.alphabet == "dna"
            else np.zeros((tries, rows), dtype=bool)
        )
        cols = np.arange(rows) if take is None else np.asarray(take, dtype=np.int64)
        s, start, minus = s[:, cols], start[:, cols], minus[:, cols]  # (T, B)
        n = np.minimum(self.window, segs.length[s] - start)  # (T, B)
        off = segs.offset[s] + start  # (T, B) corpus offset of each candidate
        letters, valid = self._gather(off[0], n[0], minus[0])  # (B, W): first candidates
        pick = np.zeros(len(cols), dtype=np.int64)  # candidate used per row
        if self.alphabet == "dna":
            letters, pick = self._redraw_mostly_n(letters, valid, off, n, minus)
        r = np.arange(len(cols))
        s, start, minus, n = s[pick, r], start[pick, r], minus[pick, r], n[pick, r]
        letters = letters[:, : int(n.max()) if len(n) else 0]
        rec = segs.record[s]
        return WindowBatch(rec, segs.offset[s] - self.offsets[rec] + start, minus, letters, n)

    def _redraw_mostly_n(
        self, letters: np.ndarray, valid: np.ndarray, off: np.ndarray, n: np.ndarray, minus: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Replace rows of `letters` (B, W) that are more than half N by the next candidate of the (T, B)
        `off`/`n`/`minus` that is not (the last candidate whatever its N content). Returns the letters
        (B, W') and the candidate used per row (B,)."""
        tries, rows = off.shape
        pick = np.zeros(rows, dtype=np.int64)
        todo = np.flatnonzero(np.count_nonzero((letters == _N) & valid, axis=1) > MAX_N_FRACTION * n[0])
        for t in range(1, tries):
            if not len(todo):
                break
            pick[todo] = t
            cand, _ = self._gather(off[t, todo], n[t, todo])
            todo = todo[np.count_nonzero(cand == _N, axis=1) > MAX_N_FRACTION * n[t, todo]]
        if pick.any():
            n_new = n[pick, np.arange(rows)]
            redo = np.flatnonzero(pick)
            again, _ = self._gather(off[pick[redo], redo], n_new[redo], minus[pick[redo], redo])
            width = max(letters.shape[1], again.shape[1])
            letters = np.pad(letters, ((0, 0), (0, width - letters.shape[1])))
            letters[redo] = np.pad(again, ((0, 0), (0, width - again.shape[1])))
        return letters, pick

    def _gather(self, off: np.ndarray, n: np.ndarray, minus: np.ndarray | None = None):
        """Letters (B, W) uint8 of windows at corpus offsets `off` (B,) of lengths `n` (B,), zero past n;
        reverse-complemented where `minus`. Returns (letters, valid (B, W) bool)."""
        W = int(n.max()) if len(n) else 0
        j = np.arange(W)[None, :]  # (1, W)
        valid = j < n[:, None]  # (B, W)
        pos = j if minus is None else np.where(minus[:, None], n[:, None] - 1 - j, j)
        idx = np.where(valid, off[:, None] + pos, 0)
        letters = self._flat[idx]  # (B, W)
        if minus is not None and minus.any():
            letters = np.where(minus[:, None], complement_table()[letters], letters)
        return np.where(valid, letters, 0).astype(np.uint8), valid


@functools.cache
def complement_table() -> np.ndarray:
    """(256,) uint8: byte -> its complement, as `reverse_complement` maps letters."""
    lut = np.arange(256, dtype=np.uint8)
    for b in range(128):
        c = reverse_complement(chr(b))
        if len(c) == 1 and ord(c) < 256:
            lut[b] = ord(c)
    return lut


def _hash_fraction(data: np.ndarray) -> float:
    """A stable number in [0, 1) from a sequence's bytes."""
    digest = hashlib.blake2b(data.tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _cache_key(files: list[Path], alphabet: str) -> str:
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha1(json.dumps([CACHE_VERSION, alphabet, stats]).encode()).hexdigest()[:16]


def build_corpus_cache(files: list[Path], alphabet: str, cache_dir: Path) -> tuple[Path, dict]:
    """Stream every FASTA record into cache_dir/corpus-KEY.bin (one byte per base) + .json index.

    Reused when inputs (path, size, mtime) and alphabet are unchanged; written atomically.
    """
    key = _cache_key(files, alphabet)
    data_path, index_path = cache_dir / f"corpus-{key}.bin", cache_dir / f"corpus-{key}.json"
    if index_path.is_file() and data_path.is_file():
        return data_path, json.loads(index_path.read_text())
    cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with atomic_file(data_path, "wb") as out:
        records, sources = _write_records(files, alphabet, out)
    index = {"version": CACHE_VERSION, "alphabet": alphabet, "files": sources, "records": records}
    write_atomic(index_path, json.dumps(index))
    log.info(
        "corpus: %d records, %s residues from %d files, indexed in %.1fs",
        len(records),
        f"{sum(r[3] for r in records):,}",
        len(files),
        time.time() - t0,
    )
    return data_path, index


def _write_records(files: list[Path], alphabet: str, out) -> tuple[list[list], list[dict]]:
    """Write the letters of every record of `files` to the binary stream `out`. Returns the index rows
    [file index, record id, offset, length] and one provenance entry per file."""
    records: list[list] = []
    sources: list[dict] = []
    offset = 0
    for fi, path in enumerate(files):
        n_before = len(records)
        for rec in read_fasta(path, alphabet=alphabet):
            records.append([fi, rec.id, offset, len(rec.seq)])
            out.write(rec.seq.encode("ascii"))
            offset += len(rec.seq)
        sources.append(
            {
                "path": str(path),
                "sha256": file_sha256(path),
                "bytes": path.stat().st_size,
                "records": len(records) - n_before,
                "residues": sum(r[3] for r in records[n_before:]),
            }
        )
    return records, sources
