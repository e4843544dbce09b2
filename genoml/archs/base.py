"""Shared pieces of the native architectures: a config base that reads published config.json dicts, and a
``PreTrainedModel`` base with BERT-style initialisation.

``NativeConfig.from_published(raw)`` drops the keys that tie a config to remote code (``auto_map``, the published
``model_type``/``architectures``) so a saved native model names genoml's own ``model_type`` and reloads natively.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

FOREIGN_KEYS = (
    "auto_map",
    "model_type",
    "architectures",
    "_name_or_path",
    "transformers_version",
    "torch_dtype",
    "dtype",
)


class NativeConfig(PretrainedConfig):
    """Base of the native configs; subclasses set ``model_type = "genoml_<name>"`` and their defaults."""

    model_type = "genoml_native"

    @classmethod
    def from_published(cls, raw: dict) -> NativeConfig:
        """A config from a published (or genoml-saved) config.json dict."""
        kwargs = {k: v for k, v in raw.items() if k not in FOREIGN_KEYS}
        return cls(**kwargs)


class NativePreTrainedModel(PreTrainedModel):
    """BERT-style init (normal(0, initializer_range), zero bias, unit LayerNorm) for weights a load leaves unset."""

    base_model_prefix = "bert"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def embedded_inputs(
        self,
        input_ids: torch.Tensor | None,
        inputs_embeds: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Exactly one of input_ids (B, L) / inputs_embeds (B, L, H) -> (word embeddings (B, L, H), attention_mask
        (B, L), all ones when not given)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)  # (B, L, H)
        if attention_mask is None:
            attention_mask = torch.ones(
                inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device
            )
        return inputs_embeds, attention_mask

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
