"""Attention maps, gradient attributions and per-base tracks for any model of the genoml protocol.

A model exposes `tokenizer`, `labels`, `embed(ids (B, L)) -> (B, L, E)`,
`logits_from_embeds(embeds (B, L, E), mask (B, L)) -> (B, C)` and
`attentions(ids, mask) -> tuple[(B, H, L, L), ...]`. Token scores `(T,)` are projected to bases
through the tokenizer's offsets; tracks are `(seq_len,)`, positions 0-based in arrays and 1-based
in the TSV files. `explain` is what `genoml attention` calls.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genoml.data import window_starts
from genoml.errors import GenomlError, InputError
from genoml.models import max_positions
from genoml.outputs import write_atomic

log = logging.getLogger(__name__)

METHODS = ("attention", "rollout", "grad-input", "integrated-gradients")
ATTENTION_METHODS = ("attention", "rollout")
MAX_LABELLED_TOKENS = 64  # heatmaps label every token up to this many
MAX_LETTERED_BASES = 160  # track plots print the sequence under the axis up to this length


# ---------------------------------------------------------------- attention


def _device(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _inputs(model: torch.nn.Module, enc) -> tuple[torch.Tensor, torch.Tensor]:
    """One unpadded sequence -> ids (1, T), mask (1, T) on the model's device."""
    ids = torch.as_tensor([enc.ids], dtype=torch.long, device=_device(model))
    return ids, torch.ones_like(ids)


@torch.no_grad()
def attention_maps(model: torch.nn.Module, enc) -> np.ndarray:
    """Attention probabilities of one encoded sequence: (layers, heads, T, T), rows sum to 1.

    The sequence is run alone, so there is no padding to remove.
    """
    model.eval()
    ids, mask = _inputs(model, enc)
    layers = model.attentions(ids, mask)  # tuple of (1, H, T, T)
    maps = torch.stack([a[0].float() for a in layers]).cpu().numpy()  # (layers, H, T, T)
    bad = np.abs(maps.sum(-1) - 1.0).max()
    if not np.isfinite(bad) or bad > 1e-3:
        raise GenomlError(f"attention rows do not sum to 1 (off by {bad:.3g}); is the model in eval mode?")
    return maps


def attention_rollout(maps: np.ndarray) -> np.ndarray:
    """Abnar & Zuidema (2020) rollout of (layers, heads, T, T) maps -> (T, T), rows sum to 1.

    Each layer's head-mean A becomes 0.5 * A + 0.5 * I (the residual), renormalised; layers
    are multiplied from the first up: R = A_L' ... A_1'.
    """
    n_tokens = maps.shape[-1]
    eye = np.eye(n_tokens)
    rollout = eye
    for layer in maps.astype(np.float64):
        a = 0.5 * layer.mean(0) + 0.5 * eye  # (T, T)
        a /= a.sum(-1, keepdims=True)
        rollout = a @ rollout
    return rollout


def select_maps(maps: np.ndarray, layer: int | str = -1, head: int | str = "mean") -> np.ndarray:
    """(layers, heads, T, T) -> (T, T): one layer or the mean over layers ("mean"/"all"); one head or the mean."""
    n_layers, n_heads = maps.shape[:2]
    if isinstance(layer, str):
        if layer not in ("mean", "all"):
            raise InputError(
                f"--layer: '{layer}' is not a layer; use an index in [-{n_layers}, {n_layers - 1}] or all"
            )
        m = maps.mean(0)
    else:
        if not -n_layers <= layer < n_layers:
            raise InputError(
                f"--layer: {layer} is out of range; the model has {n_layers} layers (use 0..{n_layers - 1} or -1)"
            )
        m = maps[layer]
    if isinstance(head, str):
        if head not in ("mean", "all"):
            raise InputError(
                f"--head: '{head}' is not a head; use an index in [0, {n_heads - 1}], mean or all"
            )
        return m.mean(0)
    if not -n_heads <= head < n_heads:
        raise InputError(
            f"--head: {head} is out of range; the model has {n_heads} heads (use 0..{n_heads - 1})"
        )
    return m[head]


