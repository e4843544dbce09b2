"""The model and tokenizer a pretraining run trains, and the checks of its inputs.

`load_model_and_tokenizer(cfg) -> (tokenizer, masked LM, alphabet)`: a new preset model, or a Hugging
Face masked LM (local folder or hub id) for continued pretraining; `corpus_bpe` learns a BPE vocabulary
from the corpus first (--tokenizer bpe:V). `tokens_for_window` and `check_window` relate --window (bases
or residues) to tokens and to the model's positions; `input_files` checks the FASTA paths.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
from torch import nn

from genoml.archs import check_loading, detect, native_module
from genoml.config import PretrainConfig
from genoml.corpus import Corpus
from genoml.errors import InputError
from genoml.io import detect_alphabet, read_fasta
from genoml.models import check_safe_weights, max_positions, read_model_config
from genoml.presets import build_mlm_model
from genoml.tokenizers import build_tokenizer, load_tokenizer, train_bpe

log = logging.getLogger(__name__)

BPE_SAMPLE_LETTERS = 5_000_000  # letters of training windows a BPE vocabulary is learned from


def input_files(inputs: list[str]) -> list[Path]:
    """The input FASTA paths, each checked to be an existing file."""
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


def first_record_alphabet(path: Path) -> str:
    """ "dna" or "protein", from the first 10,000 letters of the first record of `path`."""
    first = next(read_fasta(path, alphabet="auto"))
    return detect_alphabet([first.seq[:10_000]])


def _resolve_model_folder(spec: str) -> Path:
    local = Path(spec).expanduser()
    if local.is_dir():
        return local
    try:
        # optional: only a hub id needs the hub client
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except Exception as e:  # noqa: BLE001 - any hub failure is reported the same way
        raise InputError(
            f"--model {spec}: not a local folder, and the Hugging Face Hub could not provide it "
            f"({type(e).__name__}); download the model elsewhere and pass its local folder"
        ) from None


def _refuse_foreign_code(spec, folder: Path) -> None:
    """Masked-LM training runs transformers' own classes or genoml's own masked LMs only: a published native
    architecture (genoml implements its encoder, not its LM head) or a config asking for remote code would load
    as something else."""
    raw = read_model_config(str(folder))
    native = detect(raw)
    if native and hasattr(native_module(native), "MLM_CLASS"):
        return  # genoml's own masked LM (pretrain --arch cnn): its LM head is genoml's too
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
    if cfg.model:
        return _load_published(cfg.model)
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
            alphabet = first_record_alphabet(input_files(cfg.inputs)[0])
        tokenizer = build_tokenizer("char" if alphabet == "dna" else "esm")
    max_tokens = tokens_for_window(tokenizer, cfg.window)
    return (
        tokenizer,
        build_mlm_model(cfg.preset, tokenizer, max_tokens, cfg.arch, dropout=cfg.dropout),
        tokenizer.alphabet,
    )


def _load_published(spec: str):
    """(tokenizer, masked LM, alphabet) of the HF masked-LM folder or hub id `spec` (--model)."""
    # heavy: transformers loads in ~2 s
    from transformers import AutoModelForMaskedLM

    folder = _resolve_model_folder(spec)
    check_safe_weights(folder)
    _refuse_foreign_code(spec, folder)
    tokenizer = load_tokenizer(folder)
    try:
        mlm, info = AutoModelForMaskedLM.from_pretrained(
            str(folder), attn_implementation="sdpa", output_loading_info=True
        )
    except (OSError, ValueError) as e:
        raise InputError(
            f"--model {spec}: not a masked-LM folder transformers can load: {str(e).splitlines()[0]}"
        ) from None
    # an encoder-only checkpoint may start a new LM head; anything else must load
    info = {
        **info,
        "missing_keys": [k for k in info.get("missing_keys", ()) if not k.startswith(("cls.", "lm_head."))],
    }
    check_loading(info, where=str(spec), arch=f"{type(mlm).__name__} (model_type {mlm.config.model_type})")
    return tokenizer, mlm, tokenizer.alphabet


def tokens_for_window(tokenizer, window: int) -> int:
    """Tokens (specials included) of a full window of `window` bases/residues. For a raw-text HF
    tokenizer (BPE) the bound: one token per letter."""
    if getattr(tokenizer, "mode", None) == "raw":
        return window + tokenizer.n_prefix + tokenizer.n_suffix
    return len(tokenizer.encode("A" * window).ids)


def check_window(cfg: PretrainConfig, tokenizer, mlm) -> None:
    """Refuse a --window whose tokens do not fit the model's positions, naming the largest that does."""
    max_tokens, limit = tokens_for_window(tokenizer, cfg.window), max_positions(mlm)
    if max_tokens > limit:
        raise InputError(
            f"--window {cfg.window}: needs {max_tokens} tokens but the model takes at most {limit}; "
            f"use --window {tokenizer.max_bases(limit)} or less"
        )


def corpus_bpe(corpus: Corpus, vocab_size: int, out: Path, cfg: PretrainConfig, state):
    """--tokenizer bpe:V: rank 0 learns the vocabulary from seeded training windows (never the held-out
    part) and saves it under out/bpe-tokenizer; every rank then loads that folder (so all agree, and
    --resume reuses it)."""
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


def compile_encoder_(mlm: nn.Module) -> nn.Module:
    """--compile: torch.compile the encoder in place (parameter names, hence checkpoints, unchanged)."""
    try:
        mlm.base_model.compile()
    except Exception as e:  # noqa: BLE001 - compilation is an optimisation: report and run eagerly
        log.warning("--compile: torch.compile failed (%s); training without it", str(e).splitlines()[0][:200])
    return mlm
