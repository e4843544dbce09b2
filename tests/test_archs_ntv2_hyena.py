"""Native Nucleotide Transformer v2 and HyenaDNA: published layouts, known properties, tokenizers, CLI end to end.

Tiny random models are built from the published config files in ../shared/hf_configs (sizes shrunk) and saved in
the published checkpoint layout: ``EsmForMaskedLM`` (``esm.`` prefix + ``lm_head.*``) and ``HyenaDNAForCausalLM``
(``hyena.`` prefix + ``lm_head.weight``). The expected key names and shapes are written from the published modeling
code (``modeling_esm.py`` of InstaDeepAI/nucleotide-transformer-v2-*, ``modeling_hyena.py`` of
LongSafari/hyenadna-*-hf), not read from genoml's classes.
"""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from genoml.archs import detect, load_native, native_module
from genoml.archs.hyena import fftconv
from genoml.archs.ntv2 import NTv2RotaryEmbedding
from genoml.cli import main
from genoml.errors import InputError
from genoml.models import max_positions
from genoml.tokenizers import build_tokenizer, load_tokenizer
from tests.tiny import planted_motif_rows, write_csv, write_fasta

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "hf_configs"
DIRS = {"ntv2": "ntv2-50m", "hyenadna": "hyenadna-ckpt"}
PREFIX = {"ntv2": "esm.", "hyenadna": "hyena."}


def shared(name: str) -> Path:
    folder = SHARED / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder} not present (the published config files live beside the checkout)")
    return folder


def published_config(arch: str) -> dict:
    return json.loads((shared(DIRS[arch]) / "config.json").read_text())


# ----------------------------------------------------------------------------- expected published layouts


