"""Motif discovery from per-base attribution tracks (DNABERT's attention-motif analysis, made robust).

Takes positive sequences with their tracks `(len,)` and negative sequences; returns `Motif`s with a
position frequency matrix `(w, 4)` (counts, ACGT), enrichment p-value and BH q-value. Steps: high-scoring
regions -> windows -> candidate k-mers -> hypergeometric test (positives vs negatives, whole sequences,
either strand) -> BH -> cluster k-mers by shifted alignment -> align instances -> PFM, logo.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import hypergeom

from genoml.alphabet import reverse_complement
from genoml.errors import InputError
from genoml.interpret import smooth

log = logging.getLogger(__name__)

BASES = "ACGT"


@dataclass
class Motif:
    """An enriched motif. `pfm` holds counts (w, 4) in ACGT order over `n_hits` aligned instances."""

    consensus: str
    pfm: np.ndarray
    n_hits: int  # positive sequences with an instance inside a high-scoring window
    pvalue: float  # hypergeometric: positives vs negatives containing any member k-mer (either strand)
    qvalue: float  # Benjamini-Hochberg over the reported clusters
    kmers: list[str] = field(default_factory=list)
    n_pos_with: int = 0
    n_neg_with: int = 0

    def probabilities(self) -> np.ndarray:
        """(w, 4) position probability matrix (rows sum to 1)."""
        return self.pfm / np.maximum(self.pfm.sum(1, keepdims=True), 1e-12)

    def to_dict(self) -> dict:
        return {
            "consensus": self.consensus,
            "n_hits": self.n_hits,
            "pvalue": self.pvalue,
            "qvalue": self.qvalue,
            "n_pos_with": self.n_pos_with,
            "n_neg_with": self.n_neg_with,
            "kmers": self.kmers,
            "pfm": self.pfm.tolist(),
        }


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """BH-adjusted q-values, same order as the input."""
    p = np.asarray(pvalues, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def enrichment_pvalue(pos_with: np.ndarray, n_pos: int, neg_with: np.ndarray, n_neg: int) -> np.ndarray:
    """One-sided hypergeometric (= Fisher exact, greater) p of seeing >= pos_with positives among the carriers."""
    pos_with, neg_with = np.asarray(pos_with), np.asarray(neg_with)
    return hypergeom.sf(pos_with - 1, n_pos + n_neg, pos_with + neg_with, n_pos)


# ---------------------------------------------------------------- windows and candidates


def high_regions(
    track: np.ndarray, *, z: float = 1.0, min_len: int = 5, max_regions: int = 2
) -> list[tuple[int, int]]:
    """Contiguous [start, end) runs where the 3-base smoothed track exceeds mean + z * std, at least
    `min_len` long; the `max_regions` with the largest summed score, best first."""
    s = smooth(np.asarray(track, dtype=np.float64), 3)
    if len(s) == 0 or not np.isfinite(s).all() or s.std() == 0:
        return []
    above = np.concatenate([[False], s > s.mean() + z * s.std(), [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_len]
    runs.sort(key=lambda r: -s[r[0] : r[1]].sum())
    return runs[:max_regions]


def peak_windows(seq: str, track: np.ndarray, *, window: int = 10, **region_kw) -> list[tuple[int, int]]:
    """[start, end) windows of `window` bases centred on the peak of each high-scoring region."""
    s = smooth(np.asarray(track, dtype=np.float64), 3)
    out = []
    for a, b in high_regions(track, **region_kw):
        peak = a + int(np.argmax(s[a:b]))
        start = min(max(0, peak - window // 2), max(0, len(seq) - window))
        out.append((start, min(len(seq), start + window)))
    return out


def _canonical(kmer: str) -> str:
    return min(kmer, reverse_complement(kmer))


def _kmers(seq: str, k: int) -> set[str]:
    return {_canonical(seq[i : i + k]) for i in range(len(seq) - k + 1) if set(seq[i : i + k]) <= set(BASES)}


# ---------------------------------------------------------------- clustering


def _mismatches(a: str, b: str, shift: int) -> tuple[int, int]:
    """Overlap length and mismatches of b placed at offset `shift` relative to a."""
    lo, hi = max(0, shift), min(len(a), shift + len(b))
    pairs = [(a[i], b[i - shift]) for i in range(lo, hi)]
    return len(pairs), sum(x != y for x, y in pairs)


def _align(member: str, kmer: str, max_shift: int, max_mismatch: int) -> tuple[str, int] | None:
    """`kmer` (or its reverse complement) placed against `member`: (oriented k-mer, shift) or None.
    In place it may differ by <= max_mismatch; shifted by up to max_shift, the overlap must be exact."""
    for cand in (kmer, reverse_complement(kmer)):
        for shift in sorted(range(-max_shift, max_shift + 1), key=abs):
            _, mm = _mismatches(member, cand, shift)
            if mm <= (max_mismatch if shift == 0 else 0):
                return cand, shift
    return None


def cluster_kmers(
    kmers: Sequence[str], *, max_shift: int = 2, max_mismatch: int = 1
) -> list[list[tuple[str, int]]]:
    """Single-linkage clusters of k-mers (given in priority order) linked by `_align`; each cluster is a list
    of (k-mer in the orientation of its first member, offset relative to it), in input order."""
    placed: dict[int, tuple[int, str, int]] = {}  # index -> (cluster, oriented k-mer, offset)
    n_clusters = 0
    for seed in range(len(kmers)):
        if seed in placed:
            continue
        placed[seed] = (n_clusters, kmers[seed], 0)
        frontier = [seed]
        while frontier:
            i = frontier.pop()
            _, oriented, offset = placed[i]
            for j in range(len(kmers)):
                if j in placed:
                    continue
                hit = _align(oriented, kmers[j], max_shift, max_mismatch)
                if hit is not None:
                    placed[j] = (n_clusters, hit[0], offset + hit[1])
                    frontier.append(j)
        n_clusters += 1
    clusters: list[list[tuple[str, int]]] = [[] for _ in range(n_clusters)]
    for i in sorted(placed):
        c, oriented, offset = placed[i]
        clusters[c].append((oriented, offset))
    return clusters


# ---------------------------------------------------------------- instances and PFM


def _instance(
    seq: str, windows: list[tuple[int, int]], members: list[tuple[str, int]], span: tuple[int, int]
):
    """The cluster-aligned segment around the first member occurrence starting in a window, or None."""
    lo, hi = span
    for a, b in windows:
        for kmer, offset in members:
            for cand, forward in ((kmer, True), (reverse_complement(kmer), False)):
                pos = seq.find(cand, max(0, a - len(kmer) + 1), b + len(kmer) - 1)
                if pos < 0:
                    continue
                if forward:
                    start = pos - (offset - lo)
                    return _segment(seq, start, hi - lo)
                start = pos + len(kmer) + (offset - lo) - (hi - lo)
                return reverse_complement(_segment(seq, start, hi - lo))
    return None


def _segment(seq: str, start: int, width: int) -> str:
    left = "N" * max(0, -start)
    body = seq[max(0, start) : start + width]
    return (left + body).ljust(width, "N")


def pfm_from_instances(instances: Sequence[str]) -> np.ndarray:
    """(w, 4) counts in ACGT order; N and other letters count nowhere."""
    width = len(instances[0])
    counts = np.zeros((width, 4))
    for inst in instances:
        for i, base in enumerate(inst):
            j = BASES.find(base)
            if j >= 0:
                counts[i, j] += 1
    return counts


def information(pfm: np.ndarray) -> np.ndarray:
    """(w,) information content in bits of each column (no small-sample correction)."""
    p = pfm / np.maximum(pfm.sum(1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    return 2.0 - h


def trim(pfm: np.ndarray, min_bits: float = 0.5, min_coverage: float = 0.5) -> tuple[int, int]:
    """[start, end) of the columns kept after trimming uninformative or poorly covered edges."""
    cov = pfm.sum(1) / max(pfm.sum(1).max(), 1)
    good = (information(pfm) >= min_bits) & (cov >= min_coverage)
    idx = np.flatnonzero(good)
    return (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)


def consensus_of(pfm: np.ndarray, min_bits: float = 0.5) -> str:
    """Most frequent base per column; N where the column carries < min_bits."""
    bits = information(pfm)
    return "".join(
        BASES[int(np.argmax(row))] if b >= min_bits else "N" for row, b in zip(pfm, bits, strict=True)
    )


# ---------------------------------------------------------------- the pipeline


def find_motifs(
    pos_seqs: Sequence[str],
    pos_tracks: Sequence[np.ndarray],
    neg_seqs: Sequence[str],
    *,
    window: int = 10,
    k: int = 6,
    z: float = 1.0,
    min_region: int = 5,
    max_regions: int = 2,
    min_hits: int | None = None,
    alpha: float = 0.05,
    max_shift: int = 2,
    max_mismatch: int = 1,
    max_motifs: int = 10,
) -> list[Motif]:
    """Motifs enriched in the high-scoring windows of positives, best first (q < alpha only).

    Candidates are the k-mers (either strand) in >= `min_hits` positives' windows (default
    max(3, 5% of positives)); each is tested for presence anywhere in positives vs negatives
    (one-sided hypergeometric), BH-corrected, and the significant ones clustered. A cluster's PFM
    aligns one instance per positive (inside its windows); its p-value tests positives vs
    negatives carrying any member; q-values are BH over clusters.
    """
    if len(pos_seqs) != len(pos_tracks):
        raise InputError(f"find_motifs: {len(pos_seqs)} positive sequences but {len(pos_tracks)} tracks")
    if not pos_seqs or not neg_seqs:
        raise InputError(
            "find_motifs: needs positive and negative sequences (a class with no sequences was given)"
        )
    for seq, track in zip(pos_seqs, pos_tracks, strict=True):
        if len(seq) != len(track):
            raise InputError(
                f"find_motifs: a track has {len(track)} values for a sequence of {len(seq)} bases"
            )
    windows = [
        peak_windows(s, t, window=window, z=z, min_len=min_region, max_regions=max_regions)
        for s, t in zip(pos_seqs, pos_tracks, strict=True)
    ]
    in_windows = Counter(
        km
        for s, ws in zip(pos_seqs, windows, strict=True)
        for km in set().union(*[_kmers(s[a:b], k) for a, b in ws])
    )
    floor = min_hits if min_hits is not None else max(3, math.ceil(0.05 * len(pos_seqs)))
    candidates = sorted(km for km, n in in_windows.items() if n >= floor)
    if not candidates:
        return []
    pos_sets, neg_sets = [_kmers(s, k) for s in pos_seqs], [_kmers(s, k) for s in neg_seqs]
    pos_with = np.array([sum(km in s for s in pos_sets) for km in candidates])
    neg_with = np.array([sum(km in s for s in neg_sets) for km in candidates])
    p = enrichment_pvalue(pos_with, len(pos_seqs), neg_with, len(neg_seqs))
    q = benjamini_hochberg(p)
    significant = [candidates[i] for i in np.argsort(p, kind="stable") if q[i] < alpha]
    log.info(
        "motifs: %d candidate %d-mers, %d significant (q < %g)", len(candidates), k, len(significant), alpha
    )
    clusters = cluster_kmers(significant, max_shift=max_shift, max_mismatch=max_mismatch)
    motifs = [m for c in clusters if (m := _motif(c, pos_seqs, windows, pos_sets, neg_sets)) is not None]
    if not motifs:
        return []
    for m, qv in zip(motifs, benjamini_hochberg([m.pvalue for m in motifs]), strict=True):
        m.qvalue = float(qv)
    motifs = sorted((m for m in motifs if m.qvalue < alpha), key=lambda m: (m.pvalue, -m.n_hits))
    return motifs[:max_motifs]


def _motif(members, pos_seqs, windows, pos_sets, neg_sets) -> Motif | None:
    """Seed a PFM from member occurrences, trim it, re-align the instances with it, and test the cluster."""
    k = len(members[0][0])
    span = (min(o for _, o in members), max(o for _, o in members) + k)
    instances = [
        inst
        for s, ws in zip(pos_seqs, windows, strict=True)
        if (inst := _instance(s, ws, members, span)) is not None
    ]
    if len(instances) < 2:
        return None
    pfm = pfm_from_instances(instances)
    for _ in range(2):
        a, b = trim(pfm)
        if b - a < 4:
            return None
        instances, forward = realign(pfm[a:b], pos_seqs, windows, flank=2)
        if len(instances) < 2:
            return None
        pfm = pfm_from_instances(instances)
    if sum(forward) < len(forward) / 2:  # report the motif as most sites read on the given strand
        pfm = pfm[::-1, ::-1].copy()
    a, b = trim(pfm)
    if b - a < 4:
        return None
    canon = {_canonical(km) for km, _ in members}
    n_pos = sum(bool(canon & s) for s in pos_sets)
    n_neg = sum(bool(canon & s) for s in neg_sets)
    p = float(enrichment_pvalue(np.array([n_pos]), len(pos_sets), np.array([n_neg]), len(neg_sets))[0])
    return Motif(
        consensus_of(pfm[a:b]), pfm[a:b], len(instances), p, 1.0, [km for km, _ in members], n_pos, n_neg
    )


def _one_hot(seq: str) -> np.ndarray:
    codes = np.frombuffer(seq.encode(), dtype=np.uint8)
    return np.stack([codes == ord(b) for b in BASES], axis=1).astype(np.float64)  # (L, 4)


def realign(
    pfm: np.ndarray,
    seqs: Sequence[str],
    windows: Sequence[list[tuple[int, int]]],
    *,
    min_relative: float = 0.8,
    flank: int = 0,
) -> tuple[list[str], list[bool]]:
    """Best site of the PFM's log-odds (uniform background, 0.5 pseudocount) overlapping each sequence's
    windows, either strand; kept when its score is >= min_relative of the way from the worst to the best
    possible score. Returns the sites in motif orientation, with `flank` more bases each side (N off the end),
    and for each whether it was read on the sequence's own strand."""
    width = len(pfm)
    pwm = np.log2((pfm + 0.5) / (pfm.sum(1, keepdims=True) + 2.0) / 0.25)  # (w, 4)
    lo_score, hi_score = pwm.min(1).sum(), pwm.max(1).sum()
    cut = lo_score + min_relative * (hi_score - lo_score)
    sites, forward = [], []
    for seq, ws in zip(seqs, windows, strict=True):
        if len(seq) < width or not ws:
            continue
        views = np.lib.stride_tricks.sliding_window_view(_one_hot(seq), (width, 4))[:, 0]  # (L-w+1, w, 4)
        fwd, rev = (views * pwm).sum((1, 2)), (views * pwm[::-1, ::-1]).sum((1, 2))
        ok = np.zeros(len(fwd), dtype=bool)
        for a, b in ws:
            ok[max(0, a - width + 1) : b] = True
        best_f, best_r = np.where(ok, fwd, -np.inf), np.where(ok, rev, -np.inf)
        i, j = int(best_f.argmax()), int(best_r.argmax())
        if max(best_f[i], best_r[j]) < cut:
            continue
        forward.append(bool(best_f[i] >= best_r[j]))
        if forward[-1]:
            sites.append(_segment(seq, i - flank, width + 2 * flank))
        else:
            sites.append(reverse_complement(_segment(seq, j - flank, width + 2 * flank)))
    return sites, forward


