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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genoml.errors import InputError
from genoml.masking import mask_tokens

log = logging.getLogger(__name__)

CACHE_VERSION = 1
DEBUG_SAMPLES_ENV = "GENOML_DEBUG_SAMPLES"  # set to 1: each rank logs the rows it drew to out/debug/
MAX_N_FRACTION = 0.5  # DNA windows with more N are redrawn (gaps in assemblies)
BPE_SAMPLE_LETTERS = 5_000_000  # letters of training windows a BPE vocabulary is learned from


@dataclass
class PretrainConfig:
    """Settings of `genoml pretrain` (defaults in one place)."""

    inputs: list[str] = field(default_factory=list)
    out: str = "runs/pretrain"
    preset: str = "small"
    arch: str | None = None  # None: "bert" for DNA, "esm" (ESM-2 style, rotary) for protein
    tokenizer: str | None = None  # None: "char" for DNA, "esm" for protein
    alphabet: str = "auto"
    window: int = 512  # bases (DNA) or residues (protein) per training window
    max_steps: int = 10_000
    batch_size: int = 32  # sequences per optimizer step, over all processes and accumulation steps
    lr: float = 5e-4
    mask_rate: float = 0.15
    eval_fraction: float = 0.02
    eval_windows: int = 256
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    resume: bool = False
    model: str | None = None  # continued pretraining from a HF masked-LM folder (or hub id)
    time_budget_min: float | None = None
    grad_accum: int = 1
    force: bool = False
    dropout: float = 0.1  # hidden dropout while pretraining a new model; the saved config keeps 0.1
    warmup_ratio: float = 0.06
    threads: int | None = None

    def validate(self) -> None:
        checks = [
            ("--window", self.window >= 8, "at least 8"),
            ("--max-steps", self.max_steps >= 1, "at least 1"),
            ("--batch-size", self.batch_size >= 1, "at least 1"),
            (
                "--grad-accum",
                self.grad_accum >= 1 and self.batch_size % self.grad_accum == 0,
                "at least 1 and a divisor of --batch-size",
            ),
            ("--lr", self.lr > 0, "positive"),
            ("--mask-rate", 0 < self.mask_rate < 1, "in (0, 1)"),
            ("--eval-fraction", 0 < self.eval_fraction < 0.5, "in (0, 0.5)"),
            ("--eval-windows", self.eval_windows >= 1, "at least 1"),
            ("--eval-every", self.eval_every >= 1, "at least 1"),
            ("--checkpoint-every", self.checkpoint_every >= 1, "at least 1"),
            ("--dropout", 0 <= self.dropout < 1, "in [0, 1)"),
        ]
        for flag, ok, allowed in checks:
            if not ok:
                name = flag[2:].replace("-", "_")
                raise InputError(f"{flag}: got {getattr(self, name)!r}; must be {allowed}")
        if self.alphabet not in ("auto", "dna", "protein"):
            raise InputError(f"--alphabet: got {self.alphabet!r}; allowed: auto, dna, protein")
        if self.time_budget_min is not None and self.time_budget_min <= 0:
            raise InputError(f"--time-budget: got {self.time_budget_min}; give minutes > 0")
        from genoml.tokenizers import bpe_vocab_size

        if bpe_vocab_size(self.tokenizer) and self.model:
            raise InputError(f"--tokenizer {self.tokenizer}: continued pretraining (--model) keeps the model's tokenizer")
        if not self.inputs:
            raise InputError(
                "pretrain: no input FASTA files given; pass one or more FASTA files (gz or plain)"
            )


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

    def sample(self, rng: np.random.Generator, heldout: bool = False) -> Window:
        """One window: DNA uniform over start positions (random strand), protein uniform over records
        (random crop). DNA windows that are mostly N are redrawn (up to 10 times)."""
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
            seq = self.text(int(segs.offset[s]) + start, n)
            strand = "+"
            if self.alphabet == "dna":
                strand = "-" if rng.integers(2) else "+"
                if seq.count("N") > MAX_N_FRACTION * len(seq):
                    continue
            break
        rec = int(segs.record[s])
        if strand == "-":
            from genoml.io import reverse_complement

            seq = reverse_complement(seq)
        return Window(rec, int(segs.offset[s]) - int(self.offsets[rec]) + start, strand, seq)


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
    """Windows -> tokenized, padded, masked tensors. Row RNG: rng(seed, step, row)."""

    def __init__(
        self, corpus: Corpus, tokenizer, max_tokens: int, cfg: PretrainConfig, debug_dir: Path | None
    ):
        self.corpus, self.tok, self.max_tokens, self.cfg = corpus, tokenizer, max_tokens, cfg
        self.span = int(getattr(tokenizer, "k", 1)) if tokenizer.spec.startswith("kmer:") else 1
        unpredictable = set(tokenizer.special_ids)
        if tokenizer.alphabet == "dna" and "N" in tokenizer.vocab:
            unpredictable.add(tokenizer.vocab.index("N"))
        self.targets = [i for i in range(len(tokenizer)) if i not in unpredictable]
        self._unpredictable = torch.zeros(len(tokenizer), dtype=torch.bool)
        self._unpredictable[sorted(unpredictable)] = True
        self.rows_per_micro = cfg.batch_size // cfg.grad_accum
        self.debug_dir = debug_dir

    def train_batch(self, micro: int, rank: int, world: int) -> dict:
        step, k = divmod(micro, self.cfg.grad_accum)
        rows = range(k * self.rows_per_micro, (k + 1) * self.rows_per_micro)[rank::world]
        rngs = [np.random.default_rng([self.cfg.seed, step, g]) for g in rows]
        windows = [self.corpus.sample(rng) for rng in rngs]
        if self.debug_dir is not None:
            with open(self.debug_dir / f"samples-rank{rank}.tsv", "a") as f:
                f.writelines(
                    f"{step}\t{g}\t{w.record}\t{w.start}\t{w.strand}\n"
                    for g, w in zip(rows, windows, strict=True)
                )
        return self.collate([w.seq for w in windows], rngs)

    def collate(self, seqs: list[str], rngs: list[np.random.Generator], mask_only: bool = False) -> dict:
        """input_ids, attention_mask, labels: (B, L) with L the longest row here. `mask_only`: every
        target becomes [MASK] (held-out set), else 80/10/10."""
        encs = [self.tok.encode(s, self.max_tokens) for s in seqs]
        L = max(len(e.ids) for e in encs)
        ids = torch.full((len(encs), L), self.tok.pad_id, dtype=torch.long)
        special = torch.ones((len(encs), L), dtype=torch.bool)
        for r, e in enumerate(encs):
            ids[r, : len(e.ids)] = torch.as_tensor(e.ids)
            special[r, : len(e.ids)] = torch.as_tensor(e.special_mask)
        attention = (torch.arange(L)[None, :] < torch.as_tensor([len(e.ids) for e in encs])[:, None]).long()
        special |= self._unpredictable[ids]
        masked, labels = [], []
        for r, rng in enumerate(rngs):
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            x, y = mask_tokens(
                ids[r : r + 1],
                special[r : r + 1],
                mask_id=self.tok.mask_id,
                vocab_size=len(self.tok),
                rate=self.cfg.mask_rate,
                span=self.span,
                generator=g,
                random_ids=self.targets,
                mask_fraction=1.0 if mask_only else 0.8,
                random_fraction=0.0 if mask_only else 0.1,
            )
            masked.append(x)
            labels.append(y)
        return {"input_ids": torch.cat(masked), "attention_mask": attention, "labels": torch.cat(labels)}

    def heldout_batches(self, n: int, batch: int = 64) -> list[dict]:
        """A fixed held-out set: n windows and their masks (every target [MASK]), apart from the training stream."""
        rngs = [np.random.default_rng([self.cfg.seed, 2**32 - 1, j]) for j in range(n)]
        windows = [self.corpus.sample(rng, heldout=True) for rng in rngs]
        return [
            self.collate([w.seq for w in windows[i : i + batch]], rngs[i : i + batch], mask_only=True)
            for i in range(0, n, batch)
        ]


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
    device = next(model.parameters()).device
    total_loss, correct, count = 0.0, 0, 0
    for b in batches:
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
        tokenizer = load_tokenizer(folder)
        try:
            mlm = AutoModelForMaskedLM.from_pretrained(str(folder), attn_implementation="sdpa")
        except (OSError, ValueError) as e:
            raise InputError(
                f"--model {cfg.model}: not a masked-LM folder transformers can load: {str(e).splitlines()[0]}"
            ) from None
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
        log.info("BPE vocabulary of %d tokens learned from %d training windows in %.1f s", len(tok), n,
                 time.time() - t0)
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

    from genoml.runs import prepare_run_dir
    from genoml.tokenizers import bpe_vocab_size
    from genoml.train import TrainConfig, Trainer, force_cpu

    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    files = _input_files(cfg.inputs)
    state = PartialState(cpu=force_cpu())
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
            out = prepare_run_dir(cfg.out, force=cfg.force, resume=cfg.resume)
            _clear_debug(out)
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
    )
    t0 = time.time()
    trainer = Trainer(
        objective,
        tcfg,
        out,
        get_batch=batcher.train_batch,
        loss_fn=lambda m, b: m(**b)[0],
        evaluate=lambda m: evaluate_heldout(m, heldout),
    )
    result = trainer.fit(resume=cfg.resume)
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
    state.wait_for_everyone()
    return out


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
    (out / "genoml.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
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
    return (f"held-out masked accuracy {masked_acc:.4f} does not beat the {baselines.get('context_size', '?')}-token "
            f"context frequency baseline ({ctx:.4f}) by {BASELINE_MARGIN}: the model has learnt little beyond local "
            "k-mer statistics; train longer, or try --arch esm --dropout 0 with a higher --lr")


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
