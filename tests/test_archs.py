"""Native DNABERT-2 and GENA-LM, and the "never silently wrong" loading rules.

Tiny random models are built from the published config/tokenizer files in ../shared/hf_configs (sizes shrunk) and
saved with the published ``*ForMaskedLM`` checkpoint layout (``bert.`` prefix plus the ``cls.predictions`` head).
The expected key names and shapes below are written from the published modeling code (bert_layers.py of
zhihan1996/DNABERT-2-117M, modeling_bert.py of AIRI-Institute/GENA_LM), not read from genoml's classes.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from genoml.archs import detect, load_native, native_module
from genoml.cli import main
from genoml.errors import InputError
from genoml.models import load_hf_encoder, max_positions
from genoml.tokenizers import load_tokenizer
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv, write_fasta

SHARED = Path(__file__).parents[1] / ".." / "shared" / "hf_configs"
DIRS = {"dnabert2": "dnabert2", "gena": "gena-lm-bert-base-t2t"}


def shared(name: str) -> Path:
    folder = SHARED / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder} not present (the published config files live beside the checkout)")
    return folder


def published_config(arch: str) -> dict:
    return json.loads((shared(DIRS[arch]) / "config.json").read_text())


# ----------------------------------------------------------------------------- expected published layouts


def dnabert2_layout(c: dict) -> dict[str, tuple[int, ...]]:
    """bert_layers.BertModel (no pooler, as inside BertForMaskedLM)."""
    h, i, v, t = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["type_vocab_size"]
    keys = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.token_type_embeddings.weight": (t, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for n in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        keys.update(
            {
                p + "attention.self.Wqkv.weight": (3 * h, h),
                p + "attention.self.Wqkv.bias": (3 * h,),
                p + "attention.output.dense.weight": (h, h),
                p + "attention.output.dense.bias": (h,),
                p + "attention.output.LayerNorm.weight": (h,),
                p + "attention.output.LayerNorm.bias": (h,),
                p + "mlp.gated_layers.weight": (2 * i, h),
                p + "mlp.wo.weight": (h, i),
                p + "mlp.wo.bias": (h,),
                p + "mlp.layernorm.weight": (h,),
                p + "mlp.layernorm.bias": (h,),
            }
        )
    return keys


def dnabert2_head(c: dict) -> dict[str, tuple[int, ...]]:
    """bert_layers.BertForMaskedLM's cls head (decoder tied to the word embeddings, both stored)."""
    h, v = c["hidden_size"], c["vocab_size"]
    return {
        "cls.predictions.transform.dense.weight": (h, h),
        "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,),
        "cls.predictions.transform.LayerNorm.bias": (h,),
        "cls.predictions.decoder.weight": (v, h),
        "cls.predictions.decoder.bias": (v,),
    }


