"""Native (pure PyTorch) implementations of published DNA encoders that ship their own modeling code.

Contract:
- ``detect(config: dict) -> str | None``: the native architecture a ``config.json`` dict asks for (or None: let
  ``transformers`` build it). Detection reads the published config keys, never runs code.
- ``load_native(name, folder, ...) -> nn.Module``: the native encoder with the checkpoint's weights. Each native
  model is a ``transformers.PreTrainedModel`` whose ``state_dict`` keys and shapes equal the published checkpoint
  (less the ``bert.``/``esm.`` prefix of a ``*ForMaskedLM`` save, which ``from_pretrained`` strips), so every
  published tensor loads by name; any checkpoint tensor left unused or model tensor left at random init (beyond
  known heads) is an ``InputError`` (``check_loading``).
- Every native model's forward takes ``input_ids | inputs_embeds (B, L)``, ``attention_mask (B, L)``,
  ``output_attentions``, ``output_hidden_states`` and returns ``.last_hidden_state (B, L, H)``, ``.hidden_states``,
  ``.attentions``; its config has ``hidden_size``, ``num_hidden_layers``, ``max_position_embeddings``; its blocks are
  ``model.encoder.layer`` (what ``partial:N`` unfreezes).
- A module ``genoml.archs.<x>`` provides ``CONFIG_CLASS`` (a ``NativeConfig`` with a unique ``model_type``) and
  ``MODEL_CLASS``; ``register`` makes ``AutoConfig``/``AutoModel`` know them, so a fine-tuned run folder (saved with
  that ``model_type``) reloads natively.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from genoml.errors import InputError


@dataclass(frozen=True)
class Arch:
    """One natively supported architecture, as listed by ``genoml models``."""

    name: str
    module: str  # genoml.archs.<x>: CONFIG_CLASS, MODEL_CLASS
    title: str
    detected_by: str
    tokenizer: str
    verified: str

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


ARCHS: dict[str, Arch] = {
    "dnabert2": Arch(
        "dnabert2",
        "genoml.archs.dnabert2",
        "DNABERT-2 (zhihan1996/DNABERT-2-117M, DNABERT-S): MosaicBERT, ALiBi, gated-GELU MLP, fused Wqkv",
        "auto_map naming bert_layers, or an alibi_starting_size key",
        "BPE tokenizer.json (4096), [CLS] seq [SEP]",
        "published key names/shapes pinned; ALiBi slopes (incl. non-power-of-2 heads); padding invariance; "
        "tiny checkpoint loads with every tensor used",
    ),
    "gena": Arch(
        "gena",
        "genoml.archs.gena",
        "GENA-LM (AIRI-Institute/gena-lm-bert-*): BERT with pre-LayerNorm (modeling_bert.py)",
        "model_type bert with pre_layer_norm true, or auto_map naming modeling_bert",
        "BPE tokenizer.json (32k), [CLS] seq [SEP]",
        "published key names/shapes pinned; pre-LN property; padding invariance; tiny checkpoint loads with every "
        "tensor used",
    ),
    "ntv2": Arch(
        "ntv2",
        "genoml.archs.ntv2",
        "Nucleotide Transformer v2 (InstaDeepAI/nucleotide-transformer-v2-*): ESM, rotary, SwiGLU",
        "model_type esm with an add_bias_fnn key, or auto_map naming modeling_esm",
        "EsmTokenizer 6-mers (nt-kmer:6): <cls> then 6-mers, single letters after N / for the tail, no <eos>",
        "published key names/shapes pinned (EsmForMaskedLM layout); hidden states and attention maps equal "
        "transformers' EsmModel with the published SwiGLU swapped in; rotary scores invariant to an absolute "
        "shift; padding invariance; tokenizer ids equal EsmTokenizer's (tests/test_archs_ntv2_hyena.py)",
    ),
    "hyenadna": Arch(
        "hyenadna",
        "genoml.archs.hyena",
        "HyenaDNA (LongSafari/hyenadna-*-hf): Hyena long convolutions",
        "model_type hyenadna, or d_model + n_layer + filter_order keys",
        "HyenaDNATokenizer characters (hyena): A C G T N = 7..11, seq then [SEP], right padding",
        "published key names/shapes pinned (HyenaDNAForCausalLM layout, shared sine frequency stored once); "
        "causality; FFT long convolution equals a direct causal convolution; right-padding invariance "
        "(tests/test_archs_ntv2_hyena.py); hidden states bit-equal to the published modeling_hyena.py on a tiny "
        "random checkpoint (checked outside the test suite, which ships no published code)",
    ),
    "convlm": Arch(
        "convlm",
        "genoml.archs.convlm",
        "genoml ConvLM (genoml pretrain --arch cnn): dilated residual CNN masked LM, no attention",
        "model_type genoml_convlm (folders written by genoml pretrain)",
        "genoml char / esm tokenizers, [CLS] seq [SEP]",
        "padding exactness, receptive field of the dilations, every tensor reloads (tests/test_convlm.py)",
    ),
}


CADUCEUS_HELP = (
    "config.json: model_type 'caduceus' (Caduceus, kuleshov-group/caduceus-*) has no native genoml implementation: "
    "its published modeling code imports mamba_ssm, whose selective-scan kernels build only with CUDA and are not "
    "installed here. Fix: on a CUDA machine `pip install mamba-ssm causal-conv1d` and pass --trust-remote-code "
    "(with --revision <commit> for a hub id), or use a DNA model genoml loads natively (`genoml models`)"
)


def _auto_map_names(config: dict) -> str:
    auto_map = config.get("auto_map") or {}
    values = auto_map.values() if isinstance(auto_map, dict) else auto_map
    return " ".join(str(v) for v in values)


def detect(config: dict) -> str | None:
    """The native architecture a ``config.json`` dict describes, or None (only names whose module exists)."""
    if not isinstance(config, dict):
        return None
    model_type = str(config.get("model_type") or "")
    code = _auto_map_names(config)
    if (model_type == "caduceus" or "modeling_caduceus" in code) and importlib.util.find_spec(
        "mamba_ssm"
    ) is None:
        raise InputError(CADUCEUS_HELP)
    # a run folder saved by genoml names its native model_type
    found = (
        model_type[len("genoml_") :] if model_type.startswith("genoml_") and model_type[7:] in ARCHS else None
    )
    if found is None:
        if "bert_layers" in code or "alibi_starting_size" in config:
            found = "dnabert2"
        elif "modeling_bert" in code or (model_type == "bert" and config.get("pre_layer_norm") is True):
            found = "gena"
        elif "modeling_esm" in code or (model_type == "esm" and "add_bias_fnn" in config):
            found = "ntv2"
        elif model_type == "hyenadna" or (
            "d_model" in config and "n_layer" in config and "filter_order" in config
        ):
            found = "hyenadna"
    return found if found is not None and ARCHS[found].available() else None


def native_module(name: str):
    """The module implementing ``name`` (registered with the transformers Auto classes)."""
    if name not in ARCHS:
        raise InputError(f"unknown native architecture {name!r}; known: {', '.join(ARCHS)}")
    module = importlib.import_module(ARCHS[name].module)
    register(module.CONFIG_CLASS, module.MODEL_CLASS, getattr(module, "MLM_CLASS", None))
    return module


def register(config_class, model_class, mlm_class=None) -> None:
    """Make ``AutoConfig``/``AutoModel`` (and ``AutoModelForMaskedLM`` for an architecture genoml pretrains) build
    the native classes for their ``model_type`` (idempotent)."""
    from transformers import (  # heavy: registry listing stays light
        AutoConfig,
        AutoModel,
        AutoModelForMaskedLM,
    )
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if config_class.model_type not in CONFIG_MAPPING:
        AutoConfig.register(config_class.model_type, config_class)
    for auto, cls in ((AutoModel, model_class), (AutoModelForMaskedLM, mlm_class)):
        try:
            if cls is not None:
                auto.register(config_class, cls)
        except ValueError:  # already registered
            pass


def load_native(
    name: str,
    folder: str,
    *,
    config: dict | None = None,
    revision: str | None = None,
    where: str | None = None,
) -> nn.Module:
    """The native ``name`` encoder from a local folder or hub id, every checkpoint tensor used (else InputError).

    ``config`` is the folder's config.json as a dict (read here when None, local folders only)."""
    module = native_module(name)
    where = where or str(folder)
    if config is None:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    cfg = module.CONFIG_CLASS.from_published(config)
    model, info = module.MODEL_CLASS.from_pretrained(
        str(folder), config=cfg, revision=revision, output_loading_info=True
    )
    check_loading(info, where=where, arch=f"{ARCHS[name].title.split(' (')[0]} (genoml native {name})")
    return model


