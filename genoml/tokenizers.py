"""Sequence tokenizers with per-token offsets, and their save/load as Hugging Face tokenizer folders.

Contract: ``encode(seq)`` returns ``Encoding(ids, offsets, special_mask)``; every sequence token carries the
[start, end) span of ``seq`` it covers, special tokens carry (0, 0). Specs: ``kmer:K`` (DNABERT overlapping
k-mers), ``nt-kmer:K`` (Nucleotide Transformer chunks), ``char``, ``hyena`` (HyenaDNA), ``esm`` (ESM-2),
``protbert``; ``hf`` wraps any local Hugging Face tokenizer. ``save_pretrained`` writes files
``transformers.AutoTokenizer`` loads with the same ids; ``load_tokenizer`` reads them (or a foreign HF folder) back. Input is upper-cased before lookup.
"""

from __future__ import annotations

import itertools
import json
import logging
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Regex, pre_tokenizers, processors, trainers
from tokenizers import Tokenizer as RustTokenizer
from tokenizers import models as rust_models

from genoml.alphabet import get as get_alphabet
from genoml.errors import InputError

logger = logging.getLogger(__name__)

GENOML_TOKENIZER_FILE = "genoml_tokenizer.json"
KMER_SIZES = range(3, 7)  # kmer:K, DNABERT ships K = 3..6
NT_KMER_SIZES = range(2, 7)  # nt-kmer:K; K = 1 would collide with the single-base fallback tokens
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
NT_SPECIALS = ["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>"]
ESM_VOCAB = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO", ".", "-", "<null_1>", "<mask>"]
PROTBERT_VOCAB = [*BERT_SPECIALS, *"LAGVESIKRDTPNQFYMHCWXUBZO"]
CHAR_VOCAB = [*BERT_SPECIALS, *"ACGTN"]
HYENA_VOCAB = [
    "[CLS]",
    "[SEP]",
    "[BOS]",
    "[MASK]",
    "[PAD]",
    "[RESERVED]",
    "[UNK]",
    *"ACGTN",
]  # HyenaDNATokenizer
DNABERT_BASES = "ATCG"  # DNABERT and Nucleotide Transformer enumerate k-mers in product("ATCG") order
_ACGT_RUN = re.compile(r"[ACGT]+")
_DNA_LETTERS = frozenset("ACGTUN")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _upper(seq: str) -> str:
    """Upper-case ASCII letters only, so positions never shift ('ß'.upper() is 'SS')."""
    return seq.upper() if seq.isascii() else seq.translate(_ASCII_UPPER)


def _lower(seq: str) -> str:
    return seq.lower() if seq.isascii() else seq.translate(_ASCII_LOWER)


@dataclass(slots=True)
class Encoding:
    """One tokenized sequence; the three lists have one entry per token."""

    ids: list[int]  # with special tokens
    offsets: list[tuple[int, int]]  # [start, end) in the input sequence; specials (0, 0)
    special_mask: list[bool]  # True for special tokens added around the sequence

    def __len__(self) -> int:
        return len(self.ids)


def kmers(k: int, bases: str = DNABERT_BASES) -> list[str]:
    """All k-mers over ``bases`` in ``itertools.product`` order (DNABERT / NT vocabulary order)."""
    return ["".join(p) for p in itertools.product(bases, repeat=k)]


