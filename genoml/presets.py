"""Model presets for masked-LM pretraining: BERT for DNA, ESM-2 style for protein, built from scratch.

`build_mlm_model(preset, tokenizer, max_tokens)` returns a Hugging Face `*ForMaskedLM` whose vocabulary,
pad and mask ids come from the genoml tokenizer; attention dropout is 0 and attention is SDPA, so the
fused kernel runs on CPU too. `build_random_encoder` is the same architecture without its LM head and
without pretraining: the "random-init" baseline of finetune.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads only when a model is built: `genoml --help` stays fast
    from torch import nn

from genoml.errors import InputError


@dataclass(frozen=True)
class Preset:
    hidden: int
    layers: int
    heads: int
    intermediate: int


PRESETS = {
    "tiny": Preset(hidden=32, layers=2, heads=2, intermediate=64),
    "mini": Preset(hidden=128, layers=4, heads=4, intermediate=512),
    "small": Preset(hidden=256, layers=4, heads=4, intermediate=1024),
    "base": Preset(hidden=768, layers=12, heads=12, intermediate=3072),
}
ARCHS = ("bert", "esm")


def default_arch(tokenizer) -> str:
    return "bert" if tokenizer.alphabet == "dna" else "esm"


def build_config(preset: str, tokenizer, max_tokens: int, arch: str | None = None, *, dropout: float = 0.1):
    """The transformers config (BertConfig or EsmConfig) of a preset for this tokenizer."""
    from transformers import BertConfig, EsmConfig

    if preset not in PRESETS:
        raise InputError(f"--preset: '{preset}' is not a preset; use one of {', '.join(PRESETS)}")
    arch = arch or default_arch(tokenizer)
    if arch not in ARCHS:
        raise InputError(f"architecture '{arch}' is not supported; use one of {', '.join(ARCHS)}")
    p = PRESETS[preset]
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=p.hidden,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        intermediate_size=p.intermediate,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=max_tokens,
        pad_token_id=tokenizer.pad_id,
        attn_implementation="sdpa",
    )
    if arch == "bert":
        return BertConfig(**common, type_vocab_size=1)
    # ESM-2: rotary positions, pre-LN with a final LayerNorm, no token dropout (keeps finetune inputs unscaled)
    return EsmConfig(
        **common,
        mask_token_id=tokenizer.mask_id,
        position_embedding_type="rotary",
        token_dropout=False,
        emb_layer_norm_before=False,
        layer_norm_eps=1e-5,
    )


def build_mlm_model(
    preset: str, tokenizer, max_tokens: int, arch: str | None = None, *, dropout: float = 0.1
):
    """A randomly initialised masked LM (BertForMaskedLM / EsmForMaskedLM). ESM's unused contact head is frozen."""
    from transformers import BertForMaskedLM, EsmForMaskedLM

    config = build_config(preset, tokenizer, max_tokens, arch, dropout=dropout)
    model = (BertForMaskedLM if config.model_type == "bert" else EsmForMaskedLM)(config)
    freeze_unused_(model)
    return model


def build_random_encoder(preset: str, tokenizer, max_tokens: int, arch: str | None = None) -> nn.Module:
    """The encoder (BertModel / EsmModel, no pooler) of a preset, randomly initialised: finetune's baseline."""
    from transformers import BertModel, EsmModel

    config = build_config(preset, tokenizer, max_tokens, arch)
    if config.model_type == "bert":
        return BertModel(config, add_pooling_layer=False)
    model = EsmModel(config, add_pooling_layer=False)
    freeze_unused_(model)
    return model


def freeze_unused_(model: nn.Module) -> nn.Module:
    """Freeze parameters a masked-LM forward never uses (ESM's contact-prediction head), so DDP does not wait
    for their gradients."""
    for name, module in model.named_modules():
        if name.endswith("contact_head"):
            module.requires_grad_(False)
    return model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