# checkpoint tensors an encoder never uses: LM / classification heads, pooler, position-id buffers
KNOWN_UNUSED = re.compile(
    r"(^|\.)(cls|lm_head|classifier|score|pooler|contact_head)\.|(^|\.)(position_ids|token_type_ids|inv_freq)$"
)
# model tensors a checkpoint may lack without harm (the pooler genoml never calls, position-id buffers)
KNOWN_MISSING = re.compile(r"(^|\.)pooler\.|(^|\.)(position_ids|token_type_ids|inv_freq)$")


def check_loading(info: dict, *, where: str, arch: str, fix: str | None = None) -> None:
    """InputError when ``from_pretrained`` left checkpoint tensors unused or model tensors at random init.

    ``info`` is the ``output_loading_info`` dict (missing_keys, unexpected_keys, mismatched_keys)."""
    unused = sorted(k for k in info.get("unexpected_keys", ()) if not KNOWN_UNUSED.search(k))
    missing = sorted(k for k in info.get("missing_keys", ()) if not KNOWN_MISSING.search(k))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ()))
    if not (unused or missing or mismatched):
        return
    parts = []
    if unused:
        parts.append(
            f"{len(unused)} checkpoint tensor(s) unused ({', '.join(unused[:4])}{', ...' if len(unused) > 4 else ''})"
        )
    if missing:
        parts.append(
            f"{len(missing)} model tensor(s) absent from the checkpoint, would stay random "
            f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})"
        )
    if mismatched:
        parts.append(f"{len(mismatched)} tensor(s) of another shape ({', '.join(mismatched[:4])})")
    fix = fix or (
        "the weights belong to another architecture than config.json describes: give the folder its own "
        "config.json; for a model that ships modeling code genoml does not implement (see `genoml models`), "
        "pass --trust-remote-code (with --revision <commit> for a hub id)"
    )
    raise InputError(
        f"--model {where}: loading as {arch} would be silently wrong: {'; '.join(parts)}. Fix: {fix}"
    )