def gena_layout(c: dict) -> dict[str, tuple[int, ...]]:
    """GENA_LM modeling_bert.BertModel with pre_layer_norm (no pooler), absolute positions."""
    h, i, v, t, pos = (
        c["hidden_size"],
        c["intermediate_size"],
        c["vocab_size"],
        c["type_vocab_size"],
        c["max_position_embeddings"],
    )
    keys = {
        "embeddings.word_embeddings.weight": (v, h),
        "embeddings.position_embeddings.weight": (pos, h),
        "embeddings.token_type_embeddings.weight": (t, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
        "embeddings.position_ids": (1, pos),
    }
    for n in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        keys.update(
            {
                p + "pre_attention_ln.weight": (h,),
                p + "pre_attention_ln.bias": (h,),
                p + "post_attention_ln.weight": (h,),
                p + "post_attention_ln.bias": (h,),
                p + "attention.self.query.weight": (h, h),
                p + "attention.self.query.bias": (h,),
                p + "attention.self.key.weight": (h, h),
                p + "attention.self.key.bias": (h,),
                p + "attention.self.value.weight": (h, h),
                p + "attention.self.value.bias": (h,),
                p + "attention.output.dense.weight": (h, h),
                p + "attention.output.dense.bias": (h,),
                p + "intermediate.dense.weight": (i, h),
                p + "intermediate.dense.bias": (i,),
                p + "output.dense.weight": (h, i),
                p + "output.dense.bias": (h,),
            }
        )
    if c.get("last_layer_norm", c.get("pre_layer_norm")):
        keys.update({"encoder.last_layer_ln.weight": (h,), "encoder.last_layer_ln.bias": (h,)})
    return keys


def gena_head(c: dict) -> dict[str, tuple[int, ...]]:
    h, v = c["hidden_size"], c["vocab_size"]
    return {
        "cls.predictions.bias": (v,),
        "cls.predictions.transform.dense.weight": (h, h),
        "cls.predictions.transform.dense.bias": (h,),
        "cls.predictions.transform.LayerNorm.weight": (h,),
        "cls.predictions.transform.LayerNorm.bias": (h,),
    }


LAYOUTS = {"dnabert2": (dnabert2_layout, dnabert2_head), "gena": (gena_layout, gena_head)}


def build(arch: str, config: dict | None = None, seed: int = 0):
    mod = native_module(arch)
    torch.manual_seed(seed)
    model = mod.MODEL_CLASS(mod.CONFIG_CLASS.from_published(config or published_config(arch))).eval()
    with torch.no_grad():  # random LayerNorm affine too, so a LayerNorm left at init shows
        for name, p in model.named_parameters():
            if (
                "LayerNorm" in name
                or "layernorm" in name
                or name.endswith("_ln.weight")
                or name.endswith("_ln.bias")
            ):
                p.add_(0.1 * torch.randn_like(p))
    return model


def write_published(folder: Path, arch: str, seed: int = 0, config: dict | None = None) -> Path:
    """A folder as published: config.json + tokenizer files + model.safetensors of a *ForMaskedLM."""
    src = shared(DIRS[arch])
    folder.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.suffix in (".json",) and f.name != "config.json":
            shutil.copy(f, folder / f.name)
    config = config or published_config(arch)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    model = build(arch, config, seed)
    state = {"bert." + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed + 1)
    for k, shape in LAYOUTS[arch][1](config).items():
        state[k] = torch.randn(shape, generator=gen)
    save_file(state, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module", params=["dnabert2", "gena"])
def published(request, tmp_path_factory):
    return request.param, write_published(tmp_path_factory.mktemp(request.param) / "model", request.param)


# ----------------------------------------------------------------------------- detection and layout


def test_detect_reads_the_published_configs():
    assert detect(published_config("dnabert2")) == "dnabert2"
    assert detect(published_config("gena")) == "gena"
    for plain in ("dnabert6", "esm2-8m", "protbert-bfd"):
        assert detect(json.loads((shared(plain) / "config.json").read_text())) is None, plain
    assert detect({"model_type": "bert", "alibi_starting_size": 512}) == "dnabert2"
    assert detect({"model_type": "bert", "pre_layer_norm": False}) is None
    assert detect({"model_type": "genoml_gena"}) == "gena"


@pytest.mark.parametrize("arch", ["dnabert2", "gena"])
def test_state_dict_keys_and_shapes_are_the_published_layout(arch):
    config = published_config(arch)
    got = {k: tuple(v.shape) for k, v in build(arch).state_dict().items()}
    assert got == LAYOUTS[arch][0](config)


def test_gena_last_layer_norm_adds_the_published_tensor():
    config = {**published_config("gena"), "last_layer_norm": True}
    got = {k: tuple(v.shape) for k, v in build("gena", config).state_dict().items()}
    assert got == gena_layout(config) and "encoder.last_layer_ln.weight" in got


# ----------------------------------------------------------------------------- architecture properties


def test_alibi_slopes_power_of_two_and_not():
    from genoml.archs.dnabert2 import alibi_bias, alibi_slopes

    assert alibi_slopes(8) == pytest.approx([2.0**-k for k in range(1, 9)])
    assert alibi_slopes(2) == pytest.approx([2.0**-4, 2.0**-8])
    # 12 heads: the 8 slopes of 8 heads, then every other slope of 16 heads (2^-0.5, 2^-1.5, ...)
    assert alibi_slopes(12) == pytest.approx(
        [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]
    )
    bias = alibi_bias(12, 5)
    assert bias.shape == (1, 12, 5, 5)
    assert bias[0, 9, 1, 4].item() == pytest.approx(-3 * 2.0**-1.5)
    assert bias[0, 0, 3, 3].item() == 0.0 and bias[0, 0, 4, 0].item() == pytest.approx(-4 * 0.5)


def test_dnabert2_attention_is_softmax_of_alibi_when_queries_are_zero():
    """With Wqkv = 0 the scores are 0, so each head's attention is exactly softmax(ALiBi + padding mask)."""
    from genoml.archs.dnabert2 import alibi_slopes

    config = {**published_config("dnabert2"), "num_attention_heads": 4}  # 4 heads of 16
    model = build("dnabert2", config)
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.attention.self.Wqkv.weight.zero_()
            layer.attention.self.Wqkv.bias.zero_()
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    out = model(input_ids=torch.randint(5, 4096, (2, 6)), attention_mask=mask, output_attentions=True)
    slopes = torch.tensor(alibi_slopes(4))
    dist = (torch.arange(6)[None, :] - torch.arange(6)[:, None]).abs()
    for b in range(2):
        n = int(mask[b].sum())
        expected = torch.softmax(-slopes[:, None, None] * dist[:n, :n], -1)  # (heads, n, n)
        got = out.attentions[0][b, :, :n, :n]
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
        if n < 6:
            assert out.attentions[0][b, :, :n, n:].abs().max() < 1e-6  # padding receives no attention


@pytest.mark.parametrize("arch", ["dnabert2", "gena"])
def test_padding_does_not_change_a_sequence(arch):
    model = build(arch)
    short = torch.randint(6, 3000, (1, 7))
    long = torch.randint(6, 3000, (1, 12))
    alone = model(input_ids=short).last_hidden_state[0]  # (7, H)
    batch = torch.cat([torch.cat([short, torch.full((1, 5), 3)], 1), long])
    mask = torch.tensor([[1] * 7 + [0] * 5, [1] * 12])
    out = model(input_ids=batch, attention_mask=mask, output_hidden_states=True)
    torch.testing.assert_close(out.last_hidden_state[0, :7], alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        out.last_hidden_state[1], model(input_ids=long).last_hidden_state[0], atol=1e-5, rtol=1e-4
    )
    if arch == "dnabert2":  # the published model pads its output back with zeros
        assert out.last_hidden_state[0, 7:].abs().max() == 0


def test_gena_pre_layer_norm_keeps_an_unnormalised_residual_stream():
    """Pre-LN: h + Attn(LN(h)) + FFN(LN(.)). With both output projections zero a block is the identity (a
    post-LN block would re-normalise), and the pre-attention LayerNorm is on the path."""
    model = build("gena")
    ids = torch.randint(6, 3000, (2, 9))
    with torch.no_grad():
        for layer in model.encoder.layer:
            for lin in (layer.attention.output.dense, layer.output.dense):
                lin.weight.zero_()
                lin.bias.zero_()
    out = model(input_ids=ids, output_hidden_states=True)
    torch.testing.assert_close(out.hidden_states[-1], out.hidden_states[0])
    post_ln = build("gena", {**published_config("gena"), "pre_layer_norm": False, "last_layer_norm": False})
    assert not hasattr(post_ln.encoder.layer[0], "pre_attention_ln")
    assert hasattr(post_ln.encoder.layer[0].output, "LayerNorm")
    model = build("gena")
    before = model(input_ids=ids).last_hidden_state
    with torch.no_grad():
        model.encoder.layer[0].pre_attention_ln.weight.mul_(2.0)
    assert not torch.allclose(model(input_ids=ids).last_hidden_state, before)


def test_gena_post_ln_equals_transformers_bert():
    """With pre_layer_norm false GENA-LM's modeling_bert.py is standard BERT: the native class, given the same
    tensors, matches transformers' own BertModel (an independent implementation) to float precision."""
    from transformers import BertConfig, BertModel

    config = {**published_config("gena"), "pre_layer_norm": False, "last_layer_norm": False}
    ours = build("gena", config)
    theirs = BertModel(
        BertConfig(**{k: v for k, v in config.items() if k != "auto_map"}), add_pooling_layer=False
    )
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not missing and unexpected == ["embeddings.position_ids"]  # a buffer in transformers 5
    theirs.eval()
    ids = torch.randint(6, 3000, (2, 11))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 7:] = 0
    a = ours(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    b = theirs(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    for x, y in zip(a.hidden_states, b.hidden_states):
        torch.testing.assert_close(x[0], y[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(x[1, :7], y[1, :7], atol=1e-5, rtol=1e-4)


# Transcriptions of the published forward passes (bert_layers.py: unpad -> per layer -> pad back with zeros, the
# PyTorch attention path; modeling_bert.py: the pre_layer_norm branch), written on the published state-dict keys,
# as an independent reference for the native classes.


def _ln(x, sd, p, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), sd[p + ".weight"], sd[p + ".bias"], eps)


def _lin(x, sd, p):
    return torch.nn.functional.linear(x, sd[p + ".weight"], sd.get(p + ".bias"))


def reference_dnabert2(sd, c, ids, mask):
    hid, nh, inter, eps = (
        c["hidden_size"],
        c["num_attention_heads"],
        c["intermediate_size"],
        c["layer_norm_eps"],
    )
    d, (b, n) = hid // nh, ids.shape
    emb = (
        sd["bert.embeddings.word_embeddings.weight"][ids]
        + sd["bert.embeddings.token_type_embeddings.weight"][0]
    )
    h = _ln(emb, sd, "bert.embeddings.LayerNorm", eps).reshape(b * n, hid)
    keep = torch.nonzero(mask.flatten().bool()).flatten()
    h = h[keep]  # unpad_input: (nnz, H)
    size = max(c["alibi_starting_size"], n)  # rebuild_alibi_tensor
    slopes = torch.Tensor(_published_slopes(nh))
    rel = (torch.arange(size)[None, :] - torch.arange(size)[:, None]).abs().unsqueeze(0).expand(nh, -1, -1)
    alibi = (slopes.unsqueeze(1).unsqueeze(1) * -rel).unsqueeze(0)[:, :, :n, :n]
    bias = (1.0 - mask[:, None, None, :].float()) * -10000.0 + alibi
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        qkv = torch.zeros(b * n, 3 * hid)
        qkv[keep] = _lin(h, sd, p + "attention.self.Wqkv")  # pad_input
        qkv = qkv.view(b, n, 3, nh, d)  # 'b s (t h d) -> b s t h d'
        q, k, v = (
            qkv[:, :, 0].permute(0, 2, 1, 3),
            qkv[:, :, 1].permute(0, 2, 3, 1),
            qkv[:, :, 2].permute(0, 2, 1, 3),
        )
        probs = torch.softmax(torch.matmul(q, k) / math.sqrt(d) + bias, -1)
        att = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b * n, hid)[keep]  # unpad_input_only
        a = _ln(_lin(att, sd, p + "attention.output.dense") + h, sd, p + "attention.output.LayerNorm", eps)
        g = torch.nn.functional.linear(a, sd[p + "mlp.gated_layers.weight"])
        x = torch.nn.functional.gelu(g[:, :inter]) * g[:, inter:]
        h = _ln(_lin(x, sd, p + "mlp.wo") + a, sd, p + "mlp.layernorm", eps)
    out = torch.zeros(b * n, hid)
    out[keep] = h  # pad_input: zeros at padding
    return out.view(b, n, hid)


def _published_slopes(n):
    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + _published_slopes(2 * closest)[0::2][: n - closest]


def reference_gena(sd, c, ids, mask):
    hid, nh, eps = c["hidden_size"], c["num_attention_heads"], c["layer_norm_eps"]
    d, (b, n) = hid // nh, ids.shape
    e = (
        sd["bert.embeddings.word_embeddings.weight"][ids]
        + sd["bert.embeddings.token_type_embeddings.weight"][0]
        + sd["bert.embeddings.position_embeddings.weight"][sd["bert.embeddings.position_ids"][:, :n]]
    )
    h = _ln(e, sd, "bert.embeddings.LayerNorm", eps)
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    states = [h]
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        x = _ln(h, sd, p + "pre_attention_ln", eps)
        q, k, v = (
            _lin(x, sd, p + f"attention.self.{w}").view(b, n, nh, d).permute(0, 2, 1, 3)
            for w in ("query", "key", "value")
        )
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + ext, -1)
        a = h + _lin(
            torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, n, hid), sd, p + "attention.output.dense"
        )
        f = torch.nn.functional.gelu(
            _lin(_ln(a, sd, p + "post_attention_ln", eps), sd, p + "intermediate.dense")
        )
        h = _lin(f, sd, p + "output.dense") + a
        states.append(h)
    if c.get("last_layer_norm", c.get("pre_layer_norm")):
        states[-1] = _ln(h, sd, "bert.encoder.last_layer_ln", eps)
    return states


@pytest.mark.parametrize("heads,length", [(2, 40), (12, 530), (6, 40)])
def test_dnabert2_matches_the_published_unpadded_forward(heads, length, tmp_path):
    """12 heads: non-power-of-2 slopes; 530 tokens: longer than alibi_starting_size (the cache is rebuilt)."""
    config = {**published_config("dnabert2"), "hidden_size": 96, "num_attention_heads": heads}
    folder = write_published(tmp_path / "m", "dnabert2", config=config)
    encoder = load_hf_encoder(str(folder))
    ids = torch.randint(5, 4096, (3, length))
    mask = torch.ones(3, length, dtype=torch.long)
    mask[1, length // 2 :] = 0
    mask[2, 3:] = 0
    ref = reference_dnabert2(load_file(str(folder / "model.safetensors")), config, ids, mask)
    with torch.no_grad():
        ours = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("last_layer_norm", [False, True])
def test_gena_matches_the_published_pre_ln_forward(last_layer_norm, tmp_path):
    config = {
        **published_config("gena"),
        "hidden_size": 48,
        "num_attention_heads": 3,
        "num_hidden_layers": 3,
        "last_layer_norm": last_layer_norm,
    }
    folder = write_published(tmp_path / "m", "gena", config=config)
    encoder = load_hf_encoder(str(folder))
    ids = torch.randint(6, 32000, (3, 60))
    mask = torch.ones(3, 60, dtype=torch.long)
    mask[1, 25:] = 0
    mask[2, 4:] = 0
    ref = reference_gena(load_file(str(folder / "model.safetensors")), config, ids, mask)
    with torch.no_grad():
        ours = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(ours) == len(ref) == 4
    for x, y in zip(ours, ref):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=0)


def test_gena_refuses_sparse_attention():
    with pytest.raises(InputError, match="sparse"):
        native_module("gena").CONFIG_CLASS.from_published(
            {**published_config("gena"), "sparse_config_cls": "x:y"}
        )


# ----------------------------------------------------------------------------- faithful loading


def test_published_checkpoint_loads_every_tensor(published):
    arch, folder = published
    encoder = load_hf_encoder(str(folder))
    assert type(encoder).__name__ == {"dnabert2": "DNABert2Model", "gena": "GenaModel"}[arch]
    saved = {
        k.removeprefix("bert."): v
        for k, v in load_file(str(folder / "model.safetensors")).items()
        if k.startswith("bert.")
    }
    state = encoder.state_dict()
    assert set(state) == set(saved)
    for k, v in saved.items():
        assert torch.equal(state[k], v), k
    ids = torch.randint(6, 3000, (2, 10))
    loaded = encoder(input_ids=ids).last_hidden_state
    fresh = build(arch, seed=123)(input_ids=ids).last_hidden_state
    assert (loaded - fresh).abs().max() > 1e-2  # the weights came from the file, not from an init
    reference = build(arch, seed=0)(input_ids=ids).last_hidden_state  # what was written
    torch.testing.assert_close(loaded, reference)


def test_dnabert2_window_is_not_the_alibi_cache_size(published):
    arch, folder = published
    encoder = load_hf_encoder(str(folder))
    assert max_positions(encoder) == (2048 if arch == "dnabert2" else 512)


def test_load_native_refuses_a_checkpoint_with_missing_tensors(tmp_path):
    folder = write_published(tmp_path / "m", "dnabert2")
    state = load_file(str(folder / "model.safetensors"))
    del state["bert.encoder.layer.1.mlp.wo.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match=r"encoder\.layer\.1\.mlp\.wo\.weight"):
        load_native("dnabert2", str(folder))


@pytest.mark.parametrize("flag", [[], ["--trust-remote-code"]])
def test_dnabert2_embeds_with_or_without_the_flag(flag, tmp_path, capsys):
    folder = write_published(tmp_path / "m", "dnabert2")
    fasta = write_fasta(tmp_path / "x.fa", planted_motif_rows(4), with_labels=False)
    rc = main(["-q", "embed", str(fasta), "--model", str(folder), "-o", str(tmp_path / "e.npz"), *flag])
    assert rc == 0, capsys.readouterr().err
    emb = np.load(tmp_path / "e.npz")["embeddings"]
    assert emb.shape == (4, 64) and np.isfinite(emb).all()


# ----------------------------------------------------------------------------- never silently wrong (CLI)


@pytest.fixture
def fasta(tmp_path):
    return write_fasta(tmp_path / "x.fa", planted_motif_rows(3), with_labels=False)


def embed_rc(folder, fasta, tmp_path, *extra) -> int:
    return main(["-q", "embed", str(fasta), "--model", str(folder), "-o", str(tmp_path / "e.npz"), *extra])


def test_plain_bert_with_unused_tensors_is_exit_2(tmp_path, fasta, capsys):
    folder = tiny_bert_folder(tmp_path / "bert")
    state = load_file(str(folder / "model.safetensors"))
    state["bert.encoder.layer.0.attention.self.Wqkv.weight"] = torch.zeros(96, 32)
    state["bert.encoder.layer.0.mlp.gated_layers.weight"] = torch.zeros(128, 32)
    save_file(state, str(folder / "model.safetensors"))
    assert embed_rc(folder, fasta, tmp_path) == 2
    err = capsys.readouterr().err
    assert "encoder.layer.0.attention.self.Wqkv.weight" in err and "mlp.gated_layers.weight" in err
    assert "unused" in err and "BertModel" in err and "--trust-remote-code" in err
    assert not (tmp_path / "e.npz").exists()


def test_plain_bert_with_missing_tensors_is_exit_2(tmp_path, fasta, capsys):
    folder = tiny_bert_folder(tmp_path / "bert")
    state = load_file(str(folder / "model.safetensors"))
    del state["bert.encoder.layer.1.attention.self.query.weight"]
    save_file(state, str(folder / "model.safetensors"))
    assert embed_rc(folder, fasta, tmp_path) == 2
    err = capsys.readouterr().err
    assert "encoder.layer.1.attention.self.query.weight" in err and "random" in err


def test_dnabert2_weights_under_a_plain_bert_config_are_exit_2(tmp_path, fasta, capsys):
    """The issue's silent case, forced: DNABERT-2 weights with a config that asks for a plain BertModel."""
    folder = write_published(tmp_path / "m", "dnabert2")
    config = {
        k: v for k, v in published_config("dnabert2").items() if k not in ("auto_map", "alibi_starting_size")
    }
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    assert embed_rc(folder, fasta, tmp_path) == 2
    err = capsys.readouterr().err
    assert "Wqkv" in err and "would stay random" in err


def test_config_without_model_type_uses_architectures(tmp_path, fasta, capsys):
    """DNABERT-6 / ProtBert original configs: no model_type, architectures ["BertForMaskedLM"]."""
    from transformers import BertConfig, BertForMaskedLM

    src = shared("dnabert6")
    folder = tmp_path / "dnabert6"
    config = json.loads((src / "config.json").read_text())
    BertForMaskedLM(BertConfig(**config)).save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)
    raw = json.loads((folder / "config.json").read_text())
    raw.pop("model_type")
    (folder / "config.json").write_text(json.dumps(raw))
    assert load_tokenizer(folder).spec == "kmer:6"
    assert embed_rc(folder, fasta, tmp_path) == 0, capsys.readouterr().err


def test_unknown_auto_map_needs_the_flag(tmp_path, fasta, capsys):
    folder = tiny_bert_folder(tmp_path / "bert")
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "auto_map": {"AutoModel": "modeling_x.XModel"}}))
    assert embed_rc(folder, fasta, tmp_path) == 2
    err = capsys.readouterr().err
    assert "modeling_x.XModel" in err and "--trust-remote-code" in err