class SequenceTokenizer:
    """Base class: owns the vocabulary and special ids, wraps sequence tokens in specials, truncates."""

    spec: str
    alphabet: str

    def __init__(
        self,
        spec: str,
        alphabet: str,
        vocab: list[str],
        *,
        pad: str,
        unk: str,
        mask: str,
        cls: str | None,
        eos: str | None,
        extra_special: Iterable[str] = (),
    ) -> None:
        self.spec = spec
        self.alphabet = alphabet
        self.vocab = list(vocab)
        self.token_to_id = {tok: i for i, tok in enumerate(self.vocab)}
        self.pad_id: int = self.token_to_id[pad]
        self.unk_id: int = self.token_to_id[unk]
        self.mask_id: int = self.token_to_id[mask]
        self.cls_id: int | None = self.token_to_id[cls] if cls is not None else None
        self.eos_id: int | None = self.token_to_id[eos] if eos is not None else None
        self.n_prefix = int(self.cls_id is not None)  # specials before the sequence tokens
        self.n_suffix = int(self.eos_id is not None)  # specials after them
        self._special = {self.token_to_id[t] for t in extra_special}
        self._span_list: list[tuple[int, int]] = []
        self._span_width = 1

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, vocab_size={len(self)})"

    @property
    def special_ids(self) -> set[int]:
        """Ids of pad, unk, cls, eos, mask and any other special token of the vocabulary."""
        ids = {self.pad_id, self.unk_id, self.mask_id, self.cls_id, self.eos_id, *self._special}
        return {i for i in ids if i is not None}

    @property
    def n_special(self) -> int:
        """Special tokens added to every encoded sequence."""
        return self.n_prefix + self.n_suffix

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """Token strings for ``ids``."""
        size = len(self.vocab)
        bad = [i for i in ids if not 0 <= int(i) < size]
        if bad:
            raise InputError(
                f"token ids {bad[:5]} are outside the {self.spec} vocabulary [0, {size}); "
                "decode ids with the tokenizer that produced them"
            )
        return [self.vocab[int(i)] for i in ids]

    def encode(self, seq: str, max_tokens: int | None = None) -> Encoding:
        """Tokenize ``seq``; with ``max_tokens``, keep at most that many tokens including specials."""
        limit = self._content_limit(max_tokens)
        ids, offsets = self._encode_content(_upper(seq), limit)
        prefix = [self.cls_id] if self.cls_id is not None else []
        suffix = [self.eos_id] if self.eos_id is not None else []
        return Encoding(
            ids=prefix + ids + suffix,
            offsets=[(0, 0)] * len(prefix) + offsets + [(0, 0)] * len(suffix),
            special_mask=[True] * len(prefix) + [False] * len(ids) + [True] * len(suffix),
        )

    def encode_batch(self, seqs: Iterable[str], max_tokens: int | None = None) -> list[Encoding]:
        """``encode`` every sequence of ``seqs``."""
        return [self.encode(seq, max_tokens) for seq in seqs]

    def max_bases(self, max_tokens: int) -> int:
        """Bases/residues that fit in ``max_tokens`` tokens (specials included); used for windowing."""
        return self._content_limit(max_tokens)

    def to_hf_text(self, seq: str) -> str:
        """The text a ``transformers`` tokenizer loaded from ``save_pretrained`` expects for ``seq``."""
        return _upper(seq)

    def byte_codes(self) -> tuple[np.ndarray, int] | None:
        """For array encoders (genoml.mlm_batches): (table (256,) int64, k) where table maps each input byte,
        either case, to its token id (k = 0: one token per letter) or to its base code combined k at a time
        (k-mers); None when tokens are not a function of single letters (BPE, NT k-mers, HF tokenizers)."""
        return None

    def save_pretrained(self, folder: str | Path) -> None:
        """Write vocab.txt + tokenizer_config.json (AutoTokenizer-loadable) and genoml_tokenizer.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stale = folder / "tokenizer.json"  # a fast tokenizer file would shadow vocab.txt in AutoTokenizer
        if stale.exists():
            logger.info("removing %s so AutoTokenizer reads the new vocab.txt", stale)
            stale.unlink()
        (folder / "vocab.txt").write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        _write_json(folder / "tokenizer_config.json", self._hf_config())
        meta = {"spec": self.spec, "vocab_size": len(self), "hf_text": self._hf_text_convention()}
        _write_json(folder / GENOML_TOKENIZER_FILE, meta)

    # -- hooks for subclasses ------------------------------------------------------------------------
    def _encode_content(self, seq: str, limit: int | None) -> tuple[list[int], list[tuple[int, int]]]:
        raise NotImplementedError

    def _hf_config(self) -> dict:
        raise NotImplementedError

    def _hf_text_convention(self) -> str:
        return "raw sequence"

    # -- helpers -------------------------------------------------------------------------------------
    def _content_limit(self, max_tokens: int | None) -> int | None:
        """Sequence tokens allowed by ``max_tokens`` (None = no limit); errors when none fit."""
        if max_tokens is None:
            return None
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, numbers.Integral):
            raise InputError(f"max_tokens={max_tokens!r} is not an integer; give a token count such as 512")
        max_tokens = int(max_tokens)
        if max_tokens <= self.n_special:
            raise InputError(
                f"max_tokens={max_tokens!r} leaves no room for sequence tokens: {self.spec} adds "
                f"{self.n_special} special token(s); give max_tokens >= {self.n_special + 1}"
            )
        return max_tokens - self.n_special

    def _spans(self, count: int) -> list[tuple[int, int]]:
        """[(i, i + width) for i in range(count)], sliced from a cached, growing list."""
        spans = self._span_list
        if len(spans) < count:
            width = self._span_width
            spans.extend((i, i + width) for i in range(len(spans), max(count, 2 * len(spans))))
        return spans[:count]


class KmerTokenizer(SequenceTokenizer):
    """DNABERT overlapping k-mers: ``[CLS] k-mer_0 .. k-mer_{L-k} [SEP]``; token i covers [i, i + k).

    A k-mer with N or any non-ACGT letter is [UNK]. A non-empty sequence shorter than k becomes one [UNK]
    covering the whole sequence (so every base stays covered); an empty one becomes ``[CLS] [SEP]``.
    """

    def __init__(self, k: int) -> None:
        super().__init__(
            f"kmer:{k}",
            "dna",
            BERT_SPECIALS + kmers(k),
            pad="[PAD]",
            unk="[UNK]",
            mask="[MASK]",
            cls="[CLS]",
            eos="[SEP]",
        )
        self.k = k
        self._span_width = k
        self._kmer_id = {tok: i for i, tok in enumerate(self.vocab) if i >= len(BERT_SPECIALS)}
        lut = np.full(256, 4, dtype=np.int64)  # base code in product("ATCG") order; 4 = not ACGT
        for code, base in enumerate(DNABERT_BASES):
            lut[ord(base)] = code
        self._lut = lut

    def byte_codes(self) -> tuple[np.ndarray, int]:
        lut = self._lut.copy()
        lut[ord("a") : ord("z") + 1] = self._lut[ord("A") : ord("Z") + 1]
        return lut, self.k

    def _encode_content(self, seq, limit):
        k = self.k
        if limit is not None:
            seq = seq[: limit + k - 1]
        n = len(seq) - k + 1
        if n <= 0:
            return ([self.unk_id], [(0, len(seq))]) if seq else ([], [])
        if n < 150:  # measured crossover: dict lookups win below ~150 k-mers, numpy above
            get, unk = self._kmer_id.get, self.unk_id
            ids = [get(seq[i : i + k], unk) for i in range(n)]
        else:
            ids = self._kmer_ids_numpy(seq, n)
        return ids, self._spans(n)

    def _kmer_ids_numpy(self, seq: str, n: int) -> list[int]:
        """Vectorised k-mer ids for long sequences (same result as the dict lookup)."""
        k = self.k
        codes = self._lut[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]  # (L,)
        ids = codes[:n].copy()  # (n,) base-4 number of each k-mer, built one base at a time
        for j in range(1, k):
            ids <<= 2
            ids += codes[j : j + n]
        ids += len(BERT_SPECIALS)
        invalid = codes == 4
        if invalid.any():
            seen = np.cumsum(invalid)  # (L,) non-ACGT letters up to each position
            ids[seen[k - 1 :] - np.concatenate(([0], seen[: n - 1])) > 0] = self.unk_id
        return ids.tolist()

    def max_bases(self, max_tokens: int) -> int:
        return self._content_limit(max_tokens) + self.k - 1

    def to_hf_text(self, seq: str) -> str:
        seq, k = _upper(seq), self.k
        return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1)) if len(seq) >= k else seq

    def _hf_config(self) -> dict:
        return _bert_config()

    def _hf_text_convention(self) -> str:
        return f"space-separated overlapping {self.k}-mers"


class NTKmerTokenizer(SequenceTokenizer):
    """Nucleotide Transformer (v2) non-overlapping k-mers: ``<cls>`` then tokens, no ``<eos>``.

    Vocabulary: ``<unk> <pad> <mask> <cls> <eos> <bos>``, all k-mers in product("ATCG") order, then
    ``A T C G N`` (4107 tokens for k = 6, as InstaDeepAI/nucleotide-transformer-v2). Ids equal the published
    ``EsmTokenizer``'s (greedy longest vocabulary match, left to right): each ACGT run is cut left to right into
    k-mers, a tail shorter than k falls back to single-base tokens, N is its own token, and a run of other letters
    is ONE ``<unk>`` (EsmTokenizer maps the unmatched stretch as one word). The published NT v2 tokenizer prepends
    ``<cls>`` and appends nothing. Unlike it, genoml upper-cases first (EsmTokenizer maps a lower-case stretch to
    one ``<unk>``).
    """

    def __init__(self, k: int) -> None:
        super().__init__(
            f"nt-kmer:{k}",
            "dna",
            NT_SPECIALS + kmers(k) + [*DNABERT_BASES, "N"],
            pad="<pad>",
            unk="<unk>",
            mask="<mask>",
            cls="<cls>",
            eos=None,
            extra_special=["<eos>", "<bos>"],
        )
        self.k = k
        first_single = len(NT_SPECIALS) + 4**k
        self._kmer_id = {tok: i for i, tok in enumerate(self.vocab[:first_single]) if i >= len(NT_SPECIALS)}
        self._single_id = {tok: first_single + i for i, tok in enumerate(self.vocab[first_single:])}

    def _encode_content(self, seq, limit):
        k, single = self.k, self._single_id
        budget = len(seq) if limit is None else limit  # tokens to produce; a long input stops early
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        pos = 0
        for match in _ACGT_RUN.finditer(seq):
            start, end = match.span()
            self._encode_gap(seq, pos, start, ids, offsets)
            pos = end
            if len(ids) >= budget:
                break
            full = start + min((end - start) // k, budget - len(ids)) * k
            ids.extend(self._kmer_id[seq[i : i + k]] for i in range(start, full, k))
            offsets.extend((i, i + k) for i in range(start, full, k))
            tail = range(full, min(end, full + budget - len(ids)))
            ids.extend(single[seq[i]] for i in tail)
            offsets.extend((i, i + 1) for i in tail)
            if len(ids) >= budget:
                break
        else:
            self._encode_gap(seq, pos, len(seq), ids, offsets)
        return ids[:budget], offsets[:budget]

    def _encode_gap(
        self, seq: str, start: int, end: int, ids: list[int], offsets: list[tuple[int, int]]
    ) -> None:
        """Letters between ACGT runs: each N its own token, each run of other letters one <unk>."""
        n_id = self._single_id["N"]
        i = start
        while i < end:
            if seq[i] == "N":
                ids.append(n_id)
                offsets.append((i, i + 1))
                i += 1
                continue
            j = i + 1
            while j < end and seq[j] != "N":
                j += 1
            ids.append(self.unk_id)
            offsets.append((i, j))
            i = j

    def max_bases(self, max_tokens: int) -> int:
        """Bases in ``max_tokens`` when every token is a full k-mer (an upper bound when N is present)."""
        return self._content_limit(max_tokens) * self.k

    def _hf_config(self) -> dict:
        return {
            "tokenizer_class": "EsmTokenizer",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "cls_token": "<cls>",
            "eos_token": None,
        }


class _ResidueTokenizer(SequenceTokenizer):
    """One token per letter (bases or residues), ids looked up with a 256-byte translation table."""

    def __init__(self, spec: str, alphabet: str, vocab: list[str], **specials: str) -> None:
        super().__init__(spec, alphabet, vocab, **specials)
        table = bytearray([self.unk_id]) * 256
        for tok, i in self.token_to_id.items():
            if len(tok) == 1 and ord(tok) < 128:
                table[ord(tok)] = i
        self._table = bytes(table)

    def byte_codes(self) -> tuple[np.ndarray, int]:
        table = np.frombuffer(self._table, dtype=np.uint8).astype(np.int64)
        upper = np.arange(256)
        upper[ord("a") : ord("z") + 1] -= 32  # encode() upper-cases ASCII first
        return table[upper], 0

    def _encode_content(self, seq, limit):
        if limit is not None:
            seq = seq[:limit]
        # 'replace' turns each non-ASCII character into one '?', so positions stay aligned
        return list(seq.encode("ascii", "replace").translate(self._table)), self._spans(len(seq))


class CharTokenizer(_ResidueTokenizer):
    """Single nucleotides: ``[CLS] A C G T N [SEP]``; other letters are [UNK]."""

    def __init__(self) -> None:
        super().__init__(
            "char", "dna", CHAR_VOCAB, pad="[PAD]", unk="[UNK]", mask="[MASK]", cls="[CLS]", eos="[SEP]"
        )

    def to_hf_text(self, seq: str) -> str:
        return " ".join(_upper(seq))

    def _hf_config(self) -> dict:
        return _bert_config()

    def _hf_text_convention(self) -> str:
        return "space-separated bases"


class HyenaTokenizer(_ResidueTokenizer):
    """HyenaDNA characters, ids as the published ``HyenaDNATokenizer`` (LongSafari/hyenadna-*-hf):
    ``[CLS]`` 0, ``[SEP]`` 1, ``[BOS]`` 2, ``[MASK]`` 3, ``[PAD]`` 4, ``[RESERVED]`` 5, ``[UNK]`` 6, A C G T N 7..11.

    ``seq [SEP]``: the published tokenizer appends ``[SEP]`` and no ``[CLS]``; other letters are ``[UNK]``. Unlike
    it, genoml upper-cases first (the published one maps lower-case letters to ``[UNK]``) and pads on the right (the
    model is causal, so right padding leaves the valid positions unchanged; the published default is left).
    """

    def __init__(self) -> None:
        super().__init__(
            "hyena",
            "dna",
            HYENA_VOCAB,
            pad="[PAD]",
            unk="[UNK]",
            mask="[MASK]",
            cls=None,
            eos="[SEP]",
            extra_special=["[CLS]", "[BOS]", "[RESERVED]"],
        )

    def save_pretrained(self, folder: str | Path) -> None:
        """vocab.txt + genoml_tokenizer.json, and a tokenizer.json that ``AutoTokenizer`` loads with the same ids."""
        super().save_pretrained(folder)
        tok = RustTokenizer(
            rust_models.WordLevel({t: i for i, t in enumerate(self.vocab)}, unk_token="[UNK]")
        )
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per letter
        sep = self.token_to_id["[SEP]"]
        tok.post_processor = processors.TemplateProcessing(
            single="$A [SEP]", pair="$A [SEP] $B [SEP]", special_tokens=[("[SEP]", sep)]
        )
        tok.save(str(Path(folder) / "tokenizer.json"))

    def _hf_config(self) -> dict:
        return {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "unk_token": "[UNK]",
            "pad_token": "[PAD]",
            "mask_token": "[MASK]",
            "sep_token": "[SEP]",
            "eos_token": "[SEP]",
            "cls_token": "[CLS]",
            "bos_token": "[BOS]",
            "padding_side": "right",
        }


class EsmTokenizer(_ResidueTokenizer):
    """ESM-2 residues, ids exactly as the 33-token ESM-2 vocabulary: ``<cls> seq <eos>``."""

    def __init__(self) -> None:
        super().__init__(
            "esm", "protein", ESM_VOCAB, pad="<pad>", unk="<unk>", mask="<mask>", cls="<cls>", eos="<eos>"
        )

    def _hf_config(self) -> dict:
        return {
            "tokenizer_class": "EsmTokenizer",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "cls_token": "<cls>",
            "eos_token": "<eos>",
        }


class ProtBertTokenizer(_ResidueTokenizer):
    """ProtBert (Rostlab/prot_bert) residues: ``[CLS] seq [SEP]``."""

    def __init__(self) -> None:
        super().__init__(
            "protbert",
            "protein",
            PROTBERT_VOCAB,
            pad="[PAD]",
            unk="[UNK]",
            mask="[MASK]",
            cls="[CLS]",
            eos="[SEP]",
        )

    def to_hf_text(self, seq: str) -> str:
        return " ".join(_upper(seq))

    def _hf_config(self) -> dict:
        return _bert_config()

    def _hf_text_convention(self) -> str:
        return "space-separated residues"


def _bert_config() -> dict:
    return {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": False,
        "tokenize_chinese_chars": False,
        "strip_accents": False,
        "unk_token": "[UNK]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
    }


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


SPEC_HELP = "kmer:K (K=3..6), nt-kmer:K (K=2..6), char, hyena, esm, protbert; bpe:V (pretrain only)"
BPE_VOCAB_RANGE = range(32, 65537)


def build_tokenizer(spec: str) -> SequenceTokenizer:
    """Tokenizer for ``spec``: ``kmer:6``, ``nt-kmer:6``, ``char``, ``hyena``, ``esm`` or ``protbert``."""
    name, _, arg = str(spec).strip().lower().partition(":")
    if name in ("char", "hyena", "esm", "protbert") and not arg:
        return {
            "char": CharTokenizer,
            "hyena": HyenaTokenizer,
            "esm": EsmTokenizer,
            "protbert": ProtBertTokenizer,
        }[name]()
    if name in ("kmer", "nt-kmer"):
        sizes = KMER_SIZES if name == "kmer" else NT_KMER_SIZES
        if arg.isdigit() and int(arg) in sizes:
            return KmerTokenizer(int(arg)) if name == "kmer" else NTKmerTokenizer(int(arg))
        raise InputError(
            f"tokenizer {spec!r}: k must be an integer in {sizes.start}..{sizes.stop - 1}; e.g. {name}:6"
        )
    if name == "bpe":
        raise InputError(
            f"tokenizer {spec!r}: a BPE vocabulary is learned from a corpus; use `genoml pretrain --tokenizer {spec}` "
            "(the model folder it writes then carries the tokenizer)"
        )
    if name == "hf":
        raise InputError("tokenizer 'hf' wraps a model's own tokenizer; load it with load_tokenizer(folder)")
    raise InputError(f"unknown tokenizer {spec!r}; allowed: {SPEC_HELP}")


def bpe_vocab_size(spec: str | None) -> int | None:
    """V of ``bpe:V`` (checked), None for any other spec."""
    name, _, arg = str(spec or "").strip().lower().partition(":")
    if name != "bpe":
        return None
    if not arg.isdigit() or int(arg) not in BPE_VOCAB_RANGE:
        raise InputError(
            f"tokenizer {spec!r}: V must be an integer in {BPE_VOCAB_RANGE.start}..{BPE_VOCAB_RANGE.stop - 1}; "
            "e.g. bpe:4096"
        )
    return int(arg)


def train_bpe(seqs: Iterable[str], vocab_size: int, alphabet: str) -> HFTokenizer:
    """A byte-pair-encoding vocabulary learned from ``seqs`` (as DNABERT-2 does) with the `tokenizers` library.

    Each sequence is one word (no pre-tokenizer), so merges follow the sequence itself; BERT specials
    ([PAD] [UNK] [CLS] [SEP] [MASK], ids 0-4) and one token per letter are always in the vocabulary.
    Returns an ``HFTokenizer`` around a ``PreTrainedTokenizerFast``: ``save_pretrained`` writes
    ``tokenizer.json`` that plain ``AutoTokenizer`` loads with the same ids.
    """
    from transformers import PreTrainedTokenizerFast  # heavy: transformers loads in seconds

    letters = list(get_alphabet(alphabet).all_letters)
    model = RustTokenizer(rust_models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=BERT_SPECIALS, initial_alphabet=letters, show_progress=False
    )
    model.train_from_iterator((_upper(s) for s in seqs), trainer=trainer)
    cls, sep = model.token_to_id("[CLS]"), model.token_to_id("[SEP]")
    model.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=1_000_000,
    )
    tok = HFTokenizer(hf, source=f"bpe:{vocab_size}")
    tok.alphabet = alphabet
    return tok


def _known_vocab_sizes() -> dict[int, list[str]]:
    sizes: dict[int, list[str]] = {}
    for k in KMER_SIZES:
        sizes.setdefault(len(BERT_SPECIALS) + 4**k, []).append(f"kmer:{k}")
    for k in NT_KMER_SIZES:
        sizes.setdefault(len(NT_SPECIALS) + 4**k + 5, []).append(f"nt-kmer:{k}")
    for spec, vocab in (
        ("char", CHAR_VOCAB),
        ("hyena", HYENA_VOCAB),
        ("esm", ESM_VOCAB),
        ("protbert", PROTBERT_VOCAB),
    ):
        sizes.setdefault(len(vocab), []).append(spec)
    return sizes


def spec_for_vocab(vocab: Sequence[str]) -> str | None:
    """The genoml spec whose vocabulary equals ``vocab`` id for id, or None. Trailing empty entries (a vocab.txt
    ending in a blank line, as ProtBert's does) are ignored: no tokenizer ever produces them."""
    vocab = list(vocab)
    while vocab and vocab[-1] == "":
        vocab.pop()
    for spec in _known_vocab_sizes().get(len(vocab), []):
        if build_tokenizer(spec).vocab == vocab:
            return spec
    return None


def load_tokenizer(folder: str | Path) -> SequenceTokenizer:
    """Tokenizer of a model folder: genoml_tokenizer.json first; else a HF vocabulary that matches a
    genoml tokenizer id for id; else an ``HFTokenizer`` adapter around the folder's HF tokenizer."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"{folder}: not a folder; give a model or tokenizer folder "
            "(written by genoml or transformers save_pretrained)"
        )
    meta = folder / GENOML_TOKENIZER_FILE
    if meta.is_file():
        spec = _read_spec(meta)
        if spec == "hf":
            return HFTokenizer(_auto_tokenizer(folder), source=folder)
        tokenizer = build_tokenizer(spec)
        _check_vocab_file(folder / "vocab.txt", tokenizer)
        return tokenizer
    try:
        hf = _auto_tokenizer(folder)
    except InputError:
        spec = _spec_from_vocab_file(folder / "vocab.txt") or _spec_from_model_config(folder / "config.json")
        if spec is None:
            raise
        logger.info(
            "%s: AutoTokenizer failed; vocab.txt / config.json name genoml tokenizer %s", folder, spec
        )
        return build_tokenizer(spec)
    spec = spec_for_vocab(_ordered_vocab(hf))
    if spec is not None:
        logger.info("%s: tokenizer vocabulary matches genoml %s id for id", folder, spec)
        return build_tokenizer(spec)
    return HFTokenizer(hf, source=folder)


def _read_spec(path: Path) -> str:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))["spec"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InputError(
            f'{path}: expected JSON with a \'spec\' key like {{"spec": "kmer:6"}} ({err}); '
            "rewrite it with tokenizer.save_pretrained(folder)"
        ) from err
    return str(spec)


def _check_vocab_file(path: Path, tokenizer: SequenceTokenizer) -> None:
    if path.is_file() and path.read_text(encoding="utf-8").splitlines() != tokenizer.vocab:
        raise InputError(
            f"{path}: vocabulary differs from the {tokenizer.spec} vocabulary named in "
            f"{GENOML_TOKENIZER_FILE}; rewrite both with tokenizer.save_pretrained(folder)"
        )


def _spec_from_vocab_file(path: Path) -> str | None:
    if not path.is_file():
        return None
    return spec_for_vocab(line.strip() for line in path.read_text(encoding="utf-8").splitlines())


def _spec_from_model_config(path: Path) -> str | None:
    """'hyena' for a HyenaDNA config.json: its HyenaDNATokenizer ships as remote code (or not at all), and its
    fixed character vocabulary is genoml's ``hyena`` tokenizer."""
    from genoml.archs import detect  # heavy: genoml.archs loads torch; tokenizers alone do not need it

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return "hyena" if detect(raw) == "hyenadna" else None


def _auto_tokenizer(folder: Path):
    """``AutoTokenizer`` from local files only, never running code shipped with the model."""
    from transformers import AutoTokenizer  # heavy: transformers loads in seconds

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError... for unusable folders
        raise InputError(
            f"{folder}: no tokenizer that transformers can load without remote code ({err}); "
            "give a folder with vocab.txt/tokenizer.json, or a genoml tokenizer spec"
        ) from err


def _ordered_vocab(hf) -> list[str]:
    """The HF vocabulary as a list indexed by id ('' for ids the tokenizer leaves unused)."""
    mapping = hf.get_vocab()
    vocab = [""] * (max(mapping.values()) + 1 if mapping else 0)
    for tok, i in mapping.items():
        vocab[i] = tok
    return vocab


def _strip_marker(tok: str) -> str:
    """A vocabulary token without its word-piece marker ('##', 'Ġ', '▁')."""
    if tok.startswith("##"):
        return tok[2:]
    return tok[1:] if tok[:1] in ("Ġ", "▁") and len(tok) > 1 else tok


class HFTokenizer(SequenceTokenizer):
    """Adapter around a ``transformers`` tokenizer: does only the pre-tokenization the model expects.

    ``mode`` is found by probing the tokenizer: ``raw`` (the string as is: char-level RoBERTa vocabularies,
    BPE, NT), ``spaced`` (one letter per word: BERT char vocabularies) or ``kmer`` (space-separated overlapping
    k-mers: DNABERT-like vocabularies). Offsets come from ``return_offsets_mapping`` on fast tokenizers, else
    from token lengths (an unknown token then covers one letter in raw mode, one word otherwise).
    """

    def __init__(self, hf, source: str | Path = "") -> None:
        vocab = _ordered_vocab(hf)
        special_tokens = [t for t in hf.all_special_tokens if t in hf.get_vocab()]
        self.hf = hf
        self.source = str(source)
        self._setup(vocab, special_tokens)
        self.mode, self.k = self._detect_mode()
        self.n_prefix, self.n_suffix = self._probe_specials()

    def _setup(self, vocab: list[str], special_tokens: list[str]) -> None:
        hf = self.hf
        unk, pad, mask = hf.unk_token, hf.pad_token, hf.mask_token
        cls = hf.cls_token if hf.cls_token is not None else hf.bos_token
        eos = hf.sep_token if hf.sep_token is not None else hf.eos_token
        missing = [name for name, tok in (("unk", unk), ("pad", pad)) if tok is None]
        if missing:
            raise InputError(
                f"{self.source}: tokenizer has no {' or '.join(missing)} token; genoml needs both "
                "for padding and unknown letters; set them in tokenizer_config.json"
            )
        super().__init__(
            "hf",
            "dna",
            vocab,
            pad=pad,
            unk=unk,
            mask=mask if mask is not None else unk,
            cls=cls,
            eos=eos,
            extra_special=special_tokens,
        )
        if mask is None:
            self.mask_id = None  # type: ignore[assignment]  # no masked-LM with this tokenizer
        self._inserted = set(self._special) - {self.unk_id}
        words = [_strip_marker(t) for i, t in enumerate(vocab) if t and i not in self._special]
        self._content = [w for w in words if w and not _is_bracketed(w)]
        self.alphabet = _guess_alphabet(self._content)
        letters = "".join(self._content)
        self._case = (
            "upper" if letters == letters.upper() else ("lower" if letters == letters.lower() else "")
        )
        self._max_piece = max((len(w) for w in self._content), default=1)

    def _detect_mode(self) -> tuple[str, int]:
        letters = [w for w in self._content if w.isalpha()]
        singles = [w for w in letters if len(w) == 1]
        multi = {len(w) for w in letters if len(w) > 1}
        if singles and not multi:
            probe = singles[:3]
            if self._probe(probe, "".join(probe)):
                return "raw", 1
            if self._probe(probe, " ".join(probe)):
                return "spaced", 1
        elif len(multi) == 1 and not singles:
            k = multi.pop()
            probe = [w for w in letters if len(w) == k][:3]
            if self._probe(probe, " ".join(probe)):
                return "kmer", k
        return "raw", 1

    def _probe(self, words: list[str], text: str) -> bool:
        expected = [self.token_to_id[w] for w in words]
        return self.hf(text, add_special_tokens=False)["input_ids"] == expected

    def _probe_specials(self) -> tuple[int, int]:
        text = self._content[0] if self._content else "A"
        with_specials = self.hf(text)["input_ids"]
        bare = self.hf(text, add_special_tokens=False)["input_ids"]
        for start in range(len(with_specials) - len(bare) + 1):
            if with_specials[start : start + len(bare)] == bare:
                return start, len(with_specials) - len(bare) - start
        return 0, len(with_specials) - len(bare)

    def _prepare(self, seq: str) -> str:
        return _upper(seq) if self._case == "upper" else _lower(seq) if self._case == "lower" else seq

    def to_hf_text(self, seq: str) -> str:
        seq = self._prepare(seq)
        if self.mode == "spaced":
            return " ".join(seq)
        if self.mode == "kmer" and len(seq) >= self.k:
            return " ".join(seq[i : i + self.k] for i in range(len(seq) - self.k + 1))
        return seq

    def max_bases(self, max_tokens: int) -> int:
        """Exact for char and k-mer vocabularies; a lower bound for BPE (every token covers >= 1 letter)."""
        content = self._content_limit(max_tokens)
        return content + self.k - 1 if self.mode == "kmer" else content

    def encode(self, seq: str, max_tokens: int | None = None) -> Encoding:
        return self.encode_batch([seq], max_tokens)[0]

    def encode_batch(self, seqs: Iterable[str], max_tokens: int | None = None) -> list[Encoding]:
        limit = self._content_limit(max_tokens)
        seqs = [self._cut(self._prepare(s), limit) for s in seqs]
        if not seqs:
            return []
        texts = [self.to_hf_text(s) for s in seqs]
        fast = bool(getattr(self.hf, "is_fast", False))
        out = self.hf(texts, return_offsets_mapping=fast)
        encodings = []
        for i, (seq, text) in enumerate(zip(seqs, texts)):
            ids = list(out["input_ids"][i])
            special = [t in self._inserted for t in ids]
            spans = out["offset_mapping"][i] if fast else self._spans_from_tokens(text, ids, special)
            offsets = [
                (0, 0) if sp else self._to_seq_span(s, e, len(seq)) for (s, e), sp in zip(spans, special)
            ]
            if self.mode == "raw":
                offsets = _close_gaps(offsets, special)
            encodings.append(_truncate(Encoding(ids, offsets, special), limit))
        return encodings

    def _cut(self, seq: str, limit: int | None) -> str:
        """Drop letters that cannot reach the first ``limit`` tokens before tokenizing (long inputs)."""
        if limit is None:
            return seq
        if self.mode == "raw":
            return seq[: 2 * limit * self._max_piece + 16]  # slack so BPE merges near the cut stay intact
        return seq[: limit + self.k - 1]

    def _to_seq_span(self, start: int, end: int, length: int) -> tuple[int, int]:
        """Map a [start, end) span of the pre-tokenized text back to the sequence."""
        if self.mode == "raw":
            begin, finish = start, end
        else:
            width = self.k + 1  # a word and its separating space
            begin = start // width + start % width
            finish = (end - 1) // width + (end - 1) % width + 1 if end > start else begin
        begin = min(begin, length)
        return begin, min(max(finish, begin), length)

    def _spans_from_tokens(self, text: str, ids: list[int], special: list[bool]) -> list[tuple[int, int]]:
        """Text spans for a slow tokenizer, walking the text with each token's length."""
        spans, pos = [], 0
        for tok_id, is_special in zip(ids, special):
            if is_special:
                spans.append((0, 0))
                continue
            while pos < len(text) and text[pos] == " ":
                pos += 1
            if tok_id == self.unk_id:
                space = text.find(" ", pos)
                size = 1 if self.mode == "raw" else (space if space >= 0 else len(text)) - pos
            else:
                size = max(len(_strip_marker(self.vocab[tok_id])), 1)
            spans.append((pos, min(pos + size, len(text))))
            pos = min(pos + size, len(text))
        return spans

    def tokens(self, ids: Sequence[int]) -> list[str]:
        return self.hf.convert_ids_to_tokens([int(i) for i in ids])

    def save_pretrained(self, folder: str | Path) -> None:
        """The wrapped tokenizer's own files plus genoml_tokenizer.json ``{"spec": "hf"}``."""
        folder = Path(folder)
        self.hf.save_pretrained(str(folder))
        meta = {"spec": "hf", "mode": self.mode, "k": self.k, "vocab_size": len(self)}
        _write_json(folder / GENOML_TOKENIZER_FILE, meta)


def _close_gaps(offsets: list[tuple[int, int]], special: list[bool]) -> list[tuple[int, int]]:
    """Extend a token's span back over letters no token covers: a normalizer that rewrites a run (GENA-LM maps
    N{10,} to one '-' token) leaves the token aligned to the run's last letter only."""
    out, end = list(offsets), 0
    for i, ((start, stop), sp) in enumerate(zip(offsets, special)):
        if sp:
            continue
        if start > end:
            out[i] = (end, stop)
        end = max(end, stop)
    return out


def _is_bracketed(tok: str) -> bool:
    return len(tok) > 2 and ((tok[0] == "<" and tok[-1] == ">") or (tok[0] == "[" and tok[-1] == "]"))


def _guess_alphabet(words: list[str]) -> str:
    """'dna' when at least 90% of the vocabulary's letter tokens use only A C G T U N."""
    letters = [w.upper() for w in words if w.isalpha()]
    if not letters:
        return "protein"
    dna = sum(1 for w in letters if set(w) <= _DNA_LETTERS)
    return "dna" if dna >= 0.9 * len(letters) else "protein"


def _truncate(enc: Encoding, limit: int | None) -> Encoding:
    """Keep the leading/trailing specials and the first ``limit`` tokens between them."""
    mask = enc.special_mask
    lead = next((i for i, sp in enumerate(mask) if not sp), len(mask))
    tail = next((i for i, sp in enumerate(reversed(mask)) if not sp), 0)
    if limit is None or len(mask) - lead - tail <= limit:
        return enc
    keep = list(range(lead + limit)) + list(range(len(mask) - tail, len(mask)))
    return Encoding([enc.ids[i] for i in keep], [enc.offsets[i] for i in keep], [mask[i] for i in keep])


_ONE_HOT = np.full((256, 4), 0.25, dtype=np.float32)
_ONE_HOT[[ord(c) for c in "ACGTacgtUu"]] = 0.0
for _col, _bases in enumerate(("Aa", "Cc", "Gg", "TtUu")):
    for _base in _bases:
        _ONE_HOT[ord(_base), _col] = 1.0


def one_hot(seq: str) -> np.ndarray:
    """(L, 4) float32 one-hot in A C G T order (U counts as T); N or any other letter -> 0.25 each."""
    codes = np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)  # (L,)
    return _ONE_HOT[codes]