def received_attention(matrix: np.ndarray, special: Sequence[bool], query: str = "mean") -> np.ndarray:
    """(T, T) -> (T,): attention into each token, from the first token ("cls") or mean over non-special queries."""
    if query == "cls":
        return matrix[0].copy()
    rows = ~np.asarray(special, dtype=bool)
    return matrix[rows].mean(0) if rows.any() else matrix.mean(0)


def _query(model: torch.nn.Module, query: str) -> str:
    """ "auto": CLS row when the model pools on CLS, else the mean over the sequence's tokens."""
    if query == "auto":
        return "cls" if getattr(model, "pooling", "mean") == "cls" else "mean"
    if query not in ("cls", "mean"):
        raise InputError(f"query: '{query}' is not supported; use auto, cls or mean")
    return query


# ---------------------------------------------------------------- gradients


def _target_index(model: torch.nn.Module, logits: torch.Tensor, target: int | str | None) -> int:
    """None = the predicted class (argmax; 0 for a single output); a label name or an index otherwise."""
    n_out = logits.shape[-1]
    if target is None:
        return int(logits.argmax(-1).reshape(-1)[0]) if n_out > 1 else 0
    if isinstance(target, str):
        labels = list(getattr(model, "labels", []))
        if target not in labels:
            raise InputError(
                f"--target: '{target}' is not a label of this model; labels are {', '.join(labels)}"
            )
        return labels.index(target)
    if not 0 <= target < n_out:
        raise InputError(f"--target: {target} is out of range; the model has {n_out} outputs")
    return int(target)


def grad_input(model: torch.nn.Module, enc, target: int | str | None = None) -> np.ndarray:
    """Gradient x input on the input embeddings for the target logit, summed over the embedding: (T,)."""
    model.eval()
    ids, mask = _inputs(model, enc)
    embeds = model.embed(ids).detach().float().requires_grad_(True)  # (1, T, E)
    logits = model.logits_from_embeds(embeds, mask)  # (1, C)
    k = _target_index(model, logits.detach(), target)
    (grad,) = torch.autograd.grad(logits[0, k], embeds)
    return (grad * embeds).sum(-1)[0].detach().cpu().numpy()


def _baseline_embeds(
    model: torch.nn.Module, ids: torch.Tensor, special: Sequence[bool], kind: str
) -> torch.Tensor:
    """Baseline (1, T, E): special tokens kept, every other token the pad embedding ("pad") or zero ("zero")."""
    keep = torch.as_tensor(list(special), dtype=torch.bool, device=ids.device)[None]  # (1, T)
    if kind == "pad":
        return model.embed(torch.where(keep, ids, model.tokenizer.pad_id)).detach().float()
    if kind == "zero":
        return model.embed(ids).detach().float() * keep[..., None]
    raise InputError(f"baseline: '{kind}' is not supported; use pad or zero")


def integrated_gradients(
    model: torch.nn.Module,
    enc,
    target: int | str | None = None,
    *,
    steps: int = 32,
    baseline: str = "pad",
    batch_size: int = 16,
) -> tuple[np.ndarray, float]:
    """Integrated gradients (Sundararajan et al. 2017) on input embeddings -> (scores (T,), delta).

    Midpoint Riemann sum over `steps` points from the baseline to the input; `delta` is
    sum(scores) - (logit(x) - logit(baseline)), the completeness error (near 0 for enough steps).
    """
    model.eval()
    ids, mask = _inputs(model, enc)
    x = model.embed(ids).detach().float()  # (1, T, E)
    base = _baseline_embeds(model, ids, enc.special_mask, baseline)
    with torch.no_grad():
        ends = model.logits_from_embeds(torch.cat([x, base]), mask.expand(2, -1))  # (2, C)
    k = _target_index(model, ends[:1], target)
    alphas = (torch.arange(steps, device=x.device, dtype=torch.float32) + 0.5) / steps
    total = torch.zeros_like(x)
    for chunk in alphas.split(batch_size):
        path = (base + chunk[:, None, None] * (x - base)).requires_grad_(True)  # (S, T, E)
        out = model.logits_from_embeds(path, mask.expand(len(chunk), -1))[:, k].sum()
        (grad,) = torch.autograd.grad(out, path)
        total += grad.sum(0, keepdim=True)
    scores = ((x - base) * total / steps).sum(-1)[0]  # (T,)
    delta = float(scores.sum() - (ends[0, k] - ends[1, k]))
    return scores.detach().cpu().numpy(), delta