# ---------------------------------------------------------------- matching and output


def consensus_match(
    motif_consensus: str,
    planted_consensus: str,
    *,
    min_overlap: int = 8,
    max_mismatch_frac: float = 0.2,
    both_strands: bool = True,
) -> bool:
    """True when the motif aligns to the planted consensus (on either strand unless both_strands=False) at
    some offset, with at least `min_overlap` informative (non-N) overlapping positions (or all of the
    shorter one) and at most `max_mismatch_frac` of them mismatched."""
    a = planted_consensus.upper()
    orientations = [motif_consensus.upper()]
    if both_strands:
        orientations.append(reverse_complement(orientations[0]))
    for b in orientations:
        for shift in range(-len(b) + 1, len(a)):
            lo, hi = max(0, shift), min(len(a), shift + len(b))
            pairs = [(a[i], b[i - shift]) for i in range(lo, hi) if a[i] in BASES and b[i - shift] in BASES]
            need = min(min_overlap, sum(c in BASES for c in a), sum(c in BASES for c in b))
            if len(pairs) >= need and sum(x != y for x, y in pairs) <= max_mismatch_frac * len(pairs):
                return True
    return False


def plot_logo(motif: Motif, out_png: str | Path, *, title: str | None = None) -> None:
    """Information-content sequence logo (logomaker) with the p/q-values in the title."""
    # heavy: matplotlib, logomaker and pandas load in seconds, for plots only
    import matplotlib  # heavy: matplotlib and logomaker load in seconds, for logos only

    matplotlib.use("Agg")
    import logomaker
    import matplotlib.pyplot as plt
    import pandas as pd

    counts = pd.DataFrame(motif.pfm, columns=list(BASES))
    info = logomaker.transform_matrix(counts, from_type="counts", to_type="information")
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(counts) + 1), 2.4))
    logomaker.Logo(info, ax=ax, color_scheme="classic")
    ax.set_ylim(0, 2)
    ax.set_ylabel("bits")
    ax.set_title(
        title or f"{motif.consensus}  p={motif.pvalue:.2g}  q={motif.qvalue:.2g}  n={motif.n_hits}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def write_meme(path: str | Path, motifs: Sequence[Motif]) -> None:
    """Minimal MEME text format (probabilities), for Tomtom and other MEME-suite tools."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", ""]
    for i, m in enumerate(motifs, 1):
        lines += [
            f"MOTIF motif{i} {m.consensus}",
            "",
            f"letter-probability matrix: alength= 4 w= {len(m.pfm)} nsites= {m.n_hits} E= {m.pvalue:.3g}",
        ]
        lines += ["  ".join(f"{v:.4f}" for v in row) for row in m.probabilities()]
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n")


def write_motifs(motifs: Sequence[Motif], out_dir: str | Path) -> dict:
    """`motif<i>.logo.png`, `motifs.json` and `motifs.meme` in out_dir; returns the JSON written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, m in enumerate(motifs, 1):
        plot_logo(m, out / f"motif{i}.logo.png")
        entries.append({**m.to_dict(), "logo": f"motif{i}.logo.png"})
    summary = {"n_motifs": len(motifs), "pfm": "counts (w, 4) in ACGT order", "motifs": entries}
    (out / "motifs.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_meme(out / "motifs.meme", motifs)
    return summary
