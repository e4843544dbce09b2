"""Masked-LM batches for pretraining: corpus windows -> tokenized, padded, masked tensors.

`MaskedBatcher.train_batch(micro, rank, world)` returns input_ids, attention_mask, labels, each (B, L),
a pure function of (seed, step, row): the same on 1 or W processes and after a resume.
`ArrayEncoder` tokenizes letter arrays (B, W) uint8 with numpy tables, as `tokenizer.encode` would;
`Prefetcher` prepares the next micro-batches in background threads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch

from genoml.config import PretrainConfig
from genoml.corpus import Corpus
from genoml.masking import MaskNoise, mask_tokens
from genoml.tokenizers import BERT_SPECIALS


class MaskedBatcher:
    """Windows -> tokenized, padded, masked tensors: `train_batch(micro, rank, world)` -> dict of (B, L) tensors.

    Determinism: the window of row g of step s comes from rng(seed, s, g); the masking noise of the whole
    global micro-batch comes from one torch generator seeded by (seed, s, micro index) and each process
    takes its rows' noise, so a row's tokens and mask depend only on (seed, step, row): the same on 1 or W
    processes, and after a resume. Char / k-mer / residue tokenizers encode the batch as one (B, W) byte
    matrix through lookup tables (numpy); other tokenizers (BPE, nt-kmer) encode row by row.
    `unpredictable` (V,) bool: token ids never used as targets (special tokens, and N for DNA).
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
        self.unpredictable = torch.zeros(len(tokenizer), dtype=torch.bool)  # (V,)
        self.unpredictable[sorted(unpredictable)] = True
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
        special |= self.unpredictable[ids]
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
        codes = tok.byte_codes()
        return cls(tok, None) if codes is None else cls(tok, *codes)

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
        keep = limit + self.k - 1 if self.k else limit  # letters used per row
        n = np.asarray([min(len(r), keep) for r in rows])  # (B,)
        W = int(n.max()) if len(rows) else 0
        letters = np.zeros((len(rows), max(W, 1)), dtype=np.uint8)  # (B, W)
        for i, r in enumerate(rows):
            letters[i, : n[i]] = r[: n[i]]
        if self.k == 0:
            content, count = self.table[letters], n  # (B, W), (B,)
        else:
            content, count = self._kmer_content(letters, n, W)
        return self._frame(content, count)

    def _kmer_content(self, letters: np.ndarray, n: np.ndarray, W: int) -> tuple[np.ndarray, np.ndarray]:
        """Letters (B, W) of lengths n (B,) -> overlapping k-mer ids (B, C) and their count per row (B,)."""
        tok, k, B = self.tok, self.k, len(letters)
        codes = self.table[letters]  # (B, W) 0..3, 4 = not ACGT
        count = np.where(n >= k, n - k + 1, np.where(n > 0, 1, 0))  # short non-empty rows: one [UNK]
        width = max(int(count.max()) if B else 0, 1)
        m = max(W - k + 1, 1)
        content = np.zeros((B, m), dtype=np.int64)
        bad = np.zeros((B, m), dtype=bool)
        for j in range(k):
            part = codes[:, j : j + m] if W >= k else np.full((B, m), 4)
            content = (content << 2) + np.minimum(part, 3)
            bad |= part == 4
        content = np.where(bad, tok.unk_id, content + len(BERT_SPECIALS))
        content = (
            content[:, :width]
            if content.shape[1] >= width
            else np.pad(content, ((0, 0), (0, width - content.shape[1])))
        )
        content[(n > 0) & (n < k), 0] = tok.unk_id
        return content, count

    def _frame(
        self, content: np.ndarray, count: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Content ids (B, C), of which the first count (B,) are real -> ids (B, L) with the tokenizer's
        prefix/suffix tokens and padding, special (B, L), lengths (B,)."""
        tok = self.tok
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
    """Token ids and special masks of each row -> ids (B, L) padded with pad_id, special (B, L), lengths (B,)."""
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
        with self._cv:
            if not self._threads or self._want != micro or self._args != (rank, world):
                self._restart(micro, rank, world)
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

    def _restart(self, micro: int, rank: int, world: int) -> None:
        """(Holding the lock) drop what was prepared and prepare from `micro` on; start the threads once."""
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