def token_scores(
    model: torch.nn.Module,
    enc,
    method: str = "attention",
    *,
    layer: int | str = -1,
    head: int | str = "mean",
    query: str = "auto",
    target: int | str | None = None,
    steps: int = 32,
    maps: np.ndarray | None = None,
) -> np.ndarray:
    """One score per token (T,) by `method`.

    attention: attention received by each token in `layer` (an index, or "mean" over layers), mean over
      heads (or one `head`), from the CLS row (`query="cls"`) or averaged over the non-special query
      tokens (`"mean"`); `"auto"` follows the model's pooling.
    rollout: the same read-out of the attention rollout over all layers.
    grad-input / integrated-gradients: signed attributions to the target logit (None = predicted class);
      IG uses a pad-token baseline and `steps` points.
    """
    if method in ATTENTION_METHODS:
        maps = attention_maps(model, enc) if maps is None else maps
        matrix = select_maps(maps, layer, head) if method == "attention" else attention_rollout(maps)
        return received_attention(matrix, enc.special_mask, _query(model, query))
    if method == "grad-input":
        return grad_input(model, enc, target)
    if method == "integrated-gradients":
        return integrated_gradients(model, enc, target, steps=steps)[0]
    raise InputError(f"--method: '{method}' is not a method; use one of {', '.join(METHODS)}")


# ---------------------------------------------------------------- tokens -> bases


def project_to_bases(
    scores: Sequence[float],
    offsets: Sequence[tuple[int, int]],
    seq_len: int,
    *,
    special: Sequence[bool] | None = None,
    mode: str = "mean",
) -> np.ndarray:
    """Token scores (T,) -> per-base track (seq_len,).

    mode "mean" (default, DNABERT): every base gets the mean score of the tokens covering it, so a
    6-mer's score covers its 6 bases and overlapping k-mers average. mode "spread": each token adds
    score / length to its bases (the track sums to the token total, e.g. for IG completeness).
    Special tokens (special mask, or an empty span) are ignored; bases no token covers get 0.
    """
    total = np.zeros(seq_len, dtype=np.float64)
    count = np.zeros(seq_len, dtype=np.float64)
    for i, ((start, end), score) in enumerate(zip(offsets, scores, strict=True)):
        start, end = max(0, int(start)), min(seq_len, int(end))
        if (special is not None and special[i]) or end <= start:
            continue
        if mode == "mean":
            total[start:end] += score
            count[start:end] += 1
        elif mode == "spread":
            total[start:end] += score / (end - start)
        else:
            raise InputError(f"projection mode '{mode}' is not supported; use mean or spread")
    if mode == "mean":
        return np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return total


def smooth(track: np.ndarray, width: int = 5) -> np.ndarray:
    """Centred moving average with `width` bases (edges averaged over the bases that exist)."""
    track = np.asarray(track, dtype=np.float64)
    if width <= 1 or len(track) == 0:
        return track
    kernel = np.ones(width)
    return np.convolve(track, kernel, "same") / np.convolve(np.ones_like(track), kernel, "same")


def peak_position(track: np.ndarray, width: int = 5) -> int:
    """0-based position of the maximum of the smoothed track."""
    return int(np.argmax(smooth(track, width)))


def motif_hits(
    tracks: Sequence[np.ndarray],
    motif_starts: Sequence[int],
    motif_len: int,
    *,
    window: int = 3,
    width: int = 5,
) -> np.ndarray:
    """(N,) bool: the smoothed track's peak lies in [start - window, start + motif_len + window)."""
    hits = []
    for track, start in zip(tracks, motif_starts, strict=True):
        peak = peak_position(track, width)
        hits.append(start - window <= peak < start + motif_len + window)
    return np.asarray(hits, dtype=bool)