def test_remote_code_that_fails_to_import_is_exit_2(tmp_path, fasta, capsys):
    folder = tiny_bert_folder(tmp_path / "bert")
    raw = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**raw, "auto_map": {"AutoModel": "modeling_x.XModel"}}))
    (folder / "modeling_x.py").write_text(
        "from transformers.modeling_utils import find_pruneable_heads_and_indices\n"
    )
    assert embed_rc(folder, fasta, tmp_path, "--trust-remote-code") == 2
    err = capsys.readouterr().err
    assert "--model" in err and "ImportError" in err and "Traceback" not in err


def test_hub_dnabert2_with_the_flag_needs_no_pin(monkeypatch):
    """--trust-remote-code on a hub id needs --revision only when remote code would run; a native architecture
    loads without running any (the hub is simulated: config.json read, loader recorded)."""
    from types import SimpleNamespace

    import genoml.archs
    import genoml.models as models

    calls, model = [], SimpleNamespace(config=SimpleNamespace())
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(
        models, "read_model_config", lambda spec, revision=None: dict(published_config("dnabert2"))
    )
    monkeypatch.setattr(
        genoml.archs, "load_native", lambda name, folder, **kw: calls.append((name, folder, kw)) or model
    )
    assert load_hf_encoder("zhihan1996/DNABERT-2-117M", trust_remote_code=True) is model
    assert calls and calls[0][:2] == ("dnabert2", "zhihan1996/DNABERT-2-117M")
    monkeypatch.setattr(
        models, "read_model_config", lambda spec, revision=None: {"model_type": "x", "auto_map": {}}
    )
    with pytest.raises(InputError, match="--revision"):
        load_hf_encoder("someorg/other", trust_remote_code=True)


