"""Nucleotide Transformer v2 (InstaDeepAI/nucleotide-transformer-v2-*): ESM with rotary positions and SwiGLU.

Faithful to the published remote code (``esm_config.py`` + ``modeling_esm.py``, the transformers ~4.32 ESM code
with InstaDeep's gated feed-forward), in plain PyTorch:

- embeddings: ``word_embeddings(ids)`` (B, L, H); with ``token_dropout`` the ``<mask>`` rows are zeroed and every
  row scaled by ``(1 - 0.15 * 0.8) / (1 - mask fraction)`` (ESM's mask-dropout rescaling); optional
  ``layer_norm`` (``emb_layer_norm_before``); ``position_embeddings`` only with ``position_embedding_type
  "absolute"`` (rotary checkpoints still carry the unused table); padded rows multiplied by 0;
- layer (pre-LayerNorm): ``h += attention.output.dense(attn(attention.LayerNorm(h)))``, with ``q`` scaled by
  ``head_dim ** -0.5`` then rotary on ``q`` and ``k`` (``inv_freq = 1 / 10000 ** (2i / head_dim)``, positions
  0..L-1, ``rotate_half``), scores ``q k^T + (1 - mask) * finfo.min``; then
  ``h += output.dense(SwiGLU(intermediate.dense(LayerNorm(h))))`` where ``intermediate.dense`` maps H -> 2I
  (bias only with ``add_bias_fnn``) and ``SwiGLU(x) = silu(x[..., :I]) * x[..., I:]``; ``output.dense`` I -> H;
- ``encoder.emb_layer_norm_after`` on the last layer's output (the last ``hidden_states`` entry is post-LN).

State-dict keys and shapes equal the published ``EsmModel``'s (``embeddings.*``, ``encoder.layer.N.*``,
``encoder.emb_layer_norm_after.*``, ``contact_head.regression.*``, ``...rotary_embeddings.inv_freq``); an
``EsmForMaskedLM`` checkpoint's ``esm.`` prefix is stripped by ``from_pretrained`` and its ``lm_head.*`` is unused.
The rotary checkpoints' ``position_embeddings`` table and the contact head are kept as buffers (loaded, saved,
never trained) because the published forward never reads them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput

from genoml.archs.base import NativeConfig, NativePreTrainedModel
from genoml.errors import InputError

MASK_RATIO_TRAIN = 0.15 * 0.8  # hard-coded in ESM / NT: the fraction of <mask> inputs during pretraining


class NTv2Config(NativeConfig):
    model_type = "genoml_ntv2"

    def __init__(
        self,
        vocab_size=4107,
        mask_token_id=2,
        pad_token_id=1,
        hidden_size=512,
        num_hidden_layers=12,
        num_attention_heads=16,
        intermediate_size=2048,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        max_position_embeddings=2050,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        position_embedding_type="rotary",
        emb_layer_norm_before=False,
        token_dropout=False,
        add_bias_fnn=True,
        **kwargs,
    ):
        kwargs.pop("use_cache", None)
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.mask_token_id = mask_token_id
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.position_embedding_type = position_embedding_type
        self.emb_layer_norm_before = bool(emb_layer_norm_before)
        self.token_dropout = bool(token_dropout)
        self.add_bias_fnn = bool(add_bias_fnn)
        if hidden_size % num_attention_heads:
            raise InputError(
                f"config.json: hidden_size {hidden_size} is not a multiple of num_attention_heads "
                f"{num_attention_heads}; Nucleotide Transformer splits the hidden size evenly over heads"
            )
        if position_embedding_type not in ("rotary", "absolute"):
            raise InputError(
                f"config.json: position_embedding_type {position_embedding_type!r} is not supported by genoml's "
                "native Nucleotide Transformer (rotary or absolute); use --trust-remote-code to run the model's code"
            )


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., d) -> (..., d): ``cat(-x[d/2:], x[:d/2])``."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class NTv2RotaryEmbedding(nn.Module):
    """Rotary embeddings on (B, heads, L, d) queries and keys; positions ``offset .. offset + L - 1``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", self.compute_inv_freq(dim))  # (d/2,), persistent as published

    @staticmethod
    def compute_inv_freq(dim: int) -> torch.Tensor:
        return 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))

    def cos_sin(self, n: int, device, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.arange(offset, offset + n, device=device).type_as(self.inv_freq)  # (L,)
        freqs = torch.outer(t, self.inv_freq)  # (L, d/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (L, d)
        return emb.cos()[None, None], emb.sin()[None, None]  # (1, 1, L, d) each

    def forward(self, q: torch.Tensor, k: torch.Tensor, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self.cos_sin(k.shape[-2], k.device, offset)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


class _FrozenTable(nn.Module):
    """Holds published tensors the forward never reads (``weight`` [, ``bias``]) as buffers: loaded and saved by
    name, never trained."""

    def __init__(self, *shape: int, bias: int | None = None):
        super().__init__()
        self.register_buffer("weight", torch.zeros(*shape))
        if bias is not None:
            self.register_buffer("bias", torch.zeros(bias))


class NTv2ContactHead(nn.Module):
    """Published ``EsmContactPredictionHead`` weights (``regression``: layers * heads -> 1); unused by genoml."""

    def __init__(self, config: NTv2Config):
        super().__init__()
        self.regression = _FrozenTable(1, config.num_hidden_layers * config.num_attention_heads, bias=1)


class NTv2Embeddings(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.layer_norm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            if config.emb_layer_norm_before
            else None
        )
        self.absolute = config.position_embedding_type == "absolute"
        if self.absolute:
            self.position_embeddings = nn.Embedding(
                config.max_position_embeddings, config.hidden_size, padding_idx=config.pad_token_id
            )
        else:  # published rotary checkpoints still carry the (unused) table
            self.position_embeddings = _FrozenTable(config.max_position_embeddings, config.hidden_size)
        self.padding_idx = config.pad_token_id
        self.token_dropout = config.token_dropout
        self.mask_token_id = config.mask_token_id

    def forward(self, input_ids, inputs_embeds, attention_mask) -> torch.Tensor:
        """input_ids (B, L) or None, inputs_embeds (B, L, H) or None, attention_mask (B, L) -> (B, L, H)."""
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        emb = inputs_embeds
        if self.token_dropout:
            # ESM: <mask> inputs are zeroed and the rest rescaled to the training-time mask fraction; without
            # ids (inputs_embeds given) no position is known to be <mask>, as for ids holding no <mask>
            if input_ids is not None:
                is_mask = input_ids == self.mask_token_id  # (B, L)
                emb = emb.masked_fill(is_mask.unsqueeze(-1), 0.0)
                observed = is_mask.sum(-1).float() / attention_mask.sum(-1)  # (B,)
            else:
                observed = torch.zeros(emb.shape[0], device=emb.device)
            emb = (emb * (1 - MASK_RATIO_TRAIN) / (1 - observed)[:, None, None]).to(emb.dtype)
        if self.absolute:
            if input_ids is not None:  # fairseq positions: padding_idx + 1 + rank among non-padding tokens
                keep = input_ids.ne(self.padding_idx).int()
                positions = torch.cumsum(keep, dim=1).type_as(keep) * keep + self.padding_idx
            else:
                n = emb.shape[1]
                positions = torch.arange(self.padding_idx + 1, n + self.padding_idx + 1, device=emb.device)
                positions = positions.unsqueeze(0).expand(emb.shape[:2])
            emb = emb + self.position_embeddings(positions.long())
        if self.layer_norm is not None:
            emb = self.layer_norm(emb)
        return (emb * attention_mask.unsqueeze(-1)).to(emb.dtype)


class NTv2SelfAttention(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.p_dropout = config.attention_probs_dropout_prob
        self.rotary = config.position_embedding_type == "rotary"
        if self.rotary:
            self.rotary_embeddings = NTv2RotaryEmbedding(self.head_dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, heads, L, d)

    def forward(self, h: torch.Tensor, mask_bias: torch.Tensor, output_attentions: bool):
        """h (B, L, H), mask_bias (B, 1, 1, L) additive -> context (B, L, H), probs (B, heads, L, L) or None."""
        q = self._split(self.query(h)) * self.head_dim**-0.5  # ESM scales q before the rotation
        k = self._split(self.key(h))
        v = self._split(self.value(h))
        if self.rotary:
            q, k = self.rotary_embeddings(q, k)
        p = self.p_dropout if self.training else 0.0
        if output_attentions:
            probs = (q @ k.transpose(-1, -2) + mask_bias).softmax(-1)  # (B, heads, L, L)
            out = F.dropout(probs, p, self.training) @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask_bias.to(q.dtype), dropout_p=p, scale=1.0
            )
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, -1), probs


class NTv2SelfOutput(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(h)) + residual


class NTv2Attention(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.self = NTv2SelfAttention(config)
        self.output = NTv2SelfOutput(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h, mask_bias, output_attentions):
        context, probs = self.self(self.LayerNorm(h), mask_bias, output_attentions)
        return self.output(context, h), probs


class NTv2Intermediate(nn.Module):
    """SwiGLU: (B, L, H) -> dense (B, L, 2I) -> silu(first I) * (second I) -> (B, L, I)."""

    def __init__(self, config: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=config.add_bias_fnn)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dense(h).chunk(2, dim=-1)
        return F.silu(x1) * x2


class NTv2Output(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.add_bias_fnn)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.dense(h)) + residual


class NTv2Layer(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.attention = NTv2Attention(config)
        self.intermediate = NTv2Intermediate(config)
        self.output = NTv2Output(config)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, h, mask_bias, output_attentions=False):
        h, probs = self.attention(h, mask_bias, output_attentions)
        return self.output(self.intermediate(self.LayerNorm(h)), h), probs


class NTv2Encoder(nn.Module):
    def __init__(self, config: NTv2Config):
        super().__init__()
        self.layer = nn.ModuleList(NTv2Layer(config) for _ in range(config.num_hidden_layers))
        self.emb_layer_norm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class NTv2Model(NativePreTrainedModel):
    """The Nucleotide Transformer v2 encoder (published ``EsmModel`` without pooler)."""

    config_class = NTv2Config
    base_model_prefix = "esm"
    _no_split_modules = ["NTv2Layer"]
    # tensors the forward never reads; a checkpoint without them loads the same model
    _keys_to_ignore_on_load_missing = [r"^contact_head\.", r"rotary_embeddings\.inv_freq$"]

    def __init__(self, config: NTv2Config):
        super().__init__(config)
        self.embeddings = NTv2Embeddings(config)
        self.encoder = NTv2Encoder(config)
        self.contact_head = NTv2ContactHead(config)
        if config.position_embedding_type == "rotary":
            self._keys_to_ignore_on_load_missing = [
                *self._keys_to_ignore_on_load_missing,
                r"^embeddings\.position_embeddings\.weight$",
            ]
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, NTv2RotaryEmbedding):
            init.copy_(module.inv_freq, module.compute_inv_freq(module.dim))
        elif isinstance(module, _FrozenTable):
            for buf in module.buffers(recurse=False):
                init.zeros_(buf)
        else:
            super()._init_weights(module)

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
        """input_ids (B, L) | inputs_embeds (B, L, H), attention_mask (B, L) -> last_hidden_state (B, L, H)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        b, n = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
        device = (input_ids if input_ids is not None else inputs_embeds).device
        if attention_mask is None:
            attention_mask = torch.ones(b, n, dtype=torch.long, device=device)
        h = self.embeddings(input_ids, inputs_embeds, attention_mask)  # (B, L, H)
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * torch.finfo(
            h.dtype
        ).min  # (B,1,1,L)
        hidden, attentions = [], []
        for layer in self.encoder.layer:
            hidden.append(h)
            h, probs = layer(h, mask_bias, output_attentions)
            attentions.append(probs)
        h = self.encoder.emb_layer_norm_after(h)
        hidden.append(h)
        return BaseModelOutput(
            last_hidden_state=h,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


CONFIG_CLASS = NTv2Config
MODEL_CLASS = NTv2Model
