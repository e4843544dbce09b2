"""Freeze-or-fine-tune strategies applied to a `SequenceModel` in place.

probe: encoder frozen (features cached by finetune); partial:N: embeddings and all but the last
N layers frozen; lora: PEFT LoRA adapters on attention projections, head trainable; full: all.
"""

from __future__ import annotations

import logging
import warnings

from torch import nn

from genoml.models import SequenceModel, hidden_layers

log = logging.getLogger(__name__)

# attention projection names per architecture family (PEFT target_modules)
LORA_TARGETS = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "esm": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "nucleotide_transformer": ["query", "key", "value"],
    "genoml_ntv2": ["query", "key", "value"],
    "genoml_dnabert2": ["Wqkv"],  # DNABERT-2's fused query/key/value projection
    "genoml_gena": ["query", "key", "value"],
    "genoml_hyenadna": ["in_proj", "out_proj"],  # the Hyena operator's projections (it has no attention)
    "genoml_convlm": ["down", "up"],  # the pointwise projections around each dilated convolution
}


def freeze_(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def freeze_all_but_last_n_layers_(model: SequenceModel, n: int) -> None:
    """Freeze the encoder's embeddings and every transformer block but the last n."""
    freeze_(model.encoder)
    layers = hidden_layers(model.encoder)
    for block in list(layers)[len(layers) - n :] if n > 0 else []:
        for p in block.parameters():
            p.requires_grad_(True)


def lora_targets(encoder: nn.Module) -> list[str]:
    """Per-architecture LoRA targets, else any Linear named like an attention projection."""
    known = LORA_TARGETS.get(getattr(encoder.config, "model_type", ""), None)
    if known:
        return known
    names = {name.rsplit(".", 1)[-1] for name, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    guess = [n for n in names if n in ("query", "key", "value", "q_proj", "k_proj", "v_proj", "Wqkv", "qkv")]
    return sorted(guess) or sorted(names)


def apply_lora_(model: SequenceModel, rank: int = 8) -> None:
    """Wrap the encoder with PEFT LoRA; the head (`classifier`) stays a normal trainable module."""
    from peft import LoraConfig, get_peft_model  # heavy: peft imports transformers' trainer stack

    cfg = LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=lora_targets(model.encoder)
    )
    with (
        warnings.catch_warnings()
    ):  # peft reads transformers' deprecated is_gradient_checkpointing: not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model.encoder = get_peft_model(model.encoder, cfg)


def merge_lora_(model: SequenceModel) -> None:
    """Fold LoRA weights into the encoder so the saved folder is a plain transformers model."""
    if hasattr(model.encoder, "merge_and_unload"):
        model.encoder = model.encoder.merge_and_unload()


def apply_strategy_(model: SequenceModel, strategy: str, partial_layers: int = 2, lora_rank: int = 8) -> None:
    """Set requires_grad according to the strategy (baselines always train fully)."""
    if model.arch != "hf" or strategy == "full":
        return
    if strategy == "probe":
        freeze_(model.encoder)
    elif strategy == "partial":
        freeze_all_but_last_n_layers_(model, partial_layers)
    elif strategy == "lora":
        apply_lora_(model, lora_rank)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
