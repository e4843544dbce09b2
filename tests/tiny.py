"""Tiny models and toy data built inside the tests (no hub, seconds on CPU)."""

from __future__ import annotations

import random
from pathlib import Path

MOTIF = "TATAATGC"


def planted_motif_rows(n: int, length: int = 40, seed: int = 0) -> list[tuple[str, str]]:
    """(sequence, label): label 1 sequences carry MOTIF at a random position, label 0 do not."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        while True:
            seq = "".join(rng.choice("ACGT") for _ in range(length))
            if MOTIF not in seq:
                break
        if label:
            p = rng.randrange(0, length - len(MOTIF))
            seq = seq[:p] + MOTIF + seq[p + len(MOTIF) :]
        rows.append((seq, str(label)))
    return rows


def write_csv(path: Path, rows, header=("sequence", "label")) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def write_fasta(path: Path, rows, with_labels: bool = True) -> Path:
    lines = []
    for i, (seq, label) in enumerate(rows):
        lines.append(f">s{i}" + (f" label={label}" if with_labels else ""))
        lines.append(seq)
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny_bert_folder(folder: Path, tokenizer_spec: str = "char", layers: int = 2, seed: int = 0) -> Path:
    """A random tiny BERT masked LM + genoml tokenizer saved as a Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from genoml.tokenizers import build_tokenizer

    tok = build_tokenizer(tokenizer_spec)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tok.pad_id,
        attention_probs_dropout_prob=0.0,
    )
    BertForMaskedLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_esm_folder(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import EsmConfig, EsmForMaskedLM

    from genoml.tokenizers import build_tokenizer

    tok = build_tokenizer("esm")
    torch.manual_seed(seed)
    cfg = EsmConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tok.pad_id,
        mask_token_id=tok.mask_id,
        position_embedding_type="rotary",
        token_dropout=False,
    )
    EsmForMaskedLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
