"""HyenaDNA (LongSafari/hyenadna-*-seqlen-hf): Hyena long-convolution blocks, in plain PyTorch.

Faithful to the published remote code (``configuration_hyena.py`` + ``modeling_hyena.py``, ``HyenaDNAModel``):

- ``backbone.embeddings.word_embeddings``: vocabulary padded up to a multiple of ``pad_vocab_size_multiple``
  (12 -> 16), ``(V', d)``; no position embeddings, no embedding dropout in the forward;
- block (``backbone.layers.N``): ``r = x (fp32); r = mixer(norm1(r)) + r; x = mlp(norm2(r)) + r`` with
  ``mlp = fc2(gelu_tanh(fc1))`` (d -> d_inner -> d); ``norm1``/``norm2`` use eps 1e-5 as published;
- mixer (Hyena operator, order 2): ``in_proj`` d -> 3d, a depthwise causal ``short_filter`` (kernel
  ``short_filter_order``, left padding 2 as published), split into ``x0, x1, v`` (B, d, L) each;
  ``v = fftconv(v * x1, k) + v * x1 * bias`` with the implicit filter ``k (d, L)``; ``y = out_proj(v * x0)``;
- implicit filter ``k = MLP(z[:L]) * (exp(-t |deltas|) + 0.05)``: ``z`` (1, max_seq_len, emb_dim) = [t, cos, sin]
  positional features, the MLP alternating ``Linear`` and ``sin(freq * x)`` (ONE ``freq`` parameter shared by every
  sine, as published; it is stored once, as ``implicit_filter.1.freq``, as safetensors saves the shared tensor);
- ``fftconv``: ``irfft(rfft(u, 2L) * rfft(k, 2L) / 2L, norm="forward")[:L]`` in float32, i.e. the causal linear
  convolution ``y[t] = sum_{s <= t} k[s] u[t - s]``;
- ``backbone.ln_f`` (eps ``layer_norm_epsilon``) at the end; ``hidden_states`` = embeddings, each block, ln_f output.

Everything is causal, so with right padding the outputs at valid positions do not depend on the padding (genoml
pads on the right; a left-padded ``attention_mask`` is refused). There is no attention: ``output_attentions`` is an
``InputError`` (genoml's ``attention`` command then falls back to gradient methods).

State-dict keys equal the published ``HyenaDNAModel``'s (``backbone.*``); a ``HyenaDNAForCausalLM`` checkpoint's
``hyena.`` prefix is stripped by ``from_pretrained``; its ``lm_head.weight`` (or a classifier's ``score.weight``)
is unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput

from genoml.archs.base import NativeConfig, NativePreTrainedModel
from genoml.errors import InputError

SHORT_FILTER_PADDING = 2  # hard-coded in the published HyenaOperator (causal for the default kernel 3)


class HyenaDNAConfig(NativeConfig):
    model_type = "genoml_hyenadna"
    attention_free = True  # long convolutions: interpretation uses gradients
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "n_layer",
        "max_position_embeddings": "max_seq_len",
    }

    def __init__(
        self,
        vocab_size=12,
        d_model=256,
        d_inner=None,
        use_bias=True,
        train_freq=True,
        max_seq_len=1024,
        emb_dim=3,
        n_layer=12,
        num_inner_mlps=2,
        hyena_order=2,
        short_filter_order=3,
        filter_order=64,
        activation_freq=1,
        embed_dropout=0.1,
        hyena_dropout=0.0,
        hyena_filter_dropout=0.0,
        layer_norm_epsilon=1e-5,
        initializer_range=0.02,
        pad_vocab_size_multiple=8,
        pad_token_id=4,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.d_inner = 4 * d_model if d_inner is None else d_inner
        self.use_bias = use_bias
        self.train_freq = train_freq
        self.max_seq_len = max_seq_len
        self.emb_dim = emb_dim
        self.n_layer = n_layer
        self.num_inner_mlps = num_inner_mlps
        self.hyena_order = hyena_order
        self.short_filter_order = short_filter_order
        self.filter_order = filter_order
        self.activation_freq = activation_freq
        self.embed_dropout = embed_dropout
        self.hyena_dropout = hyena_dropout
        self.hyena_filter_dropout = hyena_filter_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.pad_vocab_size_multiple = pad_vocab_size_multiple
        if emb_dim % 2 == 0 or emb_dim < 3:
            raise InputError(
                f"config.json: emb_dim {emb_dim} must be odd and >= 3 (time, cosine and sine features), as the "
                "published HyenaDNA filter requires"
            )
        if hyena_order != 2:
            raise InputError(
                f"config.json: hyena_order {hyena_order} is not supported; the published HyenaDNA code (and genoml's "
                "native port) implements order 2 only"
            )

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_size_multiple
        return self.vocab_size + (-self.vocab_size) % m if m else self.vocab_size


def fftconv(u: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Causal long convolution: u (B, d, L), k (d, L), bias (d,) -> (B, d, L), computed in float32 via FFT.

    ``y[b, c, t] = sum_{s=0..t} k[c, s] u[b, c, t - s] + bias[c] u[b, c, t]`` (zero-padded to 2L: no wrap-around).
    """
    n = u.shape[-1]
    size = 2 * n
    k_f = torch.fft.rfft(k.to(torch.float32), n=size) / size
    u_f = torch.fft.rfft(u.to(torch.float32), n=size)
    y = torch.fft.irfft(u_f * k_f, n=size, norm="forward")[..., :n]
    return (y + u * bias.unsqueeze(-1)).to(u.dtype)