def ntv2_layout(c: dict) -> dict[str, tuple[int, ...]]:
    """EsmModel of modeling_esm.py: EsmEmbeddings always builds position_embeddings (unused with rotary); each
    EsmSelfAttention has a RotaryEmbedding with a persistent inv_freq (head_dim / 2); EsmIntermediate is
    Linear(H, 2 * I, bias=add_bias_fnn), EsmOutput Linear(I, H, bias=add_bias_fnn); EsmModel has a contact head."""
    h, i, v, n = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["num_hidden_layers"]
    heads = c["num_attention_heads"]
    out = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.position_embeddings.weight": (c["max_position_embeddings"], h),
    }
    for layer in range(n):
        p = f"encoder.layer.{layer}."
        for name in ("query", "key", "value"):
            out[f"{p}attention.self.{name}.weight"] = (h, h)
            out[f"{p}attention.self.{name}.bias"] = (h,)
        out[f"{p}attention.self.rotary_embeddings.inv_freq"] = (h // heads // 2,)
        out[f"{p}attention.output.dense.weight"] = (h, h)
        out[f"{p}attention.output.dense.bias"] = (h,)
        out[f"{p}attention.LayerNorm.weight"] = (h,)
        out[f"{p}attention.LayerNorm.bias"] = (h,)
        out[f"{p}intermediate.dense.weight"] = (2 * i, h)
        out[f"{p}output.dense.weight"] = (h, i)
        if c.get("add_bias_fnn", True):
            out[f"{p}intermediate.dense.bias"] = (2 * i,)
            out[f"{p}output.dense.bias"] = (h,)
        out[f"{p}LayerNorm.weight"] = (h,)
        out[f"{p}LayerNorm.bias"] = (h,)
    out["encoder.emb_layer_norm_after.weight"] = (h,)
    out["encoder.emb_layer_norm_after.bias"] = (h,)
    out["contact_head.regression.weight"] = (1, n * heads)
    out["contact_head.regression.bias"] = (1,)
    return out


def ntv2_head(c: dict) -> dict[str, tuple[int, ...]]:
    """EsmLMHead of EsmForMaskedLM (tie_word_embeddings false: its own decoder)."""
    h, v = c["hidden_size"], c["vocab_size"]
    return {
        "lm_head.dense.weight": (h, h),
        "lm_head.dense.bias": (h,),
        "lm_head.layer_norm.weight": (h,),
        "lm_head.layer_norm.bias": (h,),
        "lm_head.decoder.weight": (v, h),
        "lm_head.bias": (v,),
    }


def padded_vocab(c: dict) -> int:
    v, m = c["vocab_size"], c["pad_vocab_size_multiple"]
    return v + (m - v % m) % m


def hyena_layout(c: dict) -> dict[str, tuple[int, ...]]:
    """HyenaDNAModel of modeling_hyena.py, as a safetensors save stores it: the sine activation is ONE module
    appended at implicit_filter indices 1, 3, 5, so its shared ``freq`` is stored once (``implicit_filter.1.freq``:
    safetensors keeps the first name of a shared tensor, and the published model ignores the other names missing)."""
    d, inner, order = c["d_model"], c["d_inner"], c["filter_order"]
    wide = 3 * d  # d_model * (hyena_order + 1)
    out = {"backbone.embeddings.word_embeddings.weight": (padded_vocab(c), d)}
    for layer in range(c["n_layer"]):
        p = f"backbone.layers.{layer}."
        out[f"{p}mixer.in_proj.weight"] = (wide, d)
        out[f"{p}mixer.in_proj.bias"] = (wide,)
        out[f"{p}mixer.out_proj.weight"] = (d, d)
        out[f"{p}mixer.out_proj.bias"] = (d,)
        out[f"{p}mixer.short_filter.weight"] = (wide, 1, c["short_filter_order"])
        out[f"{p}mixer.short_filter.bias"] = (wide,)
        f = f"{p}mixer.filter_fn."
        out[f"{f}bias"] = (d,)
        out[f"{f}pos_emb.z"] = (1, c["max_seq_len"], c["emb_dim"])
        out[f"{f}pos_emb.t"] = (1, c["max_seq_len"], 1)
        out[f"{f}implicit_filter.0.weight"] = (order, c["emb_dim"])
        out[f"{f}implicit_filter.0.bias"] = (order,)
        out[f"{f}implicit_filter.1.freq"] = (1, order)
        for j in range(c["num_inner_mlps"]):
            out[f"{f}implicit_filter.{2 + 2 * j}.weight"] = (order, order)
            out[f"{f}implicit_filter.{2 + 2 * j}.bias"] = (order,)
        out[f"{f}implicit_filter.{2 + 2 * c['num_inner_mlps']}.weight"] = (d, order)
        out[f"{f}modulation.deltas"] = (1, 1, d)
        for norm in ("norm1", "norm2"):
            out[f"{p}{norm}.weight"] = (d,)
            out[f"{p}{norm}.bias"] = (d,)
        out[f"{p}mlp.fc1.weight"] = (inner, d)
        out[f"{p}mlp.fc1.bias"] = (inner,)
        out[f"{p}mlp.fc2.weight"] = (d, inner)
        out[f"{p}mlp.fc2.bias"] = (d,)
    out["backbone.ln_f.weight"] = (d,)
    out["backbone.ln_f.bias"] = (d,)
    return out


def hyena_head(c: dict) -> dict[str, tuple[int, ...]]:
    return {"lm_head.weight": (padded_vocab(c), c["d_model"])}


LAYOUTS = {"ntv2": (ntv2_layout, ntv2_head), "hyenadna": (hyena_layout, hyena_head)}


def build(arch: str, config: dict | None = None, seed: int = 0):
    mod = native_module(arch)
    torch.manual_seed(seed)
    model = mod.MODEL_CLASS(mod.CONFIG_CLASS.from_published(config or published_config(arch))).eval()
    with (
        torch.no_grad()
    ):  # random LayerNorm affine, sine frequencies and filter biases: a tensor left at init shows
        for name, p in model.named_parameters():
            if "norm" in name.lower() or name.endswith((".freq", "ln_f.weight", "ln_f.bias")):
                p.add_(0.1 * torch.randn_like(p))
    return model


def write_published(
    folder: Path, arch: str, seed: int = 0, config: dict | None = None, extra=None, drop=()
) -> Path:
    """A folder as published: config.json (+ NT tokenizer files) + model.safetensors of the *ForMaskedLM /
    *ForCausalLM checkpoint (prefixed backbone + LM head)."""
    src = shared(DIRS[arch])
    folder.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.suffix in (".json", ".txt") and f.name not in ("config.json", "PROVENANCE.txt"):
            shutil.copy(f, folder / f.name)
    config = config or published_config(arch)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    model = build(arch, config, seed)
    state = {PREFIX[arch] + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed + 1)
    for k, shape in LAYOUTS[arch][1](config).items():
        state[k] = torch.randn(shape, generator=gen)
    state.update(extra or {})
    for k in drop:
        del state[k]
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module", params=["ntv2", "hyenadna"])
def published(request, tmp_path_factory):
    return request.param, write_published(tmp_path_factory.mktemp(request.param) / "model", request.param)


# ----------------------------------------------------------------------------- detection and layout


def test_detect_reads_the_published_configs():
    assert detect(published_config("ntv2")) == "ntv2"  # no model_type; auto_map names modeling_esm
    assert detect(published_config("hyenadna")) == "hyenadna"
    assert (
        detect({**published_config("ntv2"), "auto_map": None, "model_type": "esm"}) == "ntv2"
    )  # add_bias_fnn key


@pytest.mark.parametrize("arch", ["ntv2", "hyenadna"])
def test_state_dict_keys_and_shapes_are_the_published_layout(arch):
    got = {k: tuple(v.shape) for k, v in build(arch).state_dict().items()}
    assert got == LAYOUTS[arch][0](published_config(arch))


def test_ntv2_layout_at_full_size_matches_the_published_checkpoint_size():
    """The real 50m checkpoint (InstaDeepAI/nucleotide-transformer-v2-50m-multi-species @ 81b29e57) stores
    55,905,164 elements: 55,904,972 parameters + 192 rotary inv_freq (16 per layer), as recorded in a published
    model card (kurtvalcorza/nucleotide-transformer-genomics-pipeline). Pins the unused position table, the contact
    head and the bias-free 2I SwiGLU, in genoml's model too."""
    import math

    c = {
        **published_config("ntv2"),
        "hidden_size": 512,
        "num_hidden_layers": 12,
        "num_attention_heads": 16,
        "intermediate_size": 2048,
    }
    layout = {**ntv2_layout(c), **ntv2_head(c)}
    inv_freq = sum(math.prod(s) for k, s in layout.items() if k.endswith("inv_freq"))
    assert (sum(math.prod(s) for s in layout.values()), inv_freq) == (55_905_164, 192)
    mod = native_module("ntv2")
    with torch.device("meta"):
        model = mod.MODEL_CLASS(mod.CONFIG_CLASS.from_published(c))
    backbone = sum(v.numel() for v in model.state_dict().values())
    assert backbone == 55_905_164 - sum(math.prod(s) for s in ntv2_head(c).values())


def test_published_checkpoint_loads_every_tensor(published):
    arch, folder = published
    model = load_native(arch, str(folder))
    saved = load_file(str(folder / "model.safetensors"))
    state = model.state_dict()
    for k, v in state.items():
        assert torch.equal(v, saved[PREFIX[arch] + k]), k
    assert set(saved) == {PREFIX[arch] + k for k in state} | set(LAYOUTS[arch][1](published_config(arch)))
    assert model.config.hidden_size == (64 if arch == "ntv2" else 32)
    assert max_positions(model) == (2050 if arch == "ntv2" else 32770)


@pytest.mark.parametrize("arch", ["ntv2", "hyenadna"])
def test_missing_or_unknown_tensors_are_input_errors(arch, tmp_path):
    if arch == "ntv2":
        key = "encoder.layer.1.intermediate.dense.weight"
    else:
        key = "backbone.layers.1.mixer.filter_fn.implicit_filter.1.freq"  # the shared sine frequency
    folder = write_published(tmp_path / "missing", arch, drop=[PREFIX[arch] + key])
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        load_native(arch, str(folder))
    folder = write_published(
        tmp_path / "extra", arch, extra={PREFIX[arch] + "encoder.adapter.weight": torch.ones(2)}
    )
    with pytest.raises(InputError, match=r"unused.*encoder\.adapter\.weight"):
        load_native(arch, str(folder))


@pytest.mark.parametrize("arch", ["ntv2", "hyenadna"])
def test_deterministic_buffers_absent_from_a_checkpoint_get_the_published_values(arch, tmp_path):
    if arch == "ntv2":
        drop = [f"esm.encoder.layer.{i}.attention.self.rotary_embeddings.inv_freq" for i in range(2)]
    else:
        drop = [
            f"hyena.backbone.layers.{i}.mixer.filter_fn.{b}"
            for i in range(2)
            for b in ("pos_emb.z", "pos_emb.t", "modulation.deltas")
        ]
    full = load_native(arch, str(write_published(tmp_path / "full", arch)))
    part = load_native(arch, str(write_published(tmp_path / "part", arch, drop=drop)))
    for k, v in full.state_dict().items():
        assert torch.equal(part.state_dict()[k], v), k
    ids = torch.randint(7, 12, (2, 9))
    with torch.no_grad():
        assert torch.equal(part(input_ids=ids).last_hidden_state, full(input_ids=ids).last_hidden_state)


def test_hyena_checkpoint_listing_every_shared_freq_name_loads(tmp_path):
    """A torch-saved state dict names the shared sine frequency at indices 1, 3 and 5: same tensor, loads."""
    c = published_config("hyenadna")
    base = "hyena.backbone.layers.0.mixer.filter_fn.implicit_filter."
    freq = torch.full((1, c["filter_order"]), 7.5)
    extra = {f"{base}{i}.freq": freq.clone() for i in (1, 3, 5)}  # as converted from a torch-saved dict
    model = load_native("hyenadna", str(write_published(tmp_path / "m", "hyenadna", extra=extra)))
    sines = model.backbone.layers[0].mixer.filter_fn.implicit_filter[1::2]
    x = torch.ones(1, c["filter_order"])
    for sine in sines:  # every sine reads the one frequency
        assert torch.equal(sine(x), torch.sin(freq * x))
    assert (
        sum(p.numel() for n, p in model.named_parameters() if n.endswith("freq"))
        == c["n_layer"] * c["filter_order"]
    )


# ----------------------------------------------------------------------------- NT v2: known properties


def test_ntv2_rotary_scores_depend_only_on_relative_position():
    rot = NTv2RotaryEmbedding(32)
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 7, 32, generator=gen), torch.randn(2, 3, 7, 32, generator=gen)
    scores = [(lambda a, b: a @ b.transpose(-1, -2))(*rot(q, k, offset=s)) for s in (0, 5, 1000)]
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(scores[0], scores[2], atol=1e-4, rtol=1e-4)
    assert not torch.allclose(scores[0], q @ k.transpose(-1, -2), atol=1e-2)  # the rotation does act
    assert torch.equal(rot.inv_freq, 1.0 / 10000 ** (torch.arange(0, 32, 2).float() / 32))


