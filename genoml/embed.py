"""`genoml embed`: per-sequence embeddings (mean or CLS pooled, any layer) written to .npz with ids.

Works on a genoml run directory or on any plain pretrained encoder folder / hub id. Long
sequences are windowed like in finetune and window embeddings averaged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import snapshot_download

from genoml import models
from genoml.config import BASELINE_MODELS, POOLINGS
from genoml.data import aggregate_windows, collate, make_windows, token_budget_batches
from genoml.device import (
    autocast,
    default_batch_tokens,
    fused_kernels,
    model_device,
    quantize_int8,
    resolve_device,
    resolve_precision,
)
from genoml.errors import InputError
from genoml.io import read_records
from genoml.outputs import atomic_file, check_output_file
from genoml.runs import RunMeta
from genoml.tokenizers import load_tokenizer

log = logging.getLogger(__name__)


def load_encoder_and_tokenizer(model: str, *, revision: str | None = None, trust_remote_code: bool = False):
    meta = RunMeta.peek(model) if Path(model).is_dir() else None
    if meta is not None and meta.arch in BASELINE_MODELS:  # a pretrain folder's arch is its model type: fine
        raise InputError(f"--model {model}: a '{meta.arch}' baseline has no encoder embeddings")
    encoder = models.load_hf_encoder(model, revision=revision, trust_remote_code=trust_remote_code)
    return encoder, load_tokenizer(_tokenizer_folder(model, revision)), models.max_positions(encoder)


def _tokenizer_folder(model: str, revision: str | None) -> str:
    """The local folder holding the tokenizer files of a folder or (downloaded) hub id."""
    if Path(model).expanduser().is_dir():
        return model
    try:
        return snapshot_download(model, revision=revision, allow_patterns=["*.json", "*.txt", "*.model"])
    except Exception as e:  # noqa: BLE001
        raise InputError(f"--model {model}: {models.HUB_HINT} ({type(e).__name__})") from None


def embed_sequences(
    encoder,
    tokenizer,
    seqs: list[str],
    *,
    max_tokens: int,
    layer: int = -1,
    pooling: str = "mean",
    batch_tokens: int | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """-> (N, H) float32 embeddings of `layer` (index into hidden_states; -1 = last), (N, 2H) for `meanmax`
    pooling (models.pool; "auto" is resolved as finetune resolves it). Batches (B, L) run on the encoder's
    device (bf16 autocast on CUDA, or on CPU with precision="bf16")."""
    pooling = models.pooling_for(pooling, encoder)
    encoder.eval()
    device = model_device(encoder)
    batch_tokens = default_batch_tokens(device, batch_tokens)
    if precision == "int8":
        encoder = quantize_int8(encoder)
    win = make_windows(seqs, tokenizer, max_tokens)
    out = None
    with torch.inference_mode(), fused_kernels():
        for idx in token_budget_batches([len(x) for x in win.ids], batch_tokens):
            ids, mask = collate([win.ids[i] for i in idx], tokenizer.pad_id)  # (B, L) each
            ids, mask = ids.to(device), mask.to(device)
            with autocast(device, precision):
                hs = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
            if not -len(hs) <= layer < len(hs):
                raise InputError(
                    f"--layer {layer}: the model has {len(hs)} hidden-state layers (0 = embeddings)"
                )
            pooled = models.pool(hs[layer].float(), mask, pooling).float().cpu()  # (B, H)
            if out is None:
                out = torch.zeros(len(win.ids), pooled.shape[1])
            out[torch.as_tensor(idx)] = pooled
    if out is None:
        return np.zeros((0, models.pooled_width(encoder.config.hidden_size, pooling)), dtype=np.float32)
    return aggregate_windows(out, win.parent, len(seqs), "mean").numpy().astype(np.float32)


def run_embed(
    model: str,
    spec,
    output: str,
    *,
    layer: int = -1,
    pooling: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    batch_tokens: int | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> dict:
    dev = resolve_device(device)
    precision = resolve_precision(precision)

    if pooling not in POOLINGS:
        raise InputError(f"--pooling {pooling}: use {', '.join(POOLINGS)}")
    check_output_file(output, flag="-o", inputs=[spec.path, spec.bed, spec.genome, model])
    if not output.endswith(".npz"):
        raise InputError(f"-o {output}: embeddings are written as .npz; give a file name ending in .npz")
    encoder, tokenizer, max_tokens = load_encoder_and_tokenizer(
        model, revision=revision, trust_remote_code=trust_remote_code
    )
    encoder.to(dev)
    if spec.alphabet == "auto":
        spec.alphabet = tokenizer.alphabet
    records = list(read_records(spec))
    emb = embed_sequences(
        encoder,
        tokenizer,
        [r.seq for r in records],
        max_tokens=max_tokens,
        layer=layer,
        pooling=pooling,
        batch_tokens=batch_tokens,
        precision=precision,
    )
    with atomic_file(output, "wb") as fh:
        np.savez(fh, ids=np.array([r.id for r in records]), embeddings=emb)
    log.info("wrote %d embeddings of size %d to %s", *emb.shape, output)
    return {"n": emb.shape[0], "dim": emb.shape[1]}
