"""The model a fine-tuning run starts from: an encoder with a fresh head, or a from-scratch baseline.

`build_model(cfg, name, alphabet, labels)` -> (SequenceModel, tokenizer, max_tokens, source): `name` is a
genoml run or multitask folder (its trunk), a baseline net (cnn, rnn, ...), `random:<preset>`, or a Hub id /
transformers folder. The tokenizer's alphabet must match the data's; max_tokens never exceeds the encoder's
positions. `model_name` resolves "embedded" (and no model) to the shipped genoml model folder.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import snapshot_download

from genoml.config import BASELINE_NETS, FinetuneConfig
from genoml.data import LabelSpace
from genoml.errors import InputError
from genoml.models import HUB_HINT, SequenceModel, build_baseline, load_hf_encoder, max_positions, pooling_for
from genoml.presets import build_random_encoder
from genoml.pretrained import default_model_dir
from genoml.tokenizers import build_tokenizer, load_tokenizer
from genoml.trunks import base_meta, build_from_base


def default_model(alphabet: str) -> str:
    path = default_model_dir(alphabet)
    if path is None:
        raise InputError(
            f"no embedded genoml {alphabet} model is installed; pass --model <hub id or folder> "
            "(or --model cnn / rnn / kmer-linear for a baseline)"
        )
    return str(path)


def model_name(cfg: FinetuneConfig, alphabet: str) -> str:
    """--model, with "embedded" (or no model outside --model auto) resolved to the shipped model folder."""
    return default_model(alphabet) if cfg.model in (None, "auto", "embedded") else cfg.model


def build_model(cfg: FinetuneConfig, name: str, alphabet: str, labels: LabelSpace):
    """The model `name` (see the module doc) -> (SequenceModel, tokenizer, max_tokens, source description)."""
    common = dict(labels=labels.names, task=labels.task)
    if base_meta(name) is not None:  # a genoml cnn / cnn-shallow / rnn run or multitask folder: its trunk
        model, tok = build_from_base(name, alphabet, labels.n_out, head=cfg.head, **common)
        return model, tok, cfg.max_tokens or 1024, name
    if name in BASELINE_NETS:
        tok = build_tokenizer("char" if alphabet == "dna" else "esm")
        model = build_baseline(name, tok, labels.n_out, head=cfg.head, **common)
        return model, tok, cfg.max_tokens or 1024, name
    if name.startswith("random:"):
        tok = build_tokenizer("char" if alphabet == "dna" else "esm")
        encoder = build_random_encoder(name.split(":", 1)[1], tok, 512)
    else:
        encoder = load_hf_encoder(name, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
        tok = load_tokenizer(name) if Path(name).is_dir() else load_tokenizer(_hub_snapshot(name, cfg))
    if tok.alphabet != alphabet:
        raise InputError(f"--model {name}: a {tok.alphabet} model, but the input sequences are {alphabet}")
    max_tokens = min(cfg.max_tokens or max_positions(encoder), max_positions(encoder))
    pooling = pooling_for(cfg.pooling, encoder)
    model = SequenceModel(
        "hf", encoder, labels.n_out, tokenizer=tok, pooling=pooling, head=cfg.head, **common
    )
    return model, tok, max_tokens, name


def _hub_snapshot(name: str, cfg: FinetuneConfig) -> str:
    """The tokenizer files of a Hub model (downloaded or cached) -> their local folder."""
    try:
        return snapshot_download(name, revision=cfg.revision, allow_patterns=["*.json", "*.txt", "*.model"])
    except Exception as e:  # noqa: BLE001
        raise InputError(f"--model {name}: {HUB_HINT} ({type(e).__name__})") from None