def test_ntv2_feed_forward_is_bias_free_swiglu():
    c = published_config("ntv2")
    layer = build("ntv2").encoder.layer[0]
    w_in, w_out = layer.intermediate.dense.weight, layer.output.dense.weight
    assert layer.intermediate.dense.bias is None and layer.output.dense.bias is None  # add_bias_fnn false
    assert w_in.shape == (2 * c["intermediate_size"], c["hidden_size"]) and w_out.shape == (
        c["hidden_size"],
        128,
    )
    x, residual = torch.randn(2, 5, c["hidden_size"]), torch.randn(2, 5, c["hidden_size"])
    i = c["intermediate_size"]
    expected = (F.silu(x @ w_in[:i].T) * (x @ w_in[i:].T)) @ w_out.T + residual
    with torch.no_grad():
        torch.testing.assert_close(layer.output(layer.intermediate(x), residual), expected)


def _esm_with_published_swiglu(config: dict):
    """transformers' own EsmModel (same ESM attention, rotary, pre-LayerNorm and final LayerNorm as the NT remote
    code) with its GELU feed-forward swapped for the published bias-free SwiGLU."""
    from torch import nn
    from transformers import EsmConfig, EsmModel

    ec = EsmConfig(
        **{k: v for k, v in config.items() if k not in ("auto_map", "architectures", "add_bias_fnn")}
    )
    ec._attn_implementation = "eager"
    model = EsmModel(ec, add_pooling_layer=False)
    for layer in model.encoder.layer:
        layer.intermediate.dense = nn.Linear(ec.hidden_size, 2 * ec.intermediate_size, bias=False)
        layer.intermediate.forward = types.MethodType(
            lambda self, h: F.silu(self.dense(h).chunk(2, -1)[0]) * self.dense(h).chunk(2, -1)[1],
            layer.intermediate,
        )
        layer.output.dense = nn.Linear(ec.intermediate_size, ec.hidden_size, bias=False)
    return model.eval()


