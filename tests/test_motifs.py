"""genoml.motifs: enrichment statistics, clustering, motif discovery on synthetic tracks, logos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import fisher_exact

from genoml import motifs as M

CTCF = "CCACCAGGGGGCGC"


def background(rng, n=100):
    return "".join(rng.choice(list("ACGT"), size=n, p=[0.275, 0.225, 0.225, 0.275]))


def sample_site(rng, consensus=CTCF, fidelity=0.85):
    out = []
    for b in consensus:
        out.append(b if rng.random() < fidelity else rng.choice([c for c in "ACGT" if c != b]))
    return "".join(out)


def planted(rng, n, *, either_strand=False):
    """n positives with one sampled site and a track that is high on it; n plain negatives."""
    pos, tracks, starts, neg = [], [], [], []
    for _ in range(n):
        seq, start = background(rng), int(rng.integers(0, 100 - len(CTCF) + 1))
        site = sample_site(rng)
        if either_strand and rng.random() < 0.5:
            site = M.reverse_complement(site)
        pos.append(seq[:start] + site + seq[start + len(CTCF) :])
        track = rng.normal(0, 0.3, 100)
        track[start : start + len(CTCF)] += 2.0
        tracks.append(track)
        starts.append(start)
        neg.append(background(rng))
    return pos, tracks, starts, neg


def test_bh_matches_hand_computation():
    q = M.benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    # sorted p 0.01, 0.03, 0.04, 0.5 -> p*n/rank 0.04, 0.06, 0.0533, 0.5 -> step-up minimum
    np.testing.assert_allclose(q, [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_hypergeometric_equals_one_sided_fisher():
    p = M.enrichment_pvalue(np.array([30]), 50, np.array([8]), 60)[0]
    assert p == pytest.approx(fisher_exact([[30, 20], [8, 52]], alternative="greater")[1], rel=1e-9)


def test_high_regions_and_windows():
    track = np.zeros(60)
    track[20:28] = 3.0
    track[40:42] = 5.0  # a higher but shorter bump: ranked below the 8-base run by summed score
    regions = M.high_regions(track, min_len=5)
    assert regions and regions[0][0] <= 20 and regions[0][1] >= 27
    windows = M.peak_windows("A" * 60, track, window=10, min_len=5)
    assert windows[0][1] - windows[0][0] == 10 and windows[0][0] <= 24 < windows[0][1]


def test_cluster_kmers_links_shifts_and_reverse_complements():
    clusters = M.cluster_kmers(["CCACCA", "CACCAG", M.reverse_complement("ACCAGG"), "TTTTAT"])
    assert len(clusters) == 2
    members = dict(clusters[0])
    assert members == {"CCACCA": 0, "CACCAG": 1, "ACCAGG": 2}


def test_consensus_match():
    assert M.consensus_match(CTCF, CTCF)
    assert M.consensus_match("CAGGGGGCGC", CTCF)  # partial, offset
    assert M.consensus_match(M.reverse_complement("CCACCAGGGG"), CTCF)  # other strand
    assert not M.consensus_match(M.reverse_complement("CCACCAGGGG"), CTCF, both_strands=False)
    assert M.consensus_match("NNCCACCAGGTGGCG", CTCF)  # N wildcards, one mismatch in 13
    assert not M.consensus_match("GATAAGATAA", CTCF)
    assert not M.consensus_match("CACGTG", CTCF)  # too short an overlap to claim a match


@pytest.mark.parametrize("either_strand", [False, True])
def test_find_motifs_recovers_planted_consensus(tmp_path, either_strand):
    rng = np.random.default_rng(3)
    pos, tracks, _, neg = planted(rng, 80, either_strand=either_strand)
    motifs = M.find_motifs(pos, tracks, neg)
    assert motifs, "no motif found"
    top = motifs[0]
    assert M.consensus_match(top.consensus, CTCF), top.consensus
    if not either_strand:  # reported in the orientation the sites were planted in
        assert M.consensus_match(top.consensus, CTCF, both_strands=False), top.consensus
    assert top.qvalue < 0.05 and top.n_hits >= 40
    assert top.pfm.shape == (len(top.consensus), 4)
    summary = M.write_motifs(motifs, tmp_path)
    logo = (tmp_path / summary["motifs"][0]["logo"]).read_bytes()
    assert logo[:4] == b"\x89PNG" and len(logo) > 2000
    assert json.loads((tmp_path / "motifs.json").read_text())["motifs"][0]["consensus"] == top.consensus
    assert "letter-probability matrix" in (tmp_path / "motifs.meme").read_text()


def test_no_motif_without_signal():
    rng = np.random.default_rng(4)
    pos = [background(rng) for _ in range(80)]
    neg = [background(rng) for _ in range(80)]
    assert M.find_motifs(pos, [rng.normal(size=100) for _ in pos], neg) == []


def test_motif_in_positives_but_tracks_elsewhere_is_not_reported():
    """Windows come from the tracks: when attributions ignore the site, discovery must not find it."""
    rng = np.random.default_rng(5)
    pos, _, starts, neg = planted(rng, 80)
    tracks = []
    for s in starts:
        t = rng.normal(0, 0.3, 100)
        far = 80 if s < 40 else 5
        t[far : far + 10] += 2.0
        tracks.append(t)
    assert not any(M.consensus_match(m.consensus, CTCF) for m in M.find_motifs(pos, tracks, neg))


def test_find_motifs_checks_inputs():
    with pytest.raises(M.InputError, match="tracks"):
        M.find_motifs(["ACGT"], [], ["ACGT"])
    with pytest.raises(M.InputError, match="values for a sequence"):
        M.find_motifs(["ACGT"], [np.zeros(3)], ["ACGT"])


# ---------------------------------------------------------------- scripts/motif_check.py end to end


class PwmScanner(torch.nn.Module):
    """An 'oracle' classifier over char tokens: logit(pos) = logsumexp over positions of a conv filter.

    With the CTCF log-odds filter it uses exactly the planted site; with a random filter it does not.
    """

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        from genoml.tokenizers import build_tokenizer

        self.tokenizer = build_tokenizer("char")
        self.labels, self.task = ["0", "1"], "binary"
        onehot = torch.zeros(len(self.tokenizer), 4)
        for i, t in enumerate(self.tokenizer.vocab):
            if t in "ACGT" and len(t) == 1:
                onehot[i, "ACGT".index(t)] = 1.0
        self.emb = torch.nn.Embedding.from_pretrained(onehot)
        self.weight = torch.nn.Parameter(weight)  # (w, 4)

    def embed(self, ids):
        return self.emb(ids)

    def logits_from_embeds(self, embeds, mask):
        x = (embeds * mask[..., None]).transpose(1, 2)  # (B, 4, L)
        scores = torch.nn.functional.conv1d(x, self.weight.T[None])[:, 0]  # (B, L - w + 1)
        s = torch.logsumexp(2.0 * scores, -1) / 2.0 - 6.0  # a site scores ~10, the best random 14-mer ~2-4
        return torch.stack([torch.zeros_like(s), s], -1)  # (B, 2)

    def attentions(self, ids, mask):
        raise M.InputError("no attention")


def _motif_check_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "motif_check.py"
    spec = importlib.util.spec_from_file_location("motif_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(n=120):
    rng = np.random.default_rng(7)
    pos, _, starts, neg = planted(rng, n // 2)
    rows = [
        {"id": f"p{i}", "sequence": s, "label": "1", "motif_start": str(st)}
        for i, (s, st) in enumerate(zip(pos, starts))
    ]
    return rows + [{"id": f"n{i}", "sequence": s, "label": "0", "motif_start": ""} for i, s in enumerate(neg)]


def test_motif_check_passes_for_a_model_that_uses_the_site(tmp_path):
    mc = _motif_check_module()
    logodds = torch.full((len(CTCF), 4), -1.0)
    for i, b in enumerate(CTCF):
        logodds[i, "ACGT".index(b)] = 1.0
    res = mc.check(
        PwmScanner(logodds), None, _rows(), ["grad-input", "integrated-gradients"], tmp_path, n_examples=1
    )
    assert res["accuracy"] > 0.9
    for method, r in res["methods"].items():
        assert r["hit_rate"] >= 0.8 and r["motif_found"] and r["pass"], (method, r)
    assert (tmp_path / "grad-input" / "motif1.logo.png").stat().st_size > 0


def test_motif_check_fails_for_a_model_that_ignores_the_site(tmp_path):
    mc = _motif_check_module()
    torch.manual_seed(0)
    res = mc.check(
        PwmScanner(torch.randn(len(CTCF), 4)), None, _rows(), ["grad-input"], tmp_path, n_examples=0
    )
    r = res["methods"]["grad-input"]
    assert not r["pass"] and r["hit_rate"] < 0.5
