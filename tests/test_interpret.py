"""genoml.interpret: attention maps, rollout, attributions, base projection, writers and `explain`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from genoml import interpret as I
from genoml.errors import InputError
from genoml.tokenizers import build_tokenizer

DNA = "ACGTTGCAAGGCTTACCGATCGATTACG"


class TinyBert(nn.Module):
    """A tiny BERT + linear head implementing the interpretation protocol (independent of genoml.models)."""

    def __init__(self, tokenizer, n_out: int = 2, pooling: str = "mean"):
        super().__init__()
        from transformers import BertConfig, BertModel

        cfg = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
            pad_token_id=tokenizer.pad_id,
            attn_implementation="eager",
        )
        self.encoder = BertModel(cfg, add_pooling_layer=False)
        self.classifier = nn.Linear(32, n_out)
        self.tokenizer, self.labels, self.pooling, self.task = (
            tokenizer,
            [str(i) for i in range(n_out)],
            pooling,
            "multiclass",
        )
        self.eval()

    def embed(self, ids):
        return self.encoder.get_input_embeddings()(ids)

    def logits_from_embeds(self, embeds, mask):
        h = self.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, L, H)
        pooled = (
            h[:, 0] if self.pooling == "cls" else (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        )
        return self.classifier(pooled)

    def attentions(self, ids, mask):
        return self.encoder(input_ids=ids, attention_mask=mask, output_attentions=True).attentions


class LinearBag(nn.Module):
    """logits = sum_t embed(ids_t) @ W: grad x input is exactly embed_t @ W[:, k], and IG equals it."""

    def __init__(self, tokenizer, dim: int = 8, n_out: int = 2):
        super().__init__()
        self.emb = nn.Embedding(len(tokenizer), dim)
        self.w = nn.Parameter(torch.randn(dim, n_out))
        self.tokenizer, self.labels = tokenizer, ["neg", "pos"]

    def embed(self, ids):
        return self.emb(ids)

    def logits_from_embeds(self, embeds, mask):
        return (embeds * mask[..., None]).sum(1) @ self.w

    def attentions(self, ids, mask):
        raise InputError("no attention in this model")


@pytest.fixture(scope="module")
def kmer3():
    return build_tokenizer("kmer:3")


@pytest.fixture
def bert(kmer3):
    torch.manual_seed(0)
    return TinyBert(kmer3)


def test_attention_rows_sum_to_one(bert, kmer3):
    enc = kmer3.encode(DNA)
    maps = I.attention_maps(bert, enc)
    assert maps.shape == (2, 4, len(enc.ids), len(enc.ids))
    np.testing.assert_allclose(maps.sum(-1), 1.0, atol=1e-5)


def test_rollout_is_the_product_of_residual_maps():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 2, 5, 5))
    maps /= maps.sum(-1, keepdims=True)
    roll = I.attention_rollout(maps)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-12)
    eye, expected = np.eye(5), np.eye(5)
    for layer in maps:
        a = 0.5 * layer.mean(0) + 0.5 * eye  # rows already sum to 1
        expected = a @ expected
    np.testing.assert_allclose(roll, expected, atol=1e-12)
    assert I.attention_rollout(maps[:1]).diagonal().min() >= 0.5  # residual keeps half on itself


def test_received_attention_cls_and_mean():
    m = np.array([[0.0, 0.7, 0.3], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(I.received_attention(m, [True, False, False], "cls"), [0.0, 0.7, 0.3])
    np.testing.assert_allclose(I.received_attention(m, [True, False, False], "mean"), [0.3, 0.3, 0.4])


@pytest.mark.parametrize("spec", ["kmer:3", "nt-kmer:6", "char", "esm"])
def test_projection_follows_offsets(spec):
    tok = build_tokenizer(spec)
    seq = "MKVLAAGHRSTWYQNDEP" if spec == "esm" else "ACGTTGCAAGGCTTACCGATCG"
    enc = tok.encode(seq)
    n = len(seq)
    # all ones -> every base 1 (every base covered, specials ignored)
    np.testing.assert_allclose(
        I.project_to_bases(np.ones(len(enc.ids)), enc.offsets, n, special=enc.special_mask), 1.0
    )
    # one token carries the score: its bases get it (averaged with the zero-score tokens overlapping them)
    t = next(i for i, s in enumerate(enc.special_mask) if not s) + 1
    scores = np.zeros(len(enc.ids))
    scores[t] = 6.0
    track = I.project_to_bases(scores, enc.offsets, n, special=enc.special_mask)
    start, end = enc.offsets[t]
    assert track.shape == (n,)
    assert np.all(track[start:end] > 0) and np.all(np.delete(track, range(start, end)) == 0)
    cover = np.array(
        [sum(a <= b < e for (a, e), sp in zip(enc.offsets, enc.special_mask) if not sp) for b in range(n)]
    )
    np.testing.assert_allclose(track[start:end], 6.0 / cover[start:end])
    spread = I.project_to_bases(scores, enc.offsets, n, special=enc.special_mask, mode="spread")
    np.testing.assert_allclose(spread.sum(), 6.0)
    # a special token with a big score changes nothing
    scores[0] = 100.0
    np.testing.assert_allclose(I.project_to_bases(scores, enc.offsets, n, special=enc.special_mask), track)


def test_projection_token_covering_bases_3_to_8():
    track = I.project_to_bases([9.0, 2.0, 9.0], [(0, 0), (3, 9), (0, 0)], 12, special=[True, False, True])
    np.testing.assert_array_equal(track, [0, 0, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0])


def test_kmer3_interior_base_is_mean_of_three_tokens(kmer3):
    enc = kmer3.encode("ACGTACG")  # tokens ACG CGT GTA TAC ACG cover (0,3)..(4,7)
    scores = np.array([0, 3.0, 6.0, 9.0, 0, 0, 0])
    track = I.project_to_bases(scores, enc.offsets, 7, special=enc.special_mask)
    np.testing.assert_allclose(track, [3, 4.5, 6, 5, 3, 0, 0])


def test_grad_input_and_ig_exact_on_a_linear_model(kmer3):
    torch.manual_seed(1)
    model = LinearBag(kmer3)
    enc = kmer3.encode(DNA)
    ids = torch.tensor([enc.ids])
    expected = (model.emb(ids)[0] @ model.w[:, 1]).detach().numpy()
    np.testing.assert_allclose(I.grad_input(model, enc, target="pos"), expected, rtol=1e-5, atol=1e-6)
    # IG with a zero baseline on a linear model equals grad x input on the sequence tokens
    ig, delta = I.integrated_gradients(model, enc, 1, steps=4, baseline="zero")
    keep = ~np.array(enc.special_mask)
    np.testing.assert_allclose(ig[keep], expected[keep], rtol=1e-4, atol=1e-5)
    assert abs(delta) < 1e-4


def test_ig_completeness_on_bert(bert, kmer3):
    enc = kmer3.encode(DNA)
    scores, delta = I.integrated_gradients(bert, enc, 1, steps=32)
    ids = torch.tensor([enc.ids])
    base_ids = torch.where(torch.tensor([enc.special_mask]), ids, kmer3.pad_id)
    with torch.no_grad():
        f_x = bert.logits_from_embeds(bert.embed(ids), torch.ones_like(ids))[0, 1]
        f_b = bert.logits_from_embeds(bert.embed(base_ids), torch.ones_like(ids))[0, 1]
    gap = float(f_x - f_b)
    assert abs(scores.sum() - gap) <= 0.05 * abs(gap) + 1e-4
    assert abs(delta) <= 0.05 * abs(gap) + 1e-4


def test_token_scores_methods_shapes(bert, kmer3):
    enc = kmer3.encode(DNA)
    for method in I.METHODS:
        s = I.token_scores(bert, enc, method, steps=8)
        assert s.shape == (len(enc.ids),) and np.isfinite(s).all()
    with pytest.raises(InputError, match="--method"):
        I.token_scores(bert, enc, "saliency")
    with pytest.raises(InputError, match="--layer"):
        I.token_scores(bert, enc, "attention", layer=5)
    with pytest.raises(InputError, match="--target"):
        I.grad_input(bert, enc, target="nope")


def test_peak_and_motif_hit_rate():
    tracks = [np.zeros(50) for _ in range(4)]
    tracks[0][10:24] = 1  # inside motif at 10
    tracks[1][30:34] = 1  # outside motif at 5 (ends at 19, +3 window)
    tracks[2][20] = 5  # inside motif at 8 +- 3 (ends at 22, window to 25)
    tracks[3][40:45] = 1  # inside motif at 33
    assert I.peak_position(tracks[0]) in range(10, 24)
    np.testing.assert_array_equal(I.motif_hits(tracks, [10, 5, 8, 33], 14), [True, False, True, True])
    assert I.motif_hits(tracks, [10, 5, 8, 33], 14).mean() == 0.75


def test_bedgraph_minus_strand_is_reversed(tmp_path):
    path = tmp_path / "t.bedgraph"
    I.write_bedgraph(path, ("chr2", 100, 103, "-"), np.array([1.0, 2.0, 3.0]), name="x")
    I.write_bedgraph(path, ("chr2", 200, 202, "+"), np.array([4.0, 5.0]), append=True)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    assert lines[1:] == [
        "chr2\t100\t101\t3",
        "chr2\t101\t102\t2",
        "chr2\t102\t103\t1",
        "chr2\t200\t201\t4",
        "chr2\t201\t202\t5",
    ]


def test_plots_written(tmp_path, bert, kmer3):
    enc = kmer3.encode(DNA)
    maps = I.attention_maps(bert, enc)
    tokens = kmer3.tokens(enc.ids)
    I.plot_heatmap(maps, tokens, tmp_path / "h.png")
    I.plot_heatmap(maps, tokens, tmp_path / "grid.png", layer="all")
    I.plot_heatmap(I.attention_rollout(maps), tokens, tmp_path / "r.png")
    I.plot_track(
        DNA, {"a": np.arange(len(DNA)), "b": -np.arange(len(DNA))}, tmp_path / "t.png", highlight=(3, 9)
    )
    for name in ("h", "grid", "r", "t"):
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_explain_writes_everything(tmp_path, bert, kmer3):
    recs = [
        SimpleNamespace(id="seq 1", seq=DNA, interval=("chr1", 10, 10 + len(DNA), "+")),
        SimpleNamespace(id="s2", seq=DNA[::-1] * 3, interval=("chr1", 500, 500 + 3 * len(DNA), "-")),
    ]
    out = tmp_path / "att"
    summary = I.explain(
        bert,
        recs,
        out,
        methods=("attention", "rollout", "grad-input", "integrated-gradients"),
        max_tokens=32,
        steps=8,
    )
    assert summary["n_sequences"] == 2
    second = summary["sequences"][1]
    assert second["n_windows"] > 1  # 84 bases do not fit 32 tokens
    for entry in summary["sequences"]:
        for f in entry["files"].values():
            assert (out / f).stat().st_size > 0
    npz = np.load(out / summary["sequences"][0]["files"]["npz"])
    assert npz["attentions"].shape[:2] == (2, 4) and npz["offsets"].shape == (len(npz["tokens"]), 2)
    np.testing.assert_allclose(npz["attentions"].sum(-1), 1.0, atol=1e-5)
    for method in ("attention", "grad-input"):
        lines = (out / f"tracks.{method}.tsv").read_text().splitlines()
        assert lines[0] == "id\tposition\tbase\tscore"
        assert len(lines) - 1 == len(DNA) + 3 * len(DNA)  # one value per base
        first = lines[1].split("\t")
        assert first[:3] == ["seq 1", "1", DNA[0]]
        bed = (out / f"tracks.{method}.bedgraph").read_text().splitlines()
        assert len(bed) - 1 == len(DNA) + 3 * len(DNA)
    assert json.loads((out / "summary.json").read_text())["sequences"][0]["id"] == "seq 1"
    with pytest.raises(InputError, match="--ids"):
        I.explain(bert, recs, out, ids=["missing"])


def test_explain_without_attention_model(tmp_path, kmer3):
    model = LinearBag(kmer3)
    recs = [SimpleNamespace(id="a", seq=DNA, interval=None)]
    summary = I.explain(model, recs, tmp_path, methods=("grad-input",))
    assert "npz" not in summary["sequences"][0]["files"]
    assert (tmp_path / "tracks.grad-input.tsv").exists()
    with pytest.raises(InputError):
        I.explain(model, recs, tmp_path, methods=("attention",))


def test_sequence_model_protocol(tmp_path, kmer3):
    """The lead's SequenceModel (genoml.models) works with interpret end to end."""
    models = pytest.importorskip("genoml.models")
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=len(kmer3),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=kmer3.pad_id,
    )
    model = models.SequenceModel(
        "hf", BertModel(cfg, add_pooling_layer=False), 2, tokenizer=kmer3, labels=["0", "1"], task="binary"
    )
    model.eval()
    enc = kmer3.encode(DNA)
    np.testing.assert_allclose(I.attention_maps(model, enc).sum(-1), 1.0, atol=1e-5)
    exp = I.explain_sequence(model, DNA, methods=("attention", "integrated-gradients"), steps=16)
    assert exp.tracks["attention"].shape == (len(DNA),) and exp.ig_delta is not None


def test_long_sequence_is_windowed_to_the_models_limit(bert, kmer3):
    """128 positions in the tiny BERT: a 300-base sequence is explained in windows, one value per base."""
    seq = (DNA * 11)[:300]
    exp = I.explain_sequence(bert, seq, methods=("attention", "grad-input"))
    assert I.default_max_tokens(bert) == 128
    assert exp.n_windows > 1 and exp.tracks["grad-input"].shape == (300,)
    assert np.isfinite(exp.tracks["attention"]).all() and (exp.tracks["attention"] > 0).all()