def test_ntv2_hidden_states_equal_transformers_esm_with_swiglu():
    config = published_config("ntv2")
    mine = build("ntv2")
    ref = _esm_with_published_swiglu(config)
    missing, unexpected = ref.load_state_dict(mine.state_dict(), strict=False)
    assert not missing and set(unexpected) <= {"embeddings.position_embeddings.weight"}
    ids = torch.randint(6, 4107, (3, 17), generator=torch.Generator().manual_seed(1))
    ids[:, 0] = 3
    mask = torch.ones_like(ids)
    mask[1, 11:], mask[2, 4:] = 0, 0
    ids[mask == 0] = 1
    with torch.no_grad():
        a = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        b = mine(input_ids=ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
        fused = mine(input_ids=ids, attention_mask=mask).last_hidden_state  # SDPA path
    valid = mask.bool()
    assert len(a.hidden_states) == len(b.hidden_states) == config["num_hidden_layers"] + 1
    for ha, hb in zip(a.hidden_states, b.hidden_states, strict=True):
        torch.testing.assert_close(hb[valid], ha[valid], atol=1e-5, rtol=1e-5)
    for pa, pb in zip(a.attentions, b.attentions, strict=True):
        torch.testing.assert_close(pb, pa, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fused[valid], b.last_hidden_state[valid], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["ntv2", "hyenadna"])
def test_right_padding_does_not_change_a_sequence(arch):
    model = build(arch)
    low, high = (6, 4107) if arch == "ntv2" else (7, 12)
    ids = torch.randint(low, high, (2, 12), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    ids[1, 7:] = model.config.pad_token_id
    with torch.no_grad():
        alone = model(input_ids=ids[1:, :7]).last_hidden_state
        padded = model(input_ids=ids, attention_mask=mask).last_hidden_state[1:, :7]
        via_embeds = model(
            inputs_embeds=model.get_input_embeddings()(ids), attention_mask=mask
        ).last_hidden_state
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(via_embeds[1:, :7], alone, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- HyenaDNA: known properties


def test_hyena_output_at_i_ignores_inputs_after_i():
    model = build("hyenadna")
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(7, 12, (1, 40), generator=gen)
    changed = ids.clone()
    changed[0, 25:] = torch.randint(7, 12, (15,), generator=gen)
    changed[0, 25] = 7 if ids[0, 25] != 7 else 8
    with torch.no_grad():
        a = model(input_ids=ids, output_hidden_states=True)
        b = model(input_ids=changed, output_hidden_states=True)
    for ha, hb in zip(a.hidden_states, b.hidden_states, strict=True):  # equal up to FFT rounding (~1e-7)
        torch.testing.assert_close(hb[:, :25], ha[:, :25], atol=1e-5, rtol=1e-5)
    assert (a.last_hidden_state[:, 25:] - b.last_hidden_state[:, 25:]).abs().max() > 1e-2


def test_hyena_fft_long_convolution_equals_direct_causal_convolution():
    gen = torch.Generator().manual_seed(4)
    u, k, bias = (
        torch.randn(2, 3, 11, generator=gen),
        torch.randn(3, 11, generator=gen),
        torch.randn(3, generator=gen),
    )
    direct = torch.zeros_like(u)
    for t in range(11):
        for s in range(t + 1):
            direct[..., t] += k[:, s] * u[..., t - s]
    direct += bias[:, None] * u
    torch.testing.assert_close(fftconv(u, k, bias), direct, atol=1e-5, rtol=1e-5)


def test_hyena_filter_and_short_filter_follow_the_published_maths():
    c = published_config("hyenadna")
    mixer = build("hyenadna").backbone.layers[0].mixer
    z = mixer.filter_fn.pos_emb.z[0]  # (L, emb_dim): [t, cos(-f w), sin(-f w)], f = linspace(1e-4, bands - 1)
    n = c["max_seq_len"]
    w = 2 * np.pi * np.arange(n) / n
    np.testing.assert_allclose(z[:, 0].numpy(), np.linspace(0, 1, n), atol=1e-6)
    np.testing.assert_allclose(z[:, 2].numpy(), np.cos(-1.0 * w), atol=1e-4)  # second band: f = 1
    np.testing.assert_allclose(z[:, 4].numpy(), np.sin(-1.0 * w), atol=1e-4)
    deltas = mixer.filter_fn.modulation.deltas.flatten()
    assert deltas[0].item() == pytest.approx(np.log(1e-2) / 1.5) and deltas[-1].item() == pytest.approx(
        np.log(1e-2) / 0.3
    )
    x = torch.randn(1, 3 * c["d_model"], 6)  # the depthwise short filter is causal (left padding 2, kernel 3)
    y = mixer.short_filter(x)[..., :6]
    x2 = x.clone()
    x2[..., 4:] = 0
    assert torch.equal(mixer.short_filter(x2)[..., :4], y[..., :4])


def test_hyena_refuses_attention_maps_and_left_padding():
    model = build("hyenadna")
    ids = torch.full((1, 5), 7)
    with pytest.raises(InputError, match="no attention"):
        model(input_ids=ids, output_attentions=True)
    with pytest.raises(InputError, match="right padding"):
        model(input_ids=ids, attention_mask=torch.tensor([[0, 1, 1, 1, 1]]))


# ----------------------------------------------------------------------------- tokenizers


# The published NT v2 tokenizer (transformers EsmTokenizer, InstaDeepAI/nucleotide-transformer-v2-50m-multi-species
# @ 81b29e57, transformers 4.57.6) as recorded in a published model card (kurtvalcorza/nucleotide-transformer-
# genomics-pipeline): ``<cls>`` first, 6-mers left to right, single letters after an N and for the tail, no <eos>.
NT_PUBLISHED_EXAMPLE = (
    "ATTCCGATTCCGATTCCGACGTACGTNACGT",
    ["<cls>", "ATTCCG", "ATTCCG", "ATTCCG", "ACGTAC", "G", "T", "N", "A", "C", "G", "T"],
)


def test_nt_tokenizer_ids_equal_the_published_esm_tokenizer():
    from transformers import AutoTokenizer

    folder = shared(DIRS["ntv2"])
    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    tok = load_tokenizer(folder)
    assert tok.spec == "nt-kmer:6"
    seq, tokens = NT_PUBLISHED_EXAMPLE
    assert tok.tokens(tok.encode(seq).ids) == tokens
    for seq in [
        "",
        "A",
        "ACG",
        "ACGTA",
        "ACGTAC",
        "ACGTACG",
        "NNNN",
        "ACGTNACGTACGTT",
        "TTTTTTTTTTTTTT",
        "ACRYT",
        "ACGTRXACGTAC",
        "NRN",
        "RRRRRRACGTAC",
        "ACGT-*ACGTAC",
    ]:
        # content ids equal EsmTokenizer's; the published tokenizer prepends <cls> and adds no <eos> (the shared
        # tokenizer_config.json is a reconstruction without eos_token, so transformers 5 would append its default)
        assert tok.encode(seq).ids == [hf.cls_token_id, *hf(seq, add_special_tokens=False)["input_ids"]], seq
    assert (
        tok.encode("acgtac").ids == tok.encode("ACGTAC").ids
    )  # genoml upper-cases (EsmTokenizer: one <unk>)
    enc = tok.encode("ACRRYT")
    assert enc.ids == [3, 4102, 4104, 0, 4103] and enc.offsets[3] == (
        2,
        5,
    )  # one <unk> for the run, like EsmTokenizer


def test_hyena_tokenizer_is_the_published_character_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    tok = build_tokenizer("hyena")
    # HyenaDNATokenizer: [CLS] 0, [SEP] 1, [BOS] 2, [MASK] 3, [PAD] 4, [RESERVED] 5, [UNK] 6, then A C G T N
    assert tok.vocab == [
        "[CLS]",
        "[SEP]",
        "[BOS]",
        "[MASK]",
        "[PAD]",
        "[RESERVED]",
        "[UNK]",
        "A",
        "C",
        "G",
        "T",
        "N",
    ]
    assert (tok.pad_id, tok.unk_id, tok.mask_id, tok.cls_id, tok.eos_id) == (4, 6, 3, None, 1)
    assert tok.encode("ACGTN").ids == [7, 8, 9, 10, 11, 1]  # build_inputs_with_special_tokens: ids + [SEP]
    assert tok.encode("").ids == [1]
    assert tok.encode("ARX").ids == [7, 6, 6, 1]  # one [UNK] per unknown character
    assert tok.encode("acgt").ids == tok.encode("ACGT").ids  # genoml upper-cases (published: [UNK])
    cut = tok.encode("ACGTACGT", max_tokens=4)
    assert cut.ids == [7, 8, 9, 1]
    assert load_tokenizer(shared(DIRS["hyenadna"])).spec == "hyena"  # no tokenizer files: from config.json
    tok.save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert hf("ACGTNR")["input_ids"] == tok.encode("ACGTNR").ids
    assert load_tokenizer(tmp_path).spec == "hyena"


@pytest.mark.parametrize("flag", [[], ["--trust-remote-code"]])
def test_published_folder_embeds_natively_with_or_without_the_flag(published, flag, tmp_path, capsys):
    arch, folder = published
    fasta = write_fasta(tmp_path / "x.fa", [("ACGTACGTTTNACG", "0"), ("GGGCCCAT", "1")], with_labels=False)
    out = tmp_path / "e.npz"
    assert main(["-q", "embed", str(fasta), "--model", str(folder), "-o", str(out), *flag]) == 0, (
        capsys.readouterr().err
    )
    emb = np.load(out)["embeddings"]
    assert emb.shape == (2, published_config(arch).get("hidden_size") or published_config(arch)["d_model"])
    assert np.isfinite(emb).all()


# ----------------------------------------------------------------------------- Caduceus


def test_caduceus_is_a_clear_input_error(tmp_path, capsys):
    folder = tmp_path / "caduceus"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "caduceus",
                "architectures": ["CaduceusForMaskedLM"],
                "d_model": 32,
                "n_layer": 2,
                "auto_map": {
                    "AutoConfig": "configuration_caduceus.CaduceusConfig",
                    "AutoModelForMaskedLM": "modeling_caduceus.CaduceusForMaskedLM",
                },
            }
        )
    )
    fasta = write_fasta(tmp_path / "x.fa", [("ACGTACGT", "0")], with_labels=False)
    for extra in ([], ["--trust-remote-code"]):
        rc = main(["-q", "embed", str(fasta), "--model", str(folder), "-o", str(tmp_path / "e.npz"), *extra])
        err = capsys.readouterr().err
        assert rc == 2 and "Caduceus" in err and "mamba" in err, err


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    d = tmp_path_factory.mktemp("toy")
    rows = planted_motif_rows(48, length=30, seed=3)
    return (
        write_csv(d / "train.csv", rows[:32]),
        write_csv(d / "valid.csv", rows[32:40]),
        write_csv(d / "test.csv", rows[40:]),
        write_fasta(d / "x.fa", rows[40:]),
    )


