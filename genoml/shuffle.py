"""Dinucleotide-preserving shuffles and the "real vs shuffled" self-supervised task built on them.

`dinucleotide_shuffle(seq, rng)` is the Altschul–Erickson shuffle (Altschul & Erickson 1985, as in MEME's
fasta-shuffle-letters -kmer 2 and uShuffle): a uniformly random sequence with exactly the same
dinucleotide counts as `seq` (hence the same letter counts, first and last letter). It walks a random
Eulerian path of the sequence's dinucleotide multigraph: for every letter a random "last exit" edge forming
an arborescence into the final letter (Wilson's loop-erased random walk), the other exits in random order.

Dinucleotide-shuffled copies are the standard negatives of TF-binding sets (DNABERT's and GUE's mouse
tasks among them). `real_vs_shuffled(seqs, ...)` turns unlabelled DNA into a labelled task — each real
window (label "real") beside a shuffle of itself (label "shuffled") — so that a trunk can learn, without
labels, what real genomic sequence looks like beyond its dinucleotide content (`genoml multitask --shuffled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np


def dinucleotide_shuffle(seq: str, rng: np.random.Generator) -> str:
    """A random sequence with the same dinucleotide counts as `seq` (case kept as given; any alphabet)."""
    if len(seq) < 3:
        return seq
    exits: dict[str, list[str]] = {}
    for a, b in zip(seq, seq[1:]):
        exits.setdefault(a, []).append(b)
    last = seq[-1]
    # Wilson's algorithm: a random arborescence of "last exits" rooted at the final letter
    in_tree, nxt = {last}, {}
    for v in exits:
        u = v
        while u not in in_tree:
            nxt[u] = int(rng.integers(len(exits[u])))  # an exit edge index of u, overwritten on revisits
            u = exits[u][nxt[u]]
        u = v
        while u not in in_tree:
            in_tree.add(u)
            u = exits[u][nxt[u]]
    order: dict[str, list[str]] = {}
    for v, out in exits.items():
        if v in nxt:
            keep = out[nxt[v]]
            rest = out[: nxt[v]] + out[nxt[v] + 1 :]
            rest = [rest[i] for i in rng.permutation(len(rest))]
            order[v] = rest + [keep]  # the tree edge is used last, so the walk cannot strand a letter
        else:  # the final letter: its exits in any order
            order[v] = [out[i] for i in rng.permutation(len(out))]
    pos = dict.fromkeys(order, 0)
    out_seq = [seq[0]]
    u = seq[0]
    for _ in range(len(seq) - 1):
        b = order[u][pos[u]]
        pos[u] += 1
        out_seq.append(b)
        u = b
    return "".join(out_seq)


def genome_windows(seqs: Iterable[str], width: int, max_n_fraction: float = 0.0) -> Iterator[str]:
    """Non-overlapping `width`-base windows of each sequence (upper-cased), skipping windows with more N
    (or other non-ACGT letters) than `max_n_fraction`; sequences shorter than `width` are yielded whole."""
    for s in seqs:
        s = s.upper()
        if len(s) <= width:
            chunks = [s]
        else:
            chunks = [s[i : i + width] for i in range(0, len(s) - width + 1, width)]
        for c in chunks:
            bad = len(c) - sum(c.count(x) for x in "ACGT")
            if c and bad <= max_n_fraction * len(c):
                yield c


def real_vs_shuffled(seqs: Iterable[str], seed: int) -> list[tuple[str, str]]:
    """Each sequence as (seq, "real") followed by (its dinucleotide shuffle, "shuffled"); a shuffle that
    happens to equal its source is still labelled shuffled (rare beyond ~20 bases). Deterministic in seed."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, str]] = []
    for s in seqs:
        pairs.append((s, "real"))
        pairs.append((dinucleotide_shuffle(s, rng), "shuffled"))
    return pairs