# ---------------------------------------------------------------- one sequence, windowed


@dataclass
class Explanation:
    """Scores of one sequence. `tracks[method]` is (len(seq),); maps/tokens/offsets are of its first window."""

    id: str
    seq: str
    logits: np.ndarray  # (C,) mean over windows
    target: int
    tracks: dict[str, np.ndarray] = field(default_factory=dict)
    maps: np.ndarray | None = None  # (layers, heads, T, T)
    tokens: list[str] = field(default_factory=list)
    offsets: np.ndarray | None = None  # (T, 2) in bases of the sequence
    special: list[bool] = field(default_factory=list)
    n_windows: int = 1
    ig_delta: float | None = None  # worst completeness error over windows


def _window_starts(tokenizer, seq: str, max_tokens: int | None, stride: int | None) -> tuple[list[int], int]:
    """Window starts and width in bases (one window of the whole sequence when no limit is known)."""
    if not max_tokens:
        return [0], len(seq)
    width = tokenizer.max_bases(max_tokens)
    return window_starts(len(seq), width, stride or max(1, width // 2)), width


def default_max_tokens(model: torch.nn.Module) -> int | None:
    """The model's own limit: `model.max_tokens`, else the encoder's position table, else None (no limit)."""
    if getattr(model, "max_tokens", None):
        return int(model.max_tokens)
    encoder = getattr(model, "encoder", None)
    if encoder is not None and hasattr(getattr(encoder, "config", None), "max_position_embeddings"):
        return max_positions(encoder)
    return None


@torch.no_grad()
def _logits(model: torch.nn.Module, enc) -> torch.Tensor:
    model.eval()
    ids, mask = _inputs(model, enc)
    return model.logits_from_embeds(model.embed(ids), mask)[0].float()  # (C,)


def explain_sequence(
    model: torch.nn.Module,
    seq: str,
    *,
    id: str = "seq",
    methods: Sequence[str] = ("attention", "grad-input"),
    layer: int | str = -1,
    head: int | str = "mean",
    query: str = "auto",
    target: int | str | None = None,
    max_tokens: int | None = None,
    stride: int | None = None,
    steps: int = 32,
    keep_maps: bool = True,
) -> Explanation:
    """Per-base tracks of `seq` for each method; sequences longer than `max_tokens` (default: the model's
    limit, see `default_max_tokens`) are cut into windows (as predict does; stride half a window) and each
    base's score is the mean over the windows covering it. The target is chosen once from the mean logits."""
    tok = model.tokenizer
    max_tokens = max_tokens or default_max_tokens(model)
    starts, width = _window_starts(tok, seq, max_tokens, stride)
    encs = [tok.encode(seq[s : s + width], max_tokens=max_tokens) for s in starts]
    logits = torch.stack([_logits(model, e) for e in encs]).mean(0)  # (C,)
    k = _target_index(model, logits[None], target)
    exp = Explanation(id=id, seq=seq, logits=logits.cpu().numpy(), target=k, n_windows=len(starts))
    sums = {m: np.zeros(len(seq)) for m in methods}
    counts = np.zeros(len(seq))
    need_maps = keep_maps or any(m in ATTENTION_METHODS for m in methods)
    for w, (start, enc) in enumerate(zip(starts, encs, strict=True)):
        maps = _maybe_maps(model, enc, methods) if need_maps else None
        offsets = np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2)
        sub_len = min(width, len(seq) - start)
        for m in methods:
            if m == "integrated-gradients":
                scores, delta = integrated_gradients(model, enc, k, steps=steps)
                exp.ig_delta = max(abs(delta), exp.ig_delta or 0.0)
            else:
                scores = token_scores(model, enc, m, layer=layer, head=head, query=query, target=k, maps=maps)
            sums[m][start : start + sub_len] += project_to_bases(
                scores, enc.offsets, sub_len, special=enc.special_mask
            )
        counts[start : start + sub_len] += 1
        if w == 0:
            exp.maps = maps if keep_maps else None
            exp.tokens, exp.offsets, exp.special = tok.tokens(enc.ids), offsets, list(enc.special_mask)
    exp.tracks = {m: sums[m] / np.maximum(counts, 1) for m in methods}
    return exp


def _maybe_maps(model: torch.nn.Module, enc, methods: Sequence[str]) -> np.ndarray | None:
    """Attention maps, or None for a model without attention when no attention method was asked for."""
    try:
        return attention_maps(model, enc)
    except InputError:
        if any(m in ATTENTION_METHODS for m in methods):
            raise
        return None


# ---------------------------------------------------------------- writers


def write_npz(
    path: str | Path, maps: np.ndarray, tokens: Sequence[str], offsets: np.ndarray, **extra: Any
) -> None:
    """`attentions` (layers, heads, T, T) float32, `tokens` (T,) str, `offsets` (T, 2) 0-based [start, end), + extras."""
    np.savez_compressed(
        path,
        attentions=np.asarray(maps, dtype=np.float32),
        tokens=np.asarray(list(tokens), dtype=str),
        offsets=np.asarray(offsets, dtype=np.int64).reshape(-1, 2),
        **extra,
    )


def track_rows(id: str, seq: str, track: np.ndarray) -> Iterator[tuple[str, int, str, float]]:
    """(id, position, base, score) with 1-based positions, one row per base."""
    for i, (base, score) in enumerate(zip(seq, track, strict=True)):
        yield id, i + 1, base, float(score)


def write_track_tsv(path: str | Path, rows: Iterable[tuple[str, int, str, float]]) -> None:
    """TSV with header `id position base score`; positions are 1-based (as given by `track_rows`)."""
    lines = ["id\tposition\tbase\tscore"]
    lines += [f"{i}\t{p}\t{b}\t{s:.6g}" for i, p, b, s in rows]
    write_atomic(path, "\n".join(lines) + "\n")


def bedgraph_lines(interval: tuple[str, int, int, str], track: np.ndarray) -> list[str]:
    """One bedGraph line per base (0-based, half-open); a '-' strand record's track is read 3'->5' on the genome."""
    chrom, start, end, strand = interval
    if end - start != len(track):
        raise GenomlError(
            f"bedGraph: interval {chrom}:{start}-{end} has {end - start} bases but the track {len(track)}"
        )
    values = np.asarray(track)[::-1] if strand == "-" else np.asarray(track)
    return [f"{chrom}\t{start + i}\t{start + i + 1}\t{v:.6g}" for i, v in enumerate(values)]


def write_bedgraph(
    path: str | Path,
    interval: tuple[str, int, int, str],
    track: np.ndarray,
    *,
    name: str = "genoml",
    append: bool = False,
) -> None:
    """Write (or append, without a new header) the track of a BED record as bedGraph."""
    lines = bedgraph_lines(interval, track)
    if append:
        with open(path, "a") as f:
            f.write("\n".join(lines) + "\n")
        return
    header = f'track type=bedGraph name="{name}" description="genoml per-base attribution"'
    write_atomic(path, "\n".join([header, *lines]) + "\n")


def _panels(maps_or_matrix: np.ndarray, layer: int | str, head: int | str) -> list[tuple[str, np.ndarray]]:
    m = np.asarray(maps_or_matrix)
    if m.ndim == 2:
        return [("", m)]
    if m.ndim == 3:
        return [(f"{i}", x) for i, x in enumerate(m)]
    layers = range(m.shape[0]) if layer == "all" else [layer]
    heads = range(m.shape[1]) if head == "all" else [head]
    return [(f"layer {lay} head {hd}", select_maps(m, lay, hd)) for lay in layers for hd in heads]


def plot_heatmap(
    maps_or_matrix: np.ndarray,
    tokens: Sequence[str],
    out_png: str | Path,
    *,
    layer: int | str = -1,
    head: int | str = "mean",
    title: str = "",
) -> None:
    """Heatmap PNG of a (T, T) matrix, or of (layers, heads, T, T) maps (one panel per selected layer/head;
    `layer`/`head` = "all" draws a grid). Tokens label the axes when there are at most 64."""
    import matplotlib  # heavy: matplotlib loads in seconds, for plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = _panels(maps_or_matrix, layer, head)
    cols = min(len(panels), 4 if len(panels) > 1 else 1)
    rows = math.ceil(len(panels) / cols)
    n = panels[0][1].shape[0]
    size = 4.0 if n <= 16 else min(10.0, 4 + n / 10)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax, (name, mat) in zip(axes.flat, panels, strict=False):
        im = ax.imshow(mat, cmap="viridis", vmin=0)
        ax.set_title(name, fontsize=9)
        if n <= MAX_LABELLED_TOKENS:
            fs = max(4, 9 - n // 12)
            ax.set_xticks(range(n), list(tokens)[:n], rotation=90, fontsize=fs, family="monospace")
            ax.set_yticks(range(n), list(tokens)[:n], fontsize=fs, family="monospace")
        ax.set_xlabel("key token")
        ax.set_ylabel("query token")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def plot_track(
    seq: str,
    track: np.ndarray | dict[str, np.ndarray],
    out_png: str | Path,
    *,
    title: str = "",
    highlight: tuple[int, int] | None = None,
) -> None:
    """Line plot of one track or one panel per method ({method: track}); the bases are written under the
    axis for sequences up to 160 long; `highlight` = 0-based [start, end) shaded (e.g. a planted motif)."""
    import matplotlib  # heavy: matplotlib loads in seconds, for plots only

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracks = track if isinstance(track, dict) else {"score": track}
    width = min(24.0, max(6.0, len(seq) / 8))
    fig, axes = plt.subplots(
        len(tracks), 1, figsize=(width, 1.8 * len(tracks) + 0.6), sharex=True, squeeze=False
    )
    x = np.arange(len(seq))
    for ax, (name, values) in zip(axes[:, 0], tracks.items(), strict=True):
        ax.plot(x, values, lw=1.2)
        ax.axhline(0, color="0.7", lw=0.6)
        if highlight is not None:
            ax.axvspan(highlight[0] - 0.5, highlight[1] - 0.5, color="orange", alpha=0.25)
        ax.set_ylabel(name, fontsize=8)
    bottom = axes[-1, 0]
    if len(seq) <= MAX_LETTERED_BASES:  # letters as texts: much faster to draw than one tick per base
        bottom.tick_params(axis="x", labelbottom=False)
        under = bottom.get_xaxis_transform()
        for i, base in enumerate(seq):
            bottom.text(
                i, -0.04, base, transform=under, ha="center", va="top", fontsize=6, family="monospace"
            )
    else:
        bottom.set_xlabel("position (0-based)")
    axes[0, 0].set_title(title, fontsize=10)
    bottom.set_xlim(-0.5, len(seq) - 0.5)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- the command


def _safe_name(id: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", id)[:80] or "seq"
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base}_{i}"
    used.add(name)
    return name


def _scores(model: torch.nn.Module, logits: np.ndarray) -> list[float]:
    t = torch.as_tensor(logits, dtype=torch.float32)
    task = getattr(model, "task", "multiclass")
    if task == "regression":
        return t.tolist()
    return (t.sigmoid() if task == "multilabel" else t.softmax(-1)).tolist()


def explain(
    model: torch.nn.Module,
    records: Iterable,
    out_dir: str | Path,
    *,
    methods: Sequence[str] = ("attention", "grad-input"),
    layer: int | str = -1,
    head: int | str = "mean",
    ids: Sequence[str] | None = None,
    query: str = "auto",
    target: int | str | None = None,
    max_tokens: int | None = None,
    stride: int | None = None,
    steps: int = 32,
    max_plots: int = 50,
) -> dict[str, Any]:
    """Explain `records` (genoml.io.Record-like: id, seq, interval) and write into `out_dir`:

    - `<id>.attention.npz` (all layers/heads, tokens, offsets) and `<id>.heatmap.png` (chosen layer/head),
      `<id>.track.png` (one panel per method) for the first `max_plots` sequences;
    - `tracks.<method>.tsv` (id, 1-based position, base, score) for every sequence, and
      `tracks.<method>.bedgraph` when the records carry BED intervals;
    - `summary.json` (returned): settings, per sequence its prediction, target, peaks and files.
    """
    for m in methods:
        if m not in METHODS:
            raise InputError(f"--method: '{m}' is not a method; use one of {', '.join(METHODS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(ids) if ids else None
    used: set[str] = set()
    rows: dict[str, list] = {m: [] for m in methods}
    beds: dict[str, list] = {m: [] for m in methods}
    entries = []
    labels = list(getattr(model, "labels", []))
    for rec in records:
        if wanted is not None and rec.id not in wanted:
            continue
        plot = len(entries) < max_plots
        exp = explain_sequence(
            model,
            rec.seq,
            id=rec.id,
            methods=methods,
            layer=layer,
            head=head,
            query=query,
            target=target,
            max_tokens=max_tokens,
            stride=stride,
            steps=steps,
            keep_maps=plot,
        )
        entries.append(
            _write_one(exp, rec, out, _safe_name(rec.id, used) if plot else None, model, labels, layer, head)
        )
        for m in methods:
            rows[m].extend(track_rows(rec.id, rec.seq, exp.tracks[m]))
            if getattr(rec, "interval", None):
                beds[m].append((rec.interval, exp.tracks[m]))
    if wanted is not None:
        missing = sorted(wanted - {e["id"] for e in entries})
        if missing:
            raise InputError(f"--ids: {len(missing)} id(s) not found in the input: {', '.join(missing[:5])}")
    files = _write_tracks(out, methods, rows, beds)
    summary = {
        "methods": list(methods),
        "layer": layer,
        "head": head,
        "query": _query(model, query),
        "target": "predicted class" if target is None else target,
        "positions": "1-based in TSV, 0-based in npz offsets",
        "projection": "mean of the tokens covering each base (DNABERT)",
        "n_sequences": len(entries),
        "files": files,
        "sequences": entries,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    return summary


def _write_one(
    exp: Explanation, rec, out: Path, name: str | None, model, labels: list[str], layer, head
) -> dict:
    target_name = labels[exp.target] if exp.target < len(labels) else str(exp.target)
    entry: dict[str, Any] = {
        "id": exp.id,
        "length": len(exp.seq),
        "n_windows": exp.n_windows,
        "target": target_name,
        "scores": dict(
            zip(labels or map(str, range(len(exp.logits))), _scores(model, exp.logits), strict=False)
        ),
        "peaks": {m: peak_position(t) + 1 for m, t in exp.tracks.items()},
        "files": {},
    }
    if exp.ig_delta is not None:
        entry["ig_completeness_error"] = exp.ig_delta
    if name is None:
        return entry
    if exp.maps is not None:
        write_npz(out / f"{name}.attention.npz", exp.maps, exp.tokens, exp.offsets)
        plot_heatmap(
            exp.maps,
            exp.tokens,
            out / f"{name}.heatmap.png",
            layer=layer,
            head=head,
            title=f"{exp.id}: attention (layer {layer}, head {head})",
        )
        entry["files"]["npz"] = f"{name}.attention.npz"
        entry["files"]["heatmap"] = f"{name}.heatmap.png"
    plot_track(
        exp.seq, exp.tracks, out / f"{name}.track.png", title=f"{exp.id}: per-base scores ({target_name})"
    )
    entry["files"]["track_plot"] = f"{name}.track.png"
    return entry


def _write_tracks(out: Path, methods: Sequence[str], rows: dict, beds: dict) -> dict[str, Any]:
    files: dict[str, Any] = {"tracks": {}, "bedgraph": {}}
    for m in methods:
        write_track_tsv(out / f"tracks.{m}.tsv", rows[m])
        files["tracks"][m] = f"tracks.{m}.tsv"
        if beds[m]:
            path = out / f"tracks.{m}.bedgraph"
            (interval, track), rest = beds[m][0], beds[m][1:]
            write_bedgraph(path, interval, track, name=f"genoml {m}")
            for interval, track in rest:
                write_bedgraph(path, interval, track, append=True)
            files["bedgraph"][m] = path.name
    return files


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
