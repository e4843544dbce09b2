"""DNABERT-2 (zhihan1996/DNABERT-2-117M): MosaicBERT with ALiBi attention biases, in plain PyTorch.

Faithful to the published ``bert_layers.py`` (no triton, no flash-attn, no unpadding):
- embeddings: ``LayerNorm(word_embeddings(ids) + token_type_embeddings(0))``, no position embeddings;
- attention: fused ``Wqkv`` (H -> 3H, laid out ``(3, heads, head_dim)``), scores ``q k^T / sqrt(d)`` plus the
  ALiBi bias ``-slope_h * |i - j|`` plus ``(1 - mask) * -10000``; post-LN ``attention.output``;
- feed-forward: ``gated_layers`` (H -> 2I, no bias), ``GELU(first I) * (second I)``, ``wo`` (I -> H), post-LN
  ``mlp.layernorm``;
- padded positions of every returned hidden state are 0 (the published model drops them and pads back with 0).

State-dict keys equal the published ``BertModel``'s (``embeddings.*``, ``encoder.layer.N.*``); a ``BertForMaskedLM``
checkpoint's ``bert.`` prefix is stripped by ``from_pretrained`` and its ``cls.predictions.*`` head is unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from genoml.archs.base import NativeConfig, NativePreTrainedModel
from genoml.errors import InputError

ALIBI_MAX_TOKENS = (
    2048  # default window for genoml: ALiBi has no position table (alibi_starting_size is a cache size)
)


class DNABert2Config(NativeConfig):
    model_type = "genoml_dnabert2"

    def __init__(
        self,
        vocab_size=4096,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        alibi_starting_size=512,
        pad_token_id=0,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings  # kept from the published config; not a limit
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.alibi_starting_size = alibi_starting_size
        if hidden_size % num_attention_heads:
            raise InputError(
                f"config.json: hidden_size {hidden_size} is not a multiple of num_attention_heads "
                f"{num_attention_heads}; DNABERT-2 splits the hidden size evenly over heads"
            )


def alibi_slopes(n_heads: int) -> list[float]:
    """Per-head ALiBi slopes as in the published code (geometric for 2^k heads; interleaved otherwise)."""

    def power_of_2(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


def alibi_bias(n_heads: int, size: int, device=None) -> torch.Tensor:
    """(1, heads, size, size) float32 bias ``-slope_h * |i - j|``."""
    pos = torch.arange(size, device=device)
    relative = (pos[None, :] - pos[:, None]).abs()  # (size, size)
    slopes = torch.tensor(alibi_slopes(n_heads), dtype=torch.float32, device=device)  # (heads,)
    return (slopes[:, None, None] * -relative).unsqueeze(0)


class DNABert2Embeddings(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        token_type = self.token_type_embeddings.weight[0]  # (H,) every token is segment 0
        return self.dropout(self.LayerNorm(inputs_embeds + token_type))  # (B, L, H)


class DNABert2SelfAttention(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.p_dropout = config.attention_probs_dropout_prob

    def forward(self, h: torch.Tensor, bias: torch.Tensor, output_attentions: bool):
        b, n, _ = h.shape
        qkv = self.Wqkv(h).view(b, n, 3, self.heads, self.head_dim)  # (B, L, 3, heads, d)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (B, heads, L, d) each
        p = self.p_dropout if self.training else 0.0
        if output_attentions:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias  # (B, heads, L, L)
            probs = F.dropout(scores.softmax(-1), p, self.training)
            out = probs @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype), dropout_p=p)
        return out.transpose(1, 2).reshape(b, n, -1), probs  # (B, L, H)


class DNABert2SelfOutput(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class DNABert2Attention(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.self = DNABert2SelfAttention(config)
        self.output = DNABert2SelfOutput(config)

    def forward(self, h, bias, output_attentions):
        attn, probs = self.self(h, bias, output_attentions)
        return self.output(attn, h), probs


class DNABert2GatedMLP(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gated_layers = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.act = nn.GELU(approximate="none")
        self.wo = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.gated_layers(h)  # (B, L, 2I)
        x = self.act(x[..., : self.intermediate_size]) * x[..., self.intermediate_size :]  # (B, L, I)
        return self.layernorm(self.wo(self.dropout(x)) + h)


class DNABert2Layer(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.attention = DNABert2Attention(config)
        self.mlp = DNABert2GatedMLP(config)

    def forward(self, h, bias, output_attentions=False):
        h, probs = self.attention(h, bias, output_attentions)
        return self.mlp(h), probs


class DNABert2Encoder(nn.Module):
    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.layer = nn.ModuleList(DNABert2Layer(config) for _ in range(config.num_hidden_layers))


class DNABert2Model(NativePreTrainedModel):
    """The DNABERT-2 encoder (published ``BertModel`` without its pooler)."""

    config_class = DNABert2Config
    base_model_prefix = "bert"
    _no_split_modules = ["DNABert2Layer"]

    def __init__(self, config: DNABert2Config):
        super().__init__(config)
        self.embeddings = DNABert2Embeddings(config)
        self.encoder = DNABert2Encoder(config)
        self._alibi: torch.Tensor | None = None  # (1, heads, S, S) cache, rebuilt when a longer input comes
        self.post_init()

    def _alibi_for(self, n: int, device) -> torch.Tensor:
        cache = self._alibi
        if cache is None or cache.shape[-1] < n or cache.device != torch.device(device):
            size = max(n, int(self.config.alibi_starting_size))
            cache = self._alibi = alibi_bias(self.config.num_attention_heads, size, device)
        return cache[:, :, :n, :n]

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        inputs_embeds=None,
        output_attentions=False,
        output_hidden_states=False,
        return_dict=True,
        **kwargs,
    ) -> BaseModelOutput:
        inputs_embeds, attention_mask = self.embedded_inputs(input_ids, inputs_embeds, attention_mask)
        n = inputs_embeds.shape[1]
        keep = attention_mask.to(inputs_embeds.dtype).unsqueeze(-1)  # (B, L, 1)
        pad_bias = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0  # (B, 1, 1, L) float32
        bias = pad_bias + self._alibi_for(n, inputs_embeds.device)  # (B, heads, L, L)
        h = self.embeddings(inputs_embeds)
        hidden, attentions = [h * keep], []
        for layer in self.encoder.layer:
            h, probs = layer(h, bias, output_attentions)
            hidden.append(h * keep)
            attentions.append(probs)
        return BaseModelOutput(
            last_hidden_state=hidden[-1],  # (B, L, H), 0 at padding
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


CONFIG_CLASS = DNABert2Config
MODEL_CLASS = DNABert2Model
