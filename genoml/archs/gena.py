"""GENA-LM (AIRI-Institute/gena-lm-bert-*): BERT with optional pre-LayerNorm blocks, in plain PyTorch.

Faithful to the published ``modeling_bert.py`` (dense attention, absolute positions):
- embeddings: ``LayerNorm(word + position + token_type(0))``;
- pre-LN block (``pre_layer_norm: true``): ``a = h + Attn(pre_attention_ln(h))``,
  ``h' = a + output.dense(act(intermediate.dense(post_attention_ln(a))))``; the attention/output sub-modules then
  have no LayerNorm of their own; with ``last_layer_norm`` (default: ``pre_layer_norm``) the final hidden state
  goes through ``encoder.last_layer_ln``;
- post-LN block (``pre_layer_norm: false``): the standard BERT layer with ``attention.output.LayerNorm`` and
  ``output.LayerNorm``.
Padding: an additive ``finfo.min`` mask on padded keys, as the published model (padded positions are computed, not
zeroed). Sparse attention (DeepSpeed) and non-absolute position schemes are refused with a clear message.

State-dict keys equal the published ``BertModel``'s (``embeddings.*`` incl. the ``position_ids`` buffer,
``encoder.layer.N.*``, ``encoder.last_layer_ln.*``); a ``BertForMaskedLM`` checkpoint's ``bert.`` prefix is stripped
by ``from_pretrained`` and its ``cls.predictions.*`` head is unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_outputs import BaseModelOutput

from genoml.archs.base import NativeConfig, NativePreTrainedModel
from genoml.errors import InputError


class GenaConfig(NativeConfig):
    model_type = "genoml_gena"

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=3,
        pre_layer_norm=True,
        last_layer_norm=None,
        position_embedding_type="absolute",
        **kwargs,
    ):
        sparse = kwargs.get("sparse_config_cls") or kwargs.get("sparse_attention")
        if sparse:
            raise InputError(
                "config.json: this GENA-LM model uses DeepSpeed sparse attention (sparse_config_cls / "
                "sparse_attention), which genoml does not implement; use a dense GENA-LM model "
                "(e.g. gena-lm-bert-base-t2t)"
            )
        if position_embedding_type != "absolute":
            raise InputError(
                f"config.json: position_embedding_type {position_embedding_type!r}: genoml's GENA-LM supports "
                "'absolute' positions only"
            )
        if hidden_size % num_attention_heads:
            raise InputError(
                f"config.json: hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.pre_layer_norm = bool(pre_layer_norm)
        self.last_layer_norm = self.pre_layer_norm if last_layer_norm is None else bool(last_layer_norm)
        self.position_embedding_type = position_embedding_type
        if self.last_layer_norm and not self.pre_layer_norm:
            raise InputError(
                "config.json: last_layer_norm needs pre_layer_norm (as in GENA-LM's modeling_bert.py)"
            )


class GenaEmbeddings(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        # a persistent buffer in the published code, so published checkpoints carry it
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)))

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        n = inputs_embeds.shape[1]
        if n > self.position_embeddings.num_embeddings:
            raise InputError(
                f"{n} tokens exceed GENA-LM's {self.position_embeddings.num_embeddings} positions; use a smaller --window"
            )
        pos = self.position_embeddings(self.position_ids[:, :n])  # (1, L, H)
        h = inputs_embeds + self.token_type_embeddings.weight[0] + pos
        return self.dropout(self.LayerNorm(h))  # (B, L, H)


class GenaSelfAttention(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.p_dropout = config.attention_probs_dropout_prob

    def forward(self, h, mask, output_attentions):
        b, n, _ = h.shape
        q, k, v = (
            lin(h).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            for lin in (self.query, self.key, self.value)
        )  # (B, heads, L, d) each
        p = self.p_dropout if self.training else 0.0
        if output_attentions:
            probs = (q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask).softmax(
                -1
            )  # (B, heads, L, L)
            out = F.dropout(probs, p, self.training) @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype), dropout_p=p)
        return out.transpose(1, 2).reshape(b, n, -1), probs  # (B, L, H)


class GenaSelfOutput(nn.Module):
    def __init__(self, config: GenaConfig, inner: int):
        super().__init__()
        self.pre_layer_norm = config.pre_layer_norm
        self.dense = nn.Linear(inner, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        if not self.pre_layer_norm:
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h, residual):
        h = self.dropout(self.dense(h))
        return h if self.pre_layer_norm else self.LayerNorm(h + residual)


class GenaAttention(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.self = GenaSelfAttention(config)
        self.output = GenaSelfOutput(config, config.hidden_size)

    def forward(self, h, mask, output_attentions):
        attn, probs = self.self(h, mask, output_attentions)
        return self.output(attn, h), probs


class GenaIntermediate(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]

    def forward(self, h):
        return self.act(self.dense(h))


class GenaLayer(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.pre_layer_norm = config.pre_layer_norm
        if self.pre_layer_norm:
            self.pre_attention_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.post_attention_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GenaAttention(config)
        self.intermediate = GenaIntermediate(config)
        self.output = GenaSelfOutput(config, config.intermediate_size)

    def forward(self, h, mask, output_attentions=False):
        if not self.pre_layer_norm:  # standard BERT
            a, probs = self.attention(h, mask, output_attentions)
            return self.output(self.intermediate(a), a), probs
        a, probs = self.attention(self.pre_attention_ln(h), mask, output_attentions)
        a = h + a
        return a + self.output(self.intermediate(self.post_attention_ln(a)), a), probs


class GenaEncoder(nn.Module):
    def __init__(self, config: GenaConfig):
        super().__init__()
        self.layer = nn.ModuleList(GenaLayer(config) for _ in range(config.num_hidden_layers))
        if config.last_layer_norm:
            self.last_layer_ln = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class GenaModel(NativePreTrainedModel):
    """The GENA-LM encoder (published ``BertModel`` without its pooler)."""

    config_class = GenaConfig
    base_model_prefix = "bert"
    _no_split_modules = ["GenaLayer"]

    def __init__(self, config: GenaConfig):
        super().__init__(config)
        self.embeddings = GenaEmbeddings(config)
        self.encoder = GenaEncoder(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GenaEmbeddings):  # a buffer, not a weight: rebuilt where a load left it unset
            module.position_ids.copy_(torch.arange(module.position_ids.shape[1]).expand((1, -1)))

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
        dtype = inputs_embeds.dtype
        mask = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min  # (B, 1, 1, L)
        h = self.embeddings(inputs_embeds)
        hidden, attentions = [h], []
        for layer in self.encoder.layer:
            h, probs = layer(h, mask, output_attentions)
            hidden.append(h)
            attentions.append(probs)
        if self.config.last_layer_norm:
            h = hidden[-1] = self.encoder.last_layer_ln(h)
        return BaseModelOutput(
            last_hidden_state=h,  # (B, L, H)
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


CONFIG_CLASS = GenaConfig
MODEL_CLASS = GenaModel