@pytest.mark.parametrize("arch", ["dnabert2", "gena"])
def test_masked_lm_training_of_a_native_arch_is_refused(arch, tmp_path, fasta, capsys):
    """pretrain --model / finetune --adapt-steps use transformers' masked-LM classes: a GENA folder would load as
    a post-LN BertForMaskedLM, so it is refused rather than trained silently wrong."""
    folder = write_published(tmp_path / "m", arch)
    rc = main(
        [
            "-q",
            "pretrain",
            str(fasta),
            "--model",
            str(folder),
            "--out",
            str(tmp_path / "pt"),
            "--max-steps",
            "1",
        ]
    )
    assert rc == 2
    assert "masked-LM training" in capsys.readouterr().err


def test_missing_local_folder_says_so(tmp_path, fasta, capsys):
    assert embed_rc(tmp_path / "no" / "such" / "model", fasta, tmp_path) == 2
    assert "not a local folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "embed", "attention", "evaluate", "finetune"])
def test_every_loading_command_takes_the_remote_code_flags(command):
    import typer

    from genoml.cli import app

    params = typer.main.get_command(app).commands[command].params
    flags = {opt for p in params for opt in p.opts}
    assert {"--trust-remote-code", "--revision"} <= flags


def test_models_command_lists_the_native_architectures(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "dnabert2" in out and "gena" in out and "bert_layers" in out


# ----------------------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("arch", ["dnabert2", "gena"])
def test_tokenization_matches_the_models_own_tokenizer(arch):
    from transformers import AutoTokenizer

    folder = shared(DIRS[arch])
    ours = load_tokenizer(folder)
    theirs = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    seqs = [
        "ACGTAGCTAGCTTTAGGCATCGATCGATCGACTAGCTAGGGCTAGCATCG",
        "A",
        "",
        "N",
        "ACGTNNNNNNNNNNNNACGTTT",
        "ACNGT",
        "TATAATGCGC" * 7,
    ]
    for seq in seqs:
        assert ours.encode(seq).ids == theirs(seq)["input_ids"], seq
        assert ours.encode(seq.lower()).ids == theirs(seq)["input_ids"], seq  # genoml upper-cases
    enc = ours.encode("ACGTNNNNNNNNNNNNACGTTT")
    covered = sorted(i for (s, e), sp in zip(enc.offsets, enc.special_mask) if not sp for i in range(s, e))
    assert covered == list(range(22))  # every base in exactly one token (GENA: the N run is one '-' token)


def test_protbert_vocab_with_a_trailing_blank_line_is_protbert():
    from transformers import AutoTokenizer

    folder = shared("protbert-bfd")
    assert (folder / "vocab.txt").read_text().endswith("\n\n")
    tok = load_tokenizer(folder)
    assert tok.spec == "protbert"
    theirs = AutoTokenizer.from_pretrained(str(folder))
    assert tok.encode("MKTAYIAKQRX").ids == theirs(" ".join("MKTAYIAKQRX"))["input_ids"]


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
    assert set(saved) == set(
        LAYOUTS[arch][0](published_config(arch))
    )  # the published layout, no LoRA leftovers
    before = {k.removeprefix("bert."): v for k, v in load_file(str(folder / "model.safetensors")).items()}
    changed = {k for k, v in saved.items() if not torch.equal(v, before[k])}
    if strategy == "probe":
        assert not changed
    elif strategy == "partial:1":
        last = f"encoder.layer.{published_config(arch)['num_hidden_layers'] - 1}."
        assert changed and all(k.startswith(last) for k in changed)
    elif strategy == "lora":  # adapters on the attention projections, merged back into them
        projections = (".Wqkv.",) if arch == "dnabert2" else (".query.", ".key.", ".value.")
        assert changed and all(any(p in k for p in projections) for k in changed), changed
    else:
        assert (
            "embeddings.word_embeddings.weight" in changed
            and "encoder.layer.0.attention.output.dense.weight" in changed
        )
    assert main(["-q", "predict", str(fa), "--model", str(run), "-o", str(tmp_path / "p.tsv")]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 8
    assert main(["-q", "embed", str(fa), "--model", str(run), "-o", str(tmp_path / "e.npz")]) == 0
    assert np.load(tmp_path / "e.npz")["embeddings"].shape[0] == 8
    assert (
        main(
            [
                "-q",
                "attention",
                str(fa),
                "--model",
                str(run),
                "--out",
                str(tmp_path / "att"),
                "--limit",
                "1",
                "--method",
                "attention,grad-input",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert any((tmp_path / "att").iterdir())


def test_math_check_gelu_is_exact():
    """The gated MLP uses exact (erf) GELU as the published nn.GELU(approximate='none')."""
    mlp = build("dnabert2").encoder.layer[0].mlp
    x = torch.tensor([1.0])
    assert mlp.act(x).item() == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