class HyenaSin(nn.Module):
    """``sin(freq * x)``, freq (1, filter_order); a sine built with ``owner`` reads the owner's ``freq``."""

    def __init__(self, config: HyenaDNAConfig, owner: HyenaSin | None = None):
        super().__init__()
        object.__setattr__(
            self, "_owner", owner
        )  # a plain reference: not a submodule, no second state-dict key
        if owner is None:
            freq = config.activation_freq * torch.ones(1, config.filter_order)
            if config.train_freq:
                self.freq = nn.Parameter(freq)
            else:  # published: a constant tensor outside the state dict
                self.register_buffer("freq", freq, persistent=False)
        self.activation_freq = config.activation_freq

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        freq = self.freq if self._owner is None else self._owner.freq
        return torch.sin(freq * x)


class HyenaPositionalEmbedding(nn.Module):
    """Buffers ``z`` (1, max_seq_len, emb_dim) = [t, cos(-f w), sin(-f w)] and ``t`` (1, max_seq_len, 1)."""

    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.seq_len, self.emb_dim = config.max_seq_len, config.emb_dim
        z, t = self.compute(self.seq_len, self.emb_dim)
        self.register_buffer("z", z)
        self.register_buffer("t", t)

    @staticmethod
    def compute(seq_len: int, emb_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.linspace(0, 1, seq_len)[None, :, None]  # (1, L, 1)
        bands = (emb_dim - 1) // 2
        t_rescaled = torch.linspace(0, seq_len - 1, seq_len)[None, :, None]
        w = 2 * math.pi * t_rescaled / seq_len  # (1, L, 1)
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]  # (1, 1, bands)
        z = torch.cat([t, torch.cos(-f * w), torch.sin(-f * w)], dim=-1)  # (1, L, emb_dim)
        return z, t

    def forward(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.z[:, :n], self.t[:, :n]


class HyenaExponentialModulation(nn.Module):
    """Window on the filter: h * (exp(-t |deltas|) + shift); deltas (1, 1, d) from fast/slow decay rates."""

    def __init__(
        self, d_model: int, fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2, shift: float = 0.05
    ):
        super().__init__()
        self.d_model, self.fast, self.slow, self.target = d_model, fast_decay_pct, slow_decay_pct, target
        self.shift = shift
        self.register_buffer("deltas", self.compute(d_model, fast_decay_pct, slow_decay_pct, target))

    @staticmethod
    def compute(d_model: int, fast: float, slow: float, target: float) -> torch.Tensor:
        max_decay, min_decay = math.log(target) / fast, math.log(target) / slow
        return torch.linspace(min_decay, max_decay, d_model)[None, None]

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        decay = torch.exp(-t * self.deltas.abs())
        return x * (decay + self.shift)


class HyenaFilter(nn.Module):
    """Implicit long filter: ``filter(L)`` -> (1, L, d); ``bias`` (d,) is the fftconv skip term."""

    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(config.d_model * (config.hyena_order - 1)))
        self.pos_emb = HyenaPositionalEmbedding(config)
        first = HyenaSin(config)
        layers: list[nn.Module] = [nn.Linear(config.emb_dim, config.filter_order), first]
        for _ in range(config.num_inner_mlps):
            layers += [nn.Linear(config.filter_order, config.filter_order), HyenaSin(config, owner=first)]
        layers.append(nn.Linear(config.filter_order, config.d_model, bias=False))
        self.implicit_filter = nn.Sequential(*layers)
        self.modulation = HyenaExponentialModulation(config.d_model)

    def filter(self, n: int) -> torch.Tensor:
        z, t = self.pos_emb(n)
        h = self.implicit_filter(z.to(dtype=self.implicit_filter[0].weight.dtype))  # (1, L, d)
        return self.modulation(t, h)


