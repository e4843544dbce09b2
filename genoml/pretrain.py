"""Masked-LM pretraining from FASTA files: `run_pretrain(PretrainConfig) -> output folder`.

The corpus is streamed once (rank 0) into a flat uint8 file that every process memory-maps, so no
process holds the genomes in its own memory. Windows of `window` bases (both strands for DNA) or
residues are drawn from the training part of each record; a held-out part (the tail of long records,
whole short records chosen by sequence hash) never overlaps it. Row g of step s is drawn from
rng(seed, s, g) and rank r takes rows g = r, r + W, ...: the data of a step is the same on 1 or W
processes, ranks never share a row, and resume is exact. Output: a Hugging Face masked-LM folder +
tokenizer + `genoml.json` + `metrics.jsonl` + `loss.png`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genoml.config import PretrainConfig
from genoml.errors import InputError
from genoml.masking import MaskNoise, mask_tokens
from genoml.runs import write_meta

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DEBUG_SAMPLES_ENV = "GENOML_DEBUG_SAMPLES"  # set to 1: each rank logs the rows it drew to out/debug/
MAX_N_FRACTION = 0.5  # DNA windows with more N are redrawn (gaps in assemblies)
BPE_SAMPLE_LETTERS = 5_000_000  # letters of training windows a BPE vocabulary is learned from


# ---------------------------------------------------------------- corpus


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
    record: int
    start: int  # in the record
    strand: str  # "+" or "-"
    seq: str


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
            from genoml.io import reverse_complement

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
        pick = np.zeros(len(cols), dtype=np.int64)  # candidate used per row
        letters, valid = self._gather(off[0], n[0], minus[0])  # (B, W): first candidates
        if (
            self.alphabet == "dna"
        ):  # redraw mostly-N windows; the last candidate is used whatever its N content
            todo = np.flatnonzero(np.count_nonzero((letters == _N) & valid, axis=1) > MAX_N_FRACTION * n[0])
            for t in range(1, tries):
                if not len(todo):
                    break
                pick[todo] = t
                cand, _ = self._gather(off[t, todo], n[t, todo])
                todo = todo[np.count_nonzero(cand == _N, axis=1) > MAX_N_FRACTION * n[t, todo]]
            if pick.any():
                r = np.arange(len(cols))
                n_new = n[pick, r]
                redo = np.flatnonzero(pick)
                again, _ = self._gather(off[pick[redo], redo], n_new[redo], minus[pick[redo], redo])
                width = max(letters.shape[1], again.shape[1])
                letters = np.pad(letters, ((0, 0), (0, width - letters.shape[1])))
                letters[redo] = np.pad(again, ((0, 0), (0, width - again.shape[1])))
        r = np.arange(len(cols))
        s, start, minus, n = s[pick, r], start[pick, r], minus[pick, r], n[pick, r]
        letters = letters[:, : int(n.max()) if len(n) else 0]
        rec = segs.record[s]
        return WindowBatch(rec, segs.offset[s] - self.offsets[rec] + start, minus, letters, n)

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
            letters = np.where(minus[:, None], _complement_table()[letters], letters)
        return np.where(valid, letters, 0).astype(np.uint8), valid


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


_N = ord("N")


def _complement_table() -> np.ndarray:
    """(256,) uint8: byte -> its complement, as genoml.io.reverse_complement maps letters."""
    global _COMPLEMENT_LUT
    if _COMPLEMENT_LUT is None:
        from genoml.io import reverse_complement

        lut = np.arange(256, dtype=np.uint8)
        for b in range(128):
            c = reverse_complement(chr(b))
            if len(c) == 1 and ord(c) < 256:
                lut[b] = ord(c)
        _COMPLEMENT_LUT = lut
    return _COMPLEMENT_LUT


_COMPLEMENT_LUT: np.ndarray | None = None


def _hash_fraction(data: np.ndarray) -> float:
    """A stable number in [0, 1) from a sequence's bytes."""
    digest = hashlib.blake2b(data.tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_key(files: list[Path], alphabet: str) -> str:
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha1(json.dumps([CACHE_VERSION, alphabet, stats]).encode()).hexdigest()[:16]


def build_corpus_cache(files: list[Path], alphabet: str, cache_dir: Path) -> tuple[Path, dict]:
    """Stream every FASTA record into cache_dir/corpus-KEY.bin (one byte per base) + .json index.

    Reused when inputs (path, size, mtime) and alphabet are unchanged; written atomically.
    """
    from genoml.io import read_fasta

    key = _cache_key(files, alphabet)
    data_path, index_path = cache_dir / f"corpus-{key}.bin", cache_dir / f"corpus-{key}.json"
    if index_path.is_file() and data_path.is_file():
        return data_path, json.loads(index_path.read_text())
    cache_dir.mkdir(parents=True, exist_ok=True)
    records, sources, offset = [], [], 0
    t0 = time.time()
    with open(data_path.with_suffix(".bin.tmp"), "wb") as out:
        for fi, path in enumerate(files):
            n_before = len(records)
            for rec in read_fasta(path, alphabet=alphabet):
                records.append([fi, rec.id, offset, len(rec.seq)])
                out.write(rec.seq.encode("ascii"))
                offset += len(rec.seq)
            count = len(records) - n_before
            size = sum(r[3] for r in records[n_before:])
            sources.append(
                {
                    "path": str(path),
                    "sha256": _sha256(path),
                    "bytes": path.stat().st_size,
                    "records": count,
                    "residues": size,
                }
            )
    index = {"version": CACHE_VERSION, "alphabet": alphabet, "files": sources, "records": records}
    os.replace(data_path.with_suffix(".bin.tmp"), data_path)
    index_path.with_suffix(".json.tmp").write_text(json.dumps(index))
    os.replace(index_path.with_suffix(".json.tmp"), index_path)
    log.info(
        "corpus: %d records, %s residues from %d files, indexed in %.1fs",
        len(records),
        f"{offset:,}",
        len(files),
        time.time() - t0,
    )
    return data_path, index


# ---------------------------------------------------------------- batches


class MaskedBatcher:
    """Windows -> tokenized, padded, masked tensors: `train_batch(micro, rank, world)` -> dict of (B, L) tensors.

    Determinism: the window of row g of step s comes from rng(seed, s, g); the masking noise of the whole
    global micro-batch comes from one torch generator seeded by (seed, s, micro index) and each process
    takes its rows' noise, so a row's tokens and mask depend only on (seed, step, row): the same on 1 or W
    processes, and after a resume. Char / k-mer / residue tokenizers encode the batch as one (B, W) byte
    matrix through lookup tables (numpy); other tokenizers (BPE, nt-kmer) encode row by row.
    """

    def __init__(
        self, corpus: Corpus, tokenizer, max_tokens: int, cfg: PretrainConfig, debug_dir: Path | None
    ):
        self.corpus, self.tok, self.max_tokens, self.cfg = corpus, tokenizer, max_tokens, cfg
        self.span = int(getattr(tokenizer, "k", 1)) if tokenizer.spec.startswith("kmer:") else 1
        unpredictable = set(tokenizer.special_ids)
        if tokenizer.alphabet == "dna" and "N" in tokenizer.vocab:
            unpredictable.add(tokenizer.vocab.index("N"))
        self.targets = [i for i in range(len(tokenizer)) if i not in unpredictable]
        self._targets = torch.as_tensor(self.targets, dtype=torch.long)
        self._unpredictable = torch.zeros(len(tokenizer), dtype=torch.bool)
        self._unpredictable[sorted(unpredictable)] = True
        self.rows_per_micro = cfg.batch_size // cfg.grad_accum
        self.debug_dir = debug_dir
        self.encoder = ArrayEncoder.for_tokenizer(tokenizer)

    def train_batch(self, micro: int, rank: int, world: int) -> dict:
        """Micro-batch `micro` (= step x grad_accum + k) for process `rank` of `world`: its rows of the global
        micro-batch, rows g = rank, rank + world, ... -> input_ids, attention_mask, labels (B, L)."""
        step, k = divmod(micro, self.cfg.grad_accum)
        rows = list(range(rank, self.rows_per_micro, world))
        key = (self.cfg.seed, step, k)
        win = self.corpus.sample_batch(
            np.random.default_rng([*key, 0x77696E]), self.rows_per_micro, take=rows
        )
        if self.debug_dir is not None:
            with open(self.debug_dir / f"samples-rank{rank}.tsv", "a") as f:
                f.writelines(
                    f"{step}\t{k * self.rows_per_micro + g}\t{win.record[i]}\t{win.start[i]}\t"
                    f"{'-' if win.minus[i] else '+'}\n"
                    for i, g in enumerate(rows)
                )
        return self._batch(win.rows(), self._noise(*key), rows)

    def _noise(self, *key: int, rows: int | None = None) -> MaskNoise:
        """Masking noise (rows_per_micro, max_tokens) of one global micro-batch, from one generator."""
        seed = int(np.random.SeedSequence([*key, 0x6D61736B]).generate_state(1, np.uint64)[0] >> 1)
        g = torch.Generator().manual_seed(seed)
        return MaskNoise.draw((rows or self.rows_per_micro, self.max_tokens), g)

    def _batch(
        self, bases: list[np.ndarray], noise: MaskNoise, noise_rows: list[int], mask_only: bool = False
    ) -> dict:
        """Letters of each row (uint8 arrays) -> input_ids, attention_mask, labels: (B, L), L the longest row."""
        ids, special, lengths = self.encoder.encode(bases, self.max_tokens)  # (B, L) each, (B,)
        L = ids.shape[1]
        attention = (torch.arange(L)[None, :] < lengths[:, None]).long()  # (B, L)
        special |= self._unpredictable[ids]
        masked, labels = mask_tokens(
            ids,
            special,
            mask_id=self.tok.mask_id,
            vocab_size=len(self.tok),
            rate=self.cfg.mask_rate,
            span=self.span,
            random_ids=self._targets,
            mask_fraction=1.0 if mask_only else 0.8,
            random_fraction=0.0 if mask_only else 0.1,
            noise=noise.take(noise_rows, L),
        )
        return {"input_ids": masked, "attention_mask": attention, "labels": labels}

    def collate(self, seqs: list[str], key: tuple[int, ...], mask_only: bool = False) -> dict:
        """Sequences -> a masked batch (as `train_batch` builds it), noise seeded by `key`. `mask_only`: every
        target becomes [MASK] (held-out set), else 80/10/10."""
        bases = [np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8) for s in seqs]
        noise = self._noise(*key, rows=len(seqs))
        return self._batch(bases, noise, list(range(len(seqs))), mask_only=mask_only)

    def heldout_batches(self, n: int, batch: int = 64) -> list[dict]:
        """A fixed held-out set: n windows and their masks (every target [MASK]), apart from the training stream."""
        out = []
        for i in range(0, n, batch):
            rows = min(batch, n - i)
            key = (self.cfg.seed, 2**32 - 1, i)
            win = self.corpus.sample_batch(np.random.default_rng([*key, 0x77696E]), rows, heldout=True)
            out.append(
                self._batch(win.rows(), self._noise(*key, rows=rows), list(range(rows)), mask_only=True)
            )
        return out


