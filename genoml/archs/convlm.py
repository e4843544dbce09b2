"""genoml's convolutional masked LM (`genoml pretrain --arch cnn`): a dilated residual CNN with a prediction at
every position, pretrained with the same span masking as the transformers.

The trunk is ByteNet-style, as in CARP (Yang et al. 2022, "Convolutions are competitive with transformers for
protein sequence pretraining") and the dilated towers of Basenji: token embeddings (B, L, H), then
`num_hidden_layers` pre-LayerNorm residual blocks

    x + Dropout(Linear(H/2 -> H)(GELU(DilatedConv1d(H/2, k, d)(GELU(Linear(H -> H/2)(LN(x)))))))

with dilations 1, 2, 4, ... doubling up to `max_dilation` and repeating: 8 blocks of kernel 9 with dilations
1, 2, 4, 8, 16, 1, 2, 4 see ±152 positions. No position embeddings: convolutions are translation-equivariant,
and there is no length limit. Padding is exact: padded positions are zeroed before every convolution, whose own "same" padding is zeros, so
the outputs at real positions do not depend on how much right padding a batch has.

Contract (genoml.archs): `ConvLMModel.forward(input_ids | inputs_embeds, attention_mask, output_hidden_states)
-> .last_hidden_state (B, L, H)`, `.hidden_states`, `.attentions = None` (attention-free); blocks are
`model.encoder.layer` (what `partial:N` unfreezes); `ConvLMForMaskedLM` adds an `lm_head` (B, L, H) -> (B, L, V)
and is what `genoml pretrain` saves; `genoml finetune --model FOLDER` loads the trunk natively.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from genoml.archs.base import NativeConfig, NativePreTrainedModel


class ConvLMConfig(NativeConfig):
    model_type = "genoml_convlm"
    attention_free = True  # no attention maps: interpretation uses gradients

    def __init__(
        self,
        vocab_size: int = 16,
        hidden_size: int = 256,
        num_hidden_layers: int = 8,
        kernel_size: int = 9,
        max_dilation: int = 16,
        hidden_dropout_prob: float = 0.1,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        max_position_embeddings: int = 2
        ** 20,  # no position limit; windows are set by genoml.json's max_tokens
        pad_token_id: int = 0,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if hidden_size < 2 or num_hidden_layers < 1 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"ConvLMConfig: hidden_size {hidden_size} (>= 2), num_hidden_layers {num_hidden_layers} (>= 1) "
                f"and an odd kernel_size {kernel_size} (keeps the length) required"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.kernel_size = kernel_size
        self.max_dilation = max_dilation
        self.hidden_dropout_prob = hidden_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.max_position_embeddings = max_position_embeddings

    def dilation(self, i: int) -> int:
        """Dilation of block i: 1, 2, 4, ... up to max_dilation, then again from 1."""
        cycle = max(1, self.max_dilation).bit_length()
        return 2 ** (i % cycle)


class ConvBlock(nn.Module):
    """One pre-LN residual block: (B, L, H) -> (B, L, H); positions where mask (B, L, 1) is 0 stay 0 inside."""

    def __init__(self, config: ConvLMConfig, dilation: int):
        super().__init__()
        h, inner, k = config.hidden_size, max(1, config.hidden_size // 2), config.kernel_size
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.down = nn.Linear(h, inner)
        self.conv = nn.Conv1d(inner, inner, k, dilation=dilation, padding=dilation * (k - 1) // 2)
        self.up = nn.Linear(inner, h)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.down(self.norm(x))) * mask  # (B, L, H/2), padding zeroed before the convolution
        y = F.gelu(self.conv(y.transpose(1, 2)).transpose(1, 2))  # (B, L, H/2)
        return x + self.dropout(self.up(y))


class ConvEmbeddings(nn.Module):
    def __init__(self, config: ConvLMConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )


class ConvEncoder(nn.Module):
    def __init__(self, config: ConvLMConfig):
        super().__init__()
        self.layer = nn.ModuleList(
            ConvBlock(config, config.dilation(i)) for i in range(config.num_hidden_layers)
        )
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class ConvLMPreTrainedModel(NativePreTrainedModel):
    config_class = ConvLMConfig
    base_model_prefix = "convlm"
    _supports_sdpa = True  # no attention: any attn_implementation a loader asks for is accepted and unused

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Conv1d):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)


class ConvLMModel(ConvLMPreTrainedModel):
    """The trunk: input_ids (B, L) -> last_hidden_state (B, L, H)."""

    def __init__(self, config: ConvLMConfig):
        super().__init__(config)
        self.embeddings = ConvEmbeddings(config)
        self.encoder = ConvEncoder(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **_: object,
    ) -> BaseModelOutput:
        x, attention_mask = self.embedded_inputs(
            input_ids, inputs_embeds, attention_mask
        )  # (B, L, H), (B, L)
        mask = attention_mask.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        x = x * mask
        hidden = [x] if output_hidden_states else None
        for block in self.encoder.layer:
            x = block(x, mask) * mask
            if hidden is not None:
                hidden.append(x)
        x = self.encoder.final_norm(x) * mask
        return BaseModelOutput(
            last_hidden_state=x,
            hidden_states=tuple(hidden) if hidden is not None else None,
            attentions=None,
        )


class ConvLMForMaskedLM(ConvLMPreTrainedModel):
    """Trunk + LM head: logits (B, L, V) at every position; loss over labels != -100."""

    def __init__(self, config: ConvLMConfig):
        super().__init__(config)
        self.convlm = ConvLMModel(config)
        self.lm_head = nn.Sequential(
            nn.Linear(config.hidden_size, config.hidden_size),
            nn.GELU(),
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps),
            nn.Linear(config.hidden_size, config.vocab_size),
        )
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **_: object,
    ) -> MaskedLMOutput:
        out = self.convlm(
            input_ids=input_ids,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            output_hidden_states=output_hidden_states,
        )
        logits = self.lm_head(out.last_hidden_state)  # (B, L, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)


CONFIG_CLASS = ConvLMConfig
MODEL_CLASS = ConvLMModel
MLM_CLASS = ConvLMForMaskedLM