@pytest.mark.parametrize("strategy", ["probe", "partial:1", "lora", "full"])
def test_finetune_predict_embed_attention(published, strategy, toy, tmp_path, capsys, monkeypatch):
    arch, folder = published
    monkeypatch.setattr(
        "genoml.finetune.write_reports", lambda *a, **k: None
    )  # plots: tested elsewhere, slow
    train, valid, test, fa = toy
    run = tmp_path / "run"
    rc = main(
        [
            "-q",
            "finetune",
            str(train),
            "--valid",
            str(valid),
            "--test",
            str(test),
            "--model",
            str(folder),
            "--strategy",
            strategy,
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--no-baselines",
            "--no-attention",
            "--out",
            str(run),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["model_type"] == f"genoml_{arch}" and "auto_map" not in config
    saved = load_file(str(run / "model.safetensors"))
    layout = LAYOUTS[arch][0](published_config(arch))
    assert {k: tuple(v.shape) for k, v in saved.items()} == layout  # the published layout, no LoRA leftovers
    before = {
        k.removeprefix(PREFIX[arch]): v for k, v in load_file(str(folder / "model.safetensors")).items()
    }
    changed = {k for k, v in saved.items() if not torch.equal(v, before[k])}
    if strategy == "probe":
        assert not changed
    elif strategy == "partial:1":
        last = "encoder.layer.1." if arch == "ntv2" else "backbone.layers.1."
        assert changed and all(k.startswith(last) for k in changed)
    else:
        assert changed
    assert not any(
        "position_embeddings" in k or "contact_head" in k or "pos_emb" in k or "deltas" in k for k in changed
    )  # tables the forward never reads stay as published
    assert load_tokenizer(run).spec == ("nt-kmer:6" if arch == "ntv2" else "hyena")
    assert main(["-q", "predict", str(fa), "--model", str(run), "-o", str(tmp_path / "p.tsv")]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 8
    assert main(["-q", "embed", str(fa), "--model", str(run), "-o", str(tmp_path / "e.npz")]) == 0
    assert np.load(tmp_path / "e.npz")["embeddings"].shape[0] == 8
    att = ["-q", "attention", str(fa), "--model", str(run), "--limit", "2"]
    if arch == "ntv2":
        assert main([*att, "--out", str(tmp_path / "att"), "--method", "attention,grad-input"]) == 0
    else:  # no attention maps: the default methods skip attention with a warning, gradients still work
        capsys.readouterr()
        assert (
            main(["attention", str(fa), "--model", str(run), "--limit", "2", "--out", str(tmp_path / "att")])
            == 0
        )
        err = capsys.readouterr().err
        assert "has no attention maps; skipping attention/rollout, using grad-input" in err, err
        assert not list((tmp_path / "att").glob("*attention*.npz"))
    assert any((tmp_path / "att").iterdir())