class ArrayEncoder:
    """Batch tokenization of letter arrays as numpy operations, identical to `tokenizer.encode(seq, max_tokens)`.

    encode(list of (n_i,) uint8 arrays, max_tokens) -> ids (B, L) long, special (B, L) bool, lengths (B,) long,
    padded with the tokenizer's pad id (special=True on padding). Char/residue tokenizers: one 256-entry
    table; DNABERT k-mers: base codes combined k at a time, [UNK] for k-mers with a non-ACGT letter.
    Anything else (BPE, nt-kmer, HF) falls back to `tokenizer.encode` per row.
    """

    def __init__(self, tokenizer, table: np.ndarray | None, k: int = 0):
        self.tok, self.table, self.k = tokenizer, table, k

    @classmethod
    def for_tokenizer(cls, tok) -> ArrayEncoder:
        from genoml.tokenizers import KmerTokenizer, _ResidueTokenizer

        if isinstance(tok, _ResidueTokenizer):
            table = np.frombuffer(tok._table, dtype=np.uint8).astype(np.int64)
            upper = np.arange(256)
            upper[ord("a") : ord("z") + 1] -= 32  # encode() upper-cases ASCII first
            return cls(tok, table[upper])
        if isinstance(tok, KmerTokenizer):
            lut = tok._lut.copy()
            lut[ord("a") : ord("z") + 1] = tok._lut[ord("A") : ord("Z") + 1]
            return cls(tok, lut, tok.k)
        return cls(tok, None)

    def encode(
        self, rows: list[np.ndarray], max_tokens: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tok = self.tok
        if self.table is None:
            encs = [tok.encode(r.tobytes().decode("ascii", "replace"), max_tokens) for r in rows]
            return _pad(
                [np.asarray(e.ids) for e in encs], [np.asarray(e.special_mask) for e in encs], tok.pad_id
            )
        limit = max_tokens - tok.n_special
        k = self.k
        keep = limit + k - 1 if k else limit  # letters used per row
        n = np.asarray([min(len(r), keep) for r in rows])  # (B,)
        W = int(n.max()) if len(rows) else 0
        letters = np.zeros((len(rows), max(W, 1)), dtype=np.uint8)  # (B, W)
        for i, r in enumerate(rows):
            letters[i, : n[i]] = r[: n[i]]
        if k == 0:
            content = self.table[letters]  # (B, W)
            count = n
        else:
            codes = self.table[letters]  # (B, W) 0..3, 4 = not ACGT
            count = np.where(n >= k, n - k + 1, np.where(n > 0, 1, 0))  # short non-empty rows: one [UNK]
            width = max(int(count.max()) if len(rows) else 0, 1)
            m = max(W - k + 1, 1)
            content = np.zeros((len(rows), m), dtype=np.int64)
            bad = np.zeros((len(rows), m), dtype=bool)
            for j in range(k):
                part = codes[:, j : j + m] if W >= k else np.full((len(rows), m), 4)
                content = (content << 2) + np.minimum(part, 3)
                bad |= part == 4
            from genoml.tokenizers import BERT_SPECIALS

            content = np.where(bad, tok.unk_id, content + len(BERT_SPECIALS))
            content = (
                content[:, :width]
                if content.shape[1] >= width
                else np.pad(content, ((0, 0), (0, width - content.shape[1])))
            )
            content[(n > 0) & (n < k), 0] = tok.unk_id
        B, C = content.shape
        L = tok.n_prefix + int(count.max() if B else 0) + tok.n_suffix
        ids = np.full((B, L), tok.pad_id, dtype=np.int64)
        special = np.ones((B, L), dtype=bool)
        cols = np.arange(C)[None, :]
        inside = cols < count[:, None]  # (B, C) real content tokens
        p = tok.n_prefix
        ids[:, p : p + C][inside] = content[inside]
        special[:, p : p + C][inside] = False
        if tok.cls_id is not None:
            ids[:, 0] = tok.cls_id
        if tok.eos_id is not None:
            ids[np.arange(B), p + count] = tok.eos_id
        lengths = count + tok.n_special
        return torch.from_numpy(ids), torch.from_numpy(special), torch.from_numpy(lengths.astype(np.int64))


def _pad(ids: list[np.ndarray], special: list[np.ndarray], pad_id: int):
    L = max(len(x) for x in ids)
    out = np.full((len(ids), L), pad_id, dtype=np.int64)
    sp = np.ones((len(ids), L), dtype=bool)
    for r, (x, s) in enumerate(zip(ids, special, strict=True)):
        out[r, : len(x)] = x
        sp[r, : len(x)] = s
    lengths = np.asarray([len(x) for x in ids], dtype=np.int64)
    return torch.from_numpy(out), torch.from_numpy(sp), torch.from_numpy(lengths)


class Prefetcher:
    """Runs `get_batch(micro, rank, world)` for the next `depth` micro-steps in a background thread, so the
    training step does not wait for the batcher. `get_batch` must be a pure function of its arguments (the
    batcher is), so prefetched batches equal the ones computed on demand; an unexpected index (resume, a
    jump) restarts the stream there. With `pin` (CUDA) batches are in pinned memory, so the host-to-device
    copy does not block. An exception raised while preparing a batch is raised where that batch is asked for.
    `limit`: first micro index never prepared (the end of training).
    """

    def __init__(
        self, get_batch, *, depth: int = 2, limit: int | None = None, pin: bool = False, workers: int = 1
    ):
        import threading

        self.get_batch, self.depth, self.limit, self.pin = get_batch, max(1, depth), limit, pin
        self.workers = max(
            1, workers
        )  # threads preparing batches (numpy/torch release the GIL in their kernels)
        self._cv = threading.Condition()
        self._ready: dict[int, tuple[bool, object]] = {}
        self._gen = 0  # bumped on every restart: results of an older stream are dropped
        self._next: int | None = None  # next micro index the worker prepares
        self._want: int | None = None  # the index the consumer is expected to ask for next
        self._args: tuple[int, int] = (0, 1)
        self._stop = False
        self._threads: list[threading.Thread] = []
        self.wait_s = 0.0  # time the consumer spent waiting for batches

    def __call__(self, micro: int, rank: int, world: int) -> dict:
        import threading

        with self._cv:
            if not self._threads or self._want != micro or self._args != (rank, world):
                self._gen += 1
                self._ready.clear()
                self._next, self._args = micro, (rank, world)
                if not self._threads:
                    self._stop = False
                    self._threads = [
                        threading.Thread(target=self._work, name=f"genoml-batcher-{i}", daemon=True)
                        for i in range(self.workers)
                    ]
                    for t in self._threads:
                        t.start()
                self._cv.notify_all()
            self._want = micro + 1
            t0 = time.perf_counter()
            while micro not in self._ready:
                self._cv.wait()
            self.wait_s += time.perf_counter() - t0
            ok, value = self._ready.pop(micro)
            self._cv.notify_all()
        if not ok:
            self.close()
            raise value
        return value

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (
                    self._next is None
                    or len(self._ready) >= self.depth
                    or (self.limit is not None and self._next >= self.limit)
                ):
                    self._cv.wait()
                if self._stop:
                    return
                micro, (rank, world), gen = self._next, self._args, self._gen
                self._next += 1
            try:
                batch = self.get_batch(micro, rank, world)
                if self.pin:
                    batch = {n: v.pin_memory() if torch.is_tensor(v) else v for n, v in batch.items()}
                item = (True, batch)
            except BaseException as e:  # noqa: BLE001 - handed to the consumer and raised there
                item = (False, e)
            with self._cv:
                if gen == self._gen:
                    self._ready[micro] = item
                    if not item[0]:
                        self._next = None  # prepare nothing more until the consumer restarts the stream
                self._cv.notify_all()

    def close(self) -> None:
        """Stop the worker threads (each finishes the batch in progress)."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=30)
        with self._cv:
            self._ready.clear()


# ---------------------------------------------------------------- objective and evaluation


class MaskedLMObjective(nn.Module):
    """Wraps a HF *ForMaskedLM: logits only at masked positions (hidden states gathered before the LM head).

    forward(input_ids (B, L), attention_mask (B, L), labels (B, L)) -> (loss, logits (M, V), targets (M,)).
    """

    def __init__(self, mlm: nn.Module):
        super().__init__()
        self.mlm = mlm
        self.head_name = next(
            (n for n in ("cls", "lm_head") if isinstance(getattr(mlm, n, None), nn.Module)), None
        )

    def forward(self, input_ids, attention_mask, labels):
        chosen = labels != -100  # (B, L)
        if self.head_name is not None:
            hidden = self.mlm.base_model(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state  # (B, L, H)
            logits = getattr(self.mlm, self.head_name)(hidden[chosen])  # (M, V)
        else:
            logits = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits[chosen]  # (M, V)
        targets = labels[chosen]  # (M,)
        if targets.numel() == 0:
            return logits.sum() * 0.0, logits, targets
        return F.cross_entropy(logits.float(), targets), logits, targets


def evaluate_heldout(model: nn.Module, batches: list[dict]) -> dict:
    """Masked-token loss, perplexity and accuracy over the fixed held-out batches."""
    from genoml.device import autocast, model_device

    device = model_device(model)
    total_loss, correct, count = 0.0, 0, 0
    for b in batches:
        with autocast(device):
            loss, logits, targets = model(**{k: v.to(device) for k, v in b.items()})
        total_loss += float(loss) * targets.numel()
        correct += int((logits.argmax(-1) == targets).sum())
        count += targets.numel()
    loss = total_loss / max(count, 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "masked_acc": correct / max(count, 1),
        "masked_tokens": count,
    }


def frequency_baselines(batcher: MaskedBatcher, heldout: list[dict], n_windows: int = 2000) -> dict:
    """Accuracy on the held-out masked tokens of (a) the most frequent token and (b) the most frequent token
    given the c visible tokens on each side, from (2c+1)-mer counts over training windows (backs off to (a)
    when a neighbour is masked/special or the context was never seen)."""
    rngs = [np.random.default_rng([batcher.cfg.seed, 2**32 - 2, j]) for j in range(n_windows)]
    train = [batcher.tok.encode(batcher.corpus.sample(r).seq, batcher.max_tokens).ids for r in rngs]
    vocab = len(batcher.tok)
    unigram = np.bincount(np.concatenate([np.asarray(t) for t in train]), minlength=vocab)
    unigram[batcher._unpredictable.numpy()] = 0
    top = int(unigram.argmax())
    seen = max(2, int((unigram > 0).sum()))
    c = max(1, int(math.log(2e4) / (2 * math.log(seen))))
    table: dict[tuple, np.ndarray] = {}
    bad = batcher._unpredictable.numpy()
    for t in train:
        t = np.asarray(t)
        for p in range(c, len(t) - c):
            ctx = t[p - c : p + c + 1]
            if not bad[ctx].any():
                key = (*ctx[:c].tolist(), *ctx[c + 1 :].tolist())
                table.setdefault(key, np.zeros(vocab, np.int64))[t[p]] += 1
    best = {k: int(v.argmax()) for k, v in table.items()}
    hits_uni = hits_ctx = n = 0
    for b in heldout:
        x, y = b["input_ids"].numpy(), b["labels"].numpy()
        for r, p in zip(*np.nonzero(y != -100), strict=True):
            n += 1
            hits_uni += int(y[r, p] == top)
            lo, hi = p - c, p + c + 1
            guess = top
            if lo >= 0 and hi <= x.shape[1]:
                ctx = x[r, lo:hi]
                key = (*ctx[:c].tolist(), *ctx[c + 1 :].tolist())
                if not bad[np.delete(ctx, c)].any() and key in best:
                    guess = best[key]
            hits_ctx += int(y[r, p] == guess)
    return {
        "unigram_acc": hits_uni / max(n, 1),
        "context_acc": hits_ctx / max(n, 1),
        "context_size": c,
        "most_frequent_token": batcher.tok.vocab[top],
        "count_windows": n_windows,
    }


# ---------------------------------------------------------------- model and tokenizer


def _input_files(inputs: list[str]) -> list[Path]:
    files = []
    for name in inputs:
        p = Path(name).expanduser()
        if not p.exists():
            raise InputError(
                f"pretrain: input {name}: no such file; check the path (globs are expanded by the shell)"
            )
        if p.is_dir():
            raise InputError(f"pretrain: input {name}: is a folder; give FASTA files, e.g. {name}/*.fa.gz")
        files.append(p)
    return files


def _detect_alphabet(path: Path) -> str:
    from genoml.io import detect_alphabet, read_fasta

    first = next(read_fasta(path, alphabet="auto"))
    return detect_alphabet([first.seq[:10_000]])


def _resolve_model_folder(spec: str) -> Path:
    local = Path(spec).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except Exception as e:  # noqa: BLE001 - any hub failure is reported the same way
        raise InputError(
            f"--model {spec}: not a local folder, and the Hugging Face Hub could not provide it "
            f"({type(e).__name__}); download the model elsewhere and pass its local folder"
        ) from None


def _refuse_foreign_code(spec, folder: Path) -> None:
    """Masked-LM training runs transformers' own classes only: a native-only architecture (genoml implements its
    encoder, not its LM head) or a config asking for remote code would load as something else."""
    from genoml.archs import detect
    from genoml.models import read_model_config

    raw = read_model_config(str(folder))
    native = detect(raw)
    if native:
        raise InputError(
            f"--model {spec}: masked-LM training (pretrain --model, finetune --adapt-steps) of the published "
            f"{native} architecture is not supported: genoml implements its encoder, not its LM head; fine-tune "
            "it without --adapt-steps"
        )
    if raw.get("auto_map"):
        raise InputError(
            f"--model {spec}: config.json asks for modeling code shipped with the model (auto_map); masked-LM "
            "training runs transformers' own classes only; use a model without auto_map"
        )


def load_model_and_tokenizer(cfg: PretrainConfig, corpus_tokenizer=None):
    """(tokenizer, masked LM, alphabet): a new preset model, or a HF masked LM for continued pretraining.
    `corpus_tokenizer`: a tokenizer learned from the corpus (--tokenizer bpe:V), used as is."""
    from genoml.presets import build_mlm_model
    from genoml.tokenizers import build_tokenizer, load_tokenizer

    if cfg.model:
        from transformers import AutoModelForMaskedLM

        from genoml.models import check_safe_weights

        folder = _resolve_model_folder(cfg.model)
        check_safe_weights(folder)
        _refuse_foreign_code(cfg.model, folder)
        tokenizer = load_tokenizer(folder)
        try:
            mlm, info = AutoModelForMaskedLM.from_pretrained(
                str(folder), attn_implementation="sdpa", output_loading_info=True
            )
        except (OSError, ValueError) as e:
            raise InputError(
                f"--model {cfg.model}: not a masked-LM folder transformers can load: {str(e).splitlines()[0]}"
            ) from None
        from genoml.archs import check_loading

        # an encoder-only checkpoint may start a new LM head; anything else must load
        info = {
            **info,
            "missing_keys": [
                k for k in info.get("missing_keys", ()) if not k.startswith(("cls.", "lm_head."))
            ],
        }
        check_loading(
            info, where=str(cfg.model), arch=f"{type(mlm).__name__} (model_type {mlm.config.model_type})"
        )
        return tokenizer, mlm, tokenizer.alphabet
    alphabet = cfg.alphabet
    if corpus_tokenizer is not None:
        tokenizer = corpus_tokenizer
    elif cfg.tokenizer:
        tokenizer = build_tokenizer(cfg.tokenizer)
        if alphabet not in ("auto", tokenizer.alphabet):
            raise InputError(
                f"--tokenizer {cfg.tokenizer} is for {tokenizer.alphabet}, but --alphabet is {alphabet}"
            )
    else:
        if alphabet == "auto":
            alphabet = _detect_alphabet(_input_files(cfg.inputs)[0])
        tokenizer = build_tokenizer("char" if alphabet == "dna" else "esm")
    max_tokens = tokens_for_window(tokenizer, cfg.window)
    return (
        tokenizer,
        build_mlm_model(cfg.preset, tokenizer, max_tokens, cfg.arch, dropout=cfg.dropout),
        tokenizer.alphabet,
    )


def tokens_for_window(tokenizer, window: int) -> int:
    """Tokens (specials included) of a full window of `window` bases/residues. For a raw-text HF
    tokenizer (BPE) the bound: one token per letter."""
    if getattr(tokenizer, "mode", None) == "raw":
        return window + tokenizer.n_prefix + tokenizer.n_suffix
    return len(tokenizer.encode("A" * window).ids)


def corpus_bpe(corpus: Corpus, vocab_size: int, out: Path, cfg: PretrainConfig, state):
    """--tokenizer bpe:V: rank 0 learns the vocabulary from seeded training windows (never the held-out
    part) and saves it under out/bpe-tokenizer; every rank then loads that folder (so all agree, and
    --resume reuses it)."""
    from genoml.tokenizers import load_tokenizer, train_bpe

    folder = out / "bpe-tokenizer"
    if state.is_main_process and not (folder / "tokenizer.json").is_file():
        n = max(64, min(20_000, BPE_SAMPLE_LETTERS // max(cfg.window, 1)))
        rng = np.random.default_rng([cfg.seed, 7])
        seqs = [corpus.sample(rng).seq for _ in range(n)]
        t0 = time.time()
        tok = train_bpe(seqs, vocab_size, corpus.alphabet)
        tmp = out / "bpe-tokenizer.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        tmp.rename(folder)
        log.info(
            "BPE vocabulary of %d tokens learned from %d training windows in %.1f s",
            len(tok),
            n,
            time.time() - t0,
        )
    state.wait_for_everyone()
    return load_tokenizer(folder)


# ---------------------------------------------------------------- the run


def run_pretrain(cfg: PretrainConfig) -> Path:
    """Pretrain (or continue pretraining) a masked LM; returns the output folder.

    Works in one process or under torchrun / accelerate launch: rank 0 prepares the folder and the
    corpus cache, every rank trains, rank 0 writes. The Trainer's stopped reason is in genoml.json
    (`"stopped"`); "interrupted" means a checkpoint was written and `resume=True` continues.
    """
    from accelerate import PartialState

    from genoml.device import resolve_device
    from genoml.runs import prepare_run_dir
    from genoml.tokenizers import bpe_vocab_size
    from genoml.train import force_cpu

    cfg.validate()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    files = _input_files(cfg.inputs)
    state = PartialState(cpu=force_cpu() or device.type == "cpu")
    torch.manual_seed(cfg.seed)
    bpe = bpe_vocab_size(cfg.tokenizer)
    if bpe:  # the vocabulary is learned from the corpus, after the cache is built
        alphabet = cfg.alphabet if cfg.alphabet != "auto" else _detect_alphabet(files[0])
    else:
        tokenizer, mlm, alphabet = load_model_and_tokenizer(cfg)
        _check_window(cfg, tokenizer, mlm)
    if cfg.batch_size // cfg.grad_accum < state.num_processes:
        raise InputError(
            f"--batch-size {cfg.batch_size} / --grad-accum {cfg.grad_accum} gives fewer sequences per micro-batch "
            f"than the {state.num_processes} processes; raise --batch-size or lower --grad-accum"
        )
    out = Path(cfg.out)
    with state.main_process_first():
        if state.is_main_process:
            out = prepare_run_dir(cfg.out, force=cfg.force, resume=cfg.resume, inputs=[*files, cfg.model])
            _clear_debug(out)
    try:
        return _pretrain_in(
            cfg, out, state, files, bpe, alphabet, tokenizer if not bpe else None, mlm if not bpe else None
        )
    except BaseException:
        if state.is_main_process:
            from genoml.outputs import discard_outputs, record_outputs

            if cfg.resume or any((out / "checkpoints").glob("step-*[0-9]")):
                record_outputs(out)  # an interrupted run keeps its checkpoint (and cache) for --resume
            else:
                discard_outputs(out)
        raise


def _pretrain_in(cfg: PretrainConfig, out: Path, state, files, bpe, alphabet, tokenizer, mlm) -> Path:
    from genoml.device import resolve_device
    from genoml.train import TrainConfig, Trainer

    device = resolve_device(cfg.device)

    with state.main_process_first():
        data_path, index = build_corpus_cache(files, alphabet, out / "cache")
    corpus = Corpus(data_path, index, window=cfg.window, eval_fraction=cfg.eval_fraction)
    if bpe:
        torch.manual_seed(cfg.seed)  # model init as in the non-BPE path
        tokenizer = corpus_bpe(corpus, bpe, out, cfg, state)
        tokenizer, mlm, _ = load_model_and_tokenizer(cfg, corpus_tokenizer=tokenizer)
        _check_window(cfg, tokenizer, mlm)
    max_tokens = tokens_for_window(tokenizer, cfg.window)
    debug = out / "debug" if os.environ.get(DEBUG_SAMPLES_ENV) else None
    batcher = MaskedBatcher(corpus, tokenizer, max_tokens, cfg, debug)
    heldout = batcher.heldout_batches(cfg.eval_windows)
    baselines = frequency_baselines(batcher, heldout) if state.is_main_process else {}
    if state.is_main_process:
        _log_setup(cfg, mlm, corpus, tokenizer, max_tokens, baselines, state.num_processes)
    if cfg.compile:
        compile_encoder_(mlm)
    objective = MaskedLMObjective(mlm)
    tcfg = TrainConfig(
        max_steps=cfg.max_steps,
        lr=cfg.lr,
        warmup_ratio=cfg.warmup_ratio,
        grad_accum=cfg.grad_accum,
        seed=cfg.seed,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        log_every=cfg.log_every,
        time_budget_s=cfg.time_budget_min * 60 if cfg.time_budget_min else None,
        eval_at_start=True,
        device=cfg.device,
    )
    t0 = time.time()
    prefetch = (
        Prefetcher(
            batcher.train_batch,
            depth=max(cfg.prefetch, 2 if device.type == "cuda" else 1),
            limit=cfg.max_steps * cfg.grad_accum,
            pin=device.type == "cuda",
            workers=2 if device.type == "cuda" else 1,
        )
        if cfg.prefetch
        else None
    )
    trainer = Trainer(
        objective,
        tcfg,
        out,
        get_batch=prefetch or batcher.train_batch,
        loss_fn=lambda m, b: m(**b)[0],
        evaluate=lambda m: evaluate_heldout(m, heldout),
    )
    try:
        result = trainer.fit(resume=cfg.resume)
    finally:
        if prefetch is not None:
            prefetch.close()
            log.debug("training waited %.2f s for batches", prefetch.wait_s)
    if state.is_main_process:
        _save_outputs(
            out,
            cfg,
            mlm,
            tokenizer,
            corpus,
            max_tokens,
            baselines,
            result,
            time.time() - t0,
            state.num_processes,
        )
        from genoml.outputs import record_outputs

        record_outputs(out)
    state.wait_for_everyone()
    return out


def compile_encoder_(mlm: nn.Module) -> nn.Module:
    """--compile: torch.compile the encoder in place (parameter names, hence checkpoints, unchanged)."""
    try:
        mlm.base_model.compile()
    except Exception as e:  # noqa: BLE001 - compilation is an optimisation: report and run eagerly
        log.warning("--compile: torch.compile failed (%s); training without it", str(e).splitlines()[0][:200])
    return mlm


def _check_window(cfg: PretrainConfig, tokenizer, mlm) -> None:
    from genoml.models import max_positions

    max_tokens, limit = tokens_for_window(tokenizer, cfg.window), max_positions(mlm)
    if max_tokens > limit:
        raise InputError(
            f"--window {cfg.window}: needs {max_tokens} tokens but the model takes at most {limit}; "
            f"use --window {tokenizer.max_bases(limit)} or less"
        )


def _clear_debug(out: Path) -> None:
    if os.environ.get(DEBUG_SAMPLES_ENV):
        shutil.rmtree(out / "debug", ignore_errors=True)
        (out / "debug").mkdir(parents=True)


def _log_setup(cfg, mlm, corpus: Corpus, tokenizer, max_tokens: int, baselines: dict, world: int) -> None:
    from genoml.presets import parameter_count

    log.info(
        "model: %s, %.2fM parameters; tokenizer %s; window %d -> %d tokens; %d process(es), batch %d",
        cfg.model or f"{mlm.config.model_type} {cfg.preset}",
        parameter_count(mlm) / 1e6,
        tokenizer.spec,
        cfg.window,
        max_tokens,
        world,
        cfg.batch_size,
    )
    log.info(
        "corpus: %d records; training %s residues, held out %s (%d segments)",
        len(corpus.ids),
        f"{corpus.train.bases:,}",
        f"{corpus.heldout.bases:,}",
        len(corpus.heldout),
    )
    if baselines:
        log.info(
            "held-out baselines: most frequent token %.4f, %d-token context %.4f",
            baselines["unigram_acc"],
            baselines["context_size"],
            baselines["context_acc"],
        )


def _save_outputs(
    out: Path, cfg, mlm, tokenizer, corpus: Corpus, max_tokens, baselines, result, wall_s, world
):
    from genoml.runs import versions

    if getattr(mlm.config, "hidden_dropout_prob", None) is not None and not cfg.model:
        mlm.config.hidden_dropout_prob = 0.1  # finetune default, whatever was used while pretraining
    mlm.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    last_eval = next((r for r in reversed(result.history) if r["event"] == "eval"), {})
    meta = {
        "kind": "pretrained",
        "tokenizer": cfg.tokenizer if tokenizer.spec == "hf" and cfg.tokenizer else tokenizer.spec,
        "alphabet": corpus.alphabet,
        "max_tokens": max_tokens,
        "window": cfg.window,
        "preset": None if cfg.model else cfg.preset,
        "arch": mlm.config.model_type,
        "base_model": cfg.model,
        "parameters": sum(p.numel() for p in mlm.parameters()),
        "steps": result.steps,
        "batch_size": cfg.batch_size,
        "windows_seen": result.steps * cfg.batch_size,
        "stopped": result.stopped_reason,
        "wall_s": round(wall_s, 1),  # this invocation, from model set-up to the end of training
        "train_s": next((r["elapsed_s"] for r in reversed(result.history) if "elapsed_s" in r), None),
        "processes": world,
        "corpus": corpus.index["files"],
        "heldout": {
            "fraction": cfg.eval_fraction,
            "windows": cfg.eval_windows,
            "segments": len(corpus.heldout),
            "residues": corpus.heldout.bases,
            "train_residues": corpus.train.bases,
            "rule": "tail of each record with fraction*length >= window; shorter records whole, by sequence hash",
            **{k: last_eval.get(k) for k in ("loss", "perplexity", "masked_acc", "masked_tokens")},
            "baselines": baselines,
        },
        "masking": {
            "rate": cfg.mask_rate,
            "span": 1 if not tokenizer.spec.startswith("kmer:") else tokenizer.k,
            "replace": "training 80% mask / 10% random / 10% unchanged; held-out 100% mask",
        },
        "config": dataclasses.asdict(cfg),
        "versions": versions(),
    }
    warning = _baseline_warning(last_eval.get("masked_acc"), baselines)
    if warning:
        meta["warning"] = warning
        log.warning("%s", warning)
    write_meta(out, meta)
    plot_losses(result.history, out / "loss.png", baselines)
    if result.stopped_reason != "interrupted":
        shutil.rmtree(out / "cache", ignore_errors=True)
    log.info(
        "pretrained model written to %s (%s after %d steps; held-out masked accuracy %s)",
        out,
        result.stopped_reason,
        result.steps,
        f"{last_eval.get('masked_acc', float('nan')):.4f}",
    )


BASELINE_MARGIN = 0.02  # held-out masked accuracy must beat the k-mer context baseline by this much


def _baseline_warning(masked_acc: float | None, baselines: dict | None) -> str | None:
    """A warning when the held-out masked accuracy does not beat the k-mer context baseline by BASELINE_MARGIN."""
    ctx = (baselines or {}).get("context_acc")
    if masked_acc is None or ctx is None or masked_acc >= ctx + BASELINE_MARGIN:
        return None
    return (
        f"held-out masked accuracy {masked_acc:.4f} does not beat the {baselines.get('context_size', '?')}-token "
        f"context frequency baseline ({ctx:.4f}) by {BASELINE_MARGIN}: the model has learnt little beyond local "
        "k-mer statistics; train longer, or try --arch esm --dropout 0 with a higher --lr"
    )


def plot_losses(history: list[dict], path: Path, baselines: dict | None = None) -> None:
    """Training and held-out loss against steps, held-out masked accuracy on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in history if r["event"] == "train" and r.get("loss") is not None]
    evals = [r for r in history if r["event"] == "eval" and r.get("loss") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", color="tab:blue", lw=1)
    if evals:
        ax.plot(
            [r["step"] for r in evals],
            [r["loss"] for r in evals],
            "o-",
            label="held-out loss",
            color="tab:orange",
            ms=3,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("masked-LM loss (nats)")
    if evals and "masked_acc" in evals[0]:
        ax2 = ax.twinx()
        ax2.plot(
            [r["step"] for r in evals],
            [r["masked_acc"] for r in evals],
            "s--",
            color="tab:green",
            ms=3,
            label="held-out masked accuracy",
        )
        for key, style in (("unigram_acc", ":"), ("context_acc", "-.")):
            if baselines and key in baselines:
                ax2.axhline(
                    baselines[key],
                    color="grey",
                    ls=style,
                    lw=1,
                    label={
                        "unigram_acc": "most-frequent-token baseline",
                        "context_acc": "k-mer context baseline",
                    }[key],
                )
        ax2.set_ylabel("masked accuracy")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
    elif train:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