class HyenaOperator(nn.Module):
    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.d_model, self.l_max, self.order = config.d_model, config.max_seq_len, config.hyena_order
        inner = config.d_model * (config.hyena_order + 1)
        self.in_proj = nn.Linear(config.d_model, inner)
        self.out_proj = nn.Linear(config.d_model, config.d_model)
        self.short_filter = nn.Conv1d(
            inner, inner, config.short_filter_order, padding=SHORT_FILTER_PADDING, groups=inner
        )
        self.filter_fn = HyenaFilter(config)
        self.dropout = nn.Dropout(config.hyena_dropout)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, L, d) -> (B, L, d)."""
        n = min(u.shape[-2], self.l_max)
        uc = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :n]  # (B, 3d, L)
        *x, v = uc.split(self.d_model, dim=1)  # x0, x1, v: (B, d, L) each
        k = self.filter_fn.filter(n)[0].transpose(0, 1).reshape(self.order - 1, self.d_model, n)  # (1, d, L)
        bias = self.filter_fn.bias.reshape(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(x[1:])):
            v = self.dropout(v * x_i)
            v = fftconv(v, k[o], bias[o])
        return self.out_proj((v * x[0]).transpose(1, 2))


class HyenaMlp(nn.Module):
    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.d_model, config.d_inner)
        self.fc2 = nn.Linear(config.d_inner, config.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class HyenaBlock(nn.Module):
    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.mixer = HyenaOperator(config)
        self.norm1 = nn.LayerNorm(config.d_model)
        self.mlp = HyenaMlp(config)
        self.norm2 = nn.LayerNorm(config.d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        residual = h.to(torch.float32)
        h = self.mixer(self.norm1(residual.to(dtype=self.norm1.weight.dtype)))
        residual = h + residual
        h = self.norm2(residual.to(dtype=self.norm2.weight.dtype))
        return self.mlp(h) + residual.to(torch.float32)


class HyenaEmbeddings(nn.Module):
    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.padded_vocab_size, config.d_model)


class HyenaBackbone(nn.Module):
    def __init__(self, config: HyenaDNAConfig):
        super().__init__()
        self.embeddings = HyenaEmbeddings(config)
        self.layers = nn.ModuleList(HyenaBlock(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_epsilon)


class HyenaDNAModel(NativePreTrainedModel):
    """The HyenaDNA backbone (published ``HyenaDNAModel``); ``backbone.layers`` are its blocks."""

    config_class = HyenaDNAConfig
    base_model_prefix = "hyena"
    _no_split_modules = ["HyenaBlock"]
    _supports_sdpa = False
    # the shared sine frequency is one tensor; a checkpoint that still lists its other names carries copies of it
    _keys_to_ignore_on_load_unexpected = [r"implicit_filter\.(?!1\.)\d+\.freq$"]
    # deterministic buffers (published: computed at init); a checkpoint without them gets the same values
    _keys_to_ignore_on_load_missing = [r"pos_emb\.(z|t)$", r"modulation\.deltas$"]

    def __init__(self, config: HyenaDNAConfig):
        super().__init__(config)
        self.backbone = HyenaBackbone(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, HyenaPositionalEmbedding):
            z, t = module.compute(module.seq_len, module.emb_dim)
            init.copy_(module.z, z)
            init.copy_(module.t, t)
        elif isinstance(module, HyenaExponentialModulation):
            init.copy_(module.deltas, module.compute(module.d_model, module.fast, module.slow, module.target))
        elif isinstance(module, HyenaSin):
            if module._owner is None:
                init.constant_(module.freq, float(module.activation_freq))
        elif isinstance(module, HyenaFilter):
            init.normal_(module.bias)  # published: torch.randn
        elif isinstance(module, nn.Conv1d):  # published: PyTorch's default Conv1d init
            if not getattr(module.weight, "_is_hf_initialized", False):
                module.reset_parameters()
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, std=std)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        else:
            super()._init_weights(module)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.backbone.embeddings.word_embeddings = value

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
        """input_ids (B, L) | inputs_embeds (B, L, d), attention_mask (B, L) right-padded -> (B, L, d)."""
        if output_attentions:
            raise InputError(
                "HyenaDNA has no attention (it mixes positions with long convolutions): there are no attention "
                "maps; use --method grad-input or integrated-gradients"
            )
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        h = self.backbone.embeddings.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        n = h.shape[1]
        if n > self.config.max_seq_len:
            raise InputError(
                f"HyenaDNA input of {n} tokens is longer than the model's max_seq_len {self.config.max_seq_len} "
                "(its filters are defined up to that length); use a shorter window (--max-tokens)"
            )
        if attention_mask is not None and bool((attention_mask[:, 1:] > attention_mask[:, :-1]).any()):
            raise InputError(
                "HyenaDNA is causal: padding must follow the sequence (right padding); this attention_mask has "
                "padding before valid tokens"
            )
        hidden = [h]
        for layer in self.backbone.layers:
            h = layer(h)
            hidden.append(h)
        h = self.backbone.ln_f(h.to(dtype=self.backbone.ln_f.weight.dtype))
        hidden.append(h)
        return BaseModelOutput(
            last_hidden_state=h,  # (B, L, d); valid positions never see the right padding
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=None,
        )


CONFIG_CLASS = HyenaDNAConfig
MODEL_CLASS = HyenaDNAModel
