"""Train/valid/test splits without leakage, and the leakage table.

`--split-by`:
  random      seeded stratified split (the default); small files get a per-class split that never fails
  region      BED intervals that overlap or lie within `gap` bases of each other (same chromosome) form one
              group; a group is never split between train, valid and test
  chrom       whole chromosomes are held out (every interval of a chromosome lands in the same split)
  similarity  k-mer MinHash clusters (near-identical sequences, reverse complements included for DNA)
              are kept together; works for any input

`leakage()` counts, for a valid/test split against train: exact duplicates, reverse-complement-only
duplicates, near-duplicates (MinHash Jaccard >= NEAR) and intervals overlapping (or within `gap` of) a
training interval.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from genoml.errors import InputError

log = logging.getLogger(__name__)

SPLIT_BY = ("random", "region", "chrom", "similarity")
NEAR = 0.5  # MinHash Jaccard of k-mer sets at or above which two sequences count as near-duplicates
NUM_PERM, BANDS = 64, 16  # 16 bands of 4 rows


# ---------------------------------------------------------------- splitting


def split_indices(
    labels: Sequence[str | None],
    fractions: tuple[float, float],
    seed: int,
    *,
    groups: Sequence[int] | None = None,
    where: str = "train",
) -> tuple[list, list, list]:
    """Indices of (train, valid, test). Without `groups`: stratified by label when possible; with `groups`:
    whole groups are assigned, so members of a group never straddle splits."""
    n = len(labels)
    valid_f, test_f = fractions
    needed = 1 + (valid_f > 0) + (test_f > 0)
    if n < needed:
        raise InputError(
            f"{where}: {n} record(s) are too few to split into train"
            + (", valid" if valid_f else "")
            + (" and test" if test_f else "")
            + f"; give at least {needed} records, or pass --valid/--test files"
        )
    if groups is not None:
        return _group_split(list(groups), fractions, seed, where)
    from genoml.data import stratified_split  # cycle: genoml.data imports this module

    return stratified_split([lab or "" for lab in labels], fractions, seed)  # falls back to small_split


def _targets(n: int, fractions: tuple[float, float]) -> tuple[int, int]:
    valid_f, test_f = fractions
    if n <= 1:
        return 0, 0
    n_test = max(1, round(n * test_f)) if test_f > 0 else 0
    n_valid = max(1, round(n * valid_f)) if valid_f > 0 else 0
    while n - n_test - n_valid < 1:  # keep at least one training record
        if n_valid > 1 or (n_valid and n_valid >= n_test):
            n_valid -= 1
        else:
            n_test -= 1
    return n_valid, n_test


def small_split(labels: list[str], fractions: tuple[float, float], seed: int) -> tuple[list, list, list]:
    """A per-class split for files too small for scikit-learn: every class keeps at least one training
    record when it can, and valid/test get at least one record each when asked for."""
    rng = np.random.default_rng(seed)
    n_valid, n_test = _targets(len(labels), fractions)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        by_class[lab].append(i)
    pools = {c: list(rng.permutation(idx)) for c, idx in sorted(by_class.items())}
    test: list[int] = []
    valid: list[int] = []
    for bucket, want in ((test, n_test), (valid, n_valid)):
        while len(bucket) < want:
            # take from the class with most records left (classes with one left keep it for train if possible)
            c = max(pools, key=lambda k: (len(pools[k]), k))
            if len(pools[c]) <= 1 and any(len(p) > 1 for p in pools.values()):
                c = max((k for k in pools if len(pools[k]) > 1), key=lambda k: len(pools[k]))
            if not pools[c]:
                break
            bucket.append(int(pools[c].pop()))
    train = [int(i) for p in pools.values() for i in p]
    return sorted(train), sorted(valid), sorted(test)


def _group_split(
    groups: list[int], fractions: tuple[float, float], seed: int, where: str
) -> tuple[list, list, list]:
    n = len(groups)
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    names = sorted(members)
    n_groups_needed = 1 + (fractions[0] > 0) + (fractions[1] > 0)
    if len(names) < n_groups_needed:
        raise InputError(
            f"{where}: only {len(names)} independent group(s) of records (overlapping regions, chromosomes or "
            f"similar sequences); a leakage-free split needs at least {n_groups_needed}. Pass --valid/--test files "
            "or use another --split-by"
        )
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_valid, n_test = _targets(n, fractions)
    parts: dict[str, list[int]] = {"test": [], "valid": [], "train": []}
    want = {"test": n_test, "valid": n_valid}
    left = list(order)
    for name in ("test", "valid"):
        while want[name] and len(parts[name]) < want[name] and len(left) > 1:
            g = left.pop(0)
            parts[name].extend(members[g])
    for g in left:
        parts["train"].extend(members[g])
    if not parts["train"]:
        raise InputError(
            f"{where}: no records left for training after keeping groups together; "
            "lower --valid-fraction/--test-fraction or pass --valid/--test"
        )
    return sorted(parts["train"]), sorted(parts["valid"]), sorted(parts["test"])


# ---------------------------------------------------------------- groups


def _union_find(n: int):
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    return find, union


def region_groups(intervals: Sequence[tuple | None], gap: int = 0) -> list[int]:
    """Group ids: intervals on one chromosome that overlap or are within `gap` bases share a group."""
    find, union = _union_find(len(intervals))
    by_chrom: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for i, iv in enumerate(intervals):
        if iv is not None:
            by_chrom[iv[0]].append((int(iv[1]), int(iv[2]), i))
    for items in by_chrom.values():
        items.sort()
        end, first = -(10**18), -1
        for start, stop, i in items:
            if first >= 0 and start < end + gap:
                union(first, i)
            else:
                first = i
            if start >= end + gap:
                end = stop
            else:
                end = max(end, stop)
    return [find(i) for i in range(len(intervals))]


def chrom_groups(intervals: Sequence[tuple | None]) -> list[int]:
    names: dict[str, int] = {}
    return [names.setdefault(iv[0] if iv else f"#{i}", len(names)) for i, iv in enumerate(intervals)]


_CODES = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _CODES[_c] = _i
_PROT = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"ACDEFGHIKLMNPQRSTVWYBZXUO"):
    _PROT[_c] = _i


def kmer_codes(seq: str, dna: bool, k: int | None = None) -> np.ndarray:
    """Integer codes of the k-mers of `seq` (DNA: canonical, i.e. min of a k-mer and its reverse complement;
    k-mers with other letters are skipped)."""
    k = k or (12 if dna else 4)
    raw = np.frombuffer(seq.upper().encode("ascii", "replace"), dtype=np.uint8)
    codes = (_CODES if dna else _PROT)[raw].astype(np.uint64)
    if len(codes) < k:
        return np.zeros(0, dtype=np.uint64)
    bad = codes == 255
    width = np.uint64(2 if dna else 5)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    ok = ~np.lib.stride_tricks.sliding_window_view(bad, k).any(1)
    shifts = (np.arange(k - 1, -1, -1, dtype=np.uint64) * width).astype(np.uint64)
    fwd = (windows[ok] << shifts).sum(1, dtype=np.uint64) if ok.any() else np.zeros(0, dtype=np.uint64)
    if dna and len(fwd):
        rc = ((np.uint64(3) - windows[ok][:, ::-1]) << shifts).sum(1, dtype=np.uint64)
        fwd = np.minimum(fwd, rc)
    return np.unique(fwd)


_RNG = np.random.default_rng(20240607)
_A = _RNG.integers(1, 2**63 - 1, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)
_B = _RNG.integers(0, 2**63 - 1, size=NUM_PERM, dtype=np.uint64)


def minhash(seq: str, dna: bool) -> np.ndarray | None:
    """NUM_PERM-value MinHash signature of the sequence's k-mer set (None: shorter than k)."""
    codes = kmer_codes(seq, dna)
    if not len(codes):
        return None
    with np.errstate(over="ignore"):
        h = codes[None, :] * _A[:, None] + _B[:, None]  # multiply-add hashing modulo 2^64
    return h.min(1)


def _candidates(sigs: list[np.ndarray | None]) -> dict[tuple, list[int]]:
    rows = NUM_PERM // BANDS
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sigs):
        if s is None:
            continue
        for b in range(BANDS):
            buckets[(b, s[b * rows : (b + 1) * rows].tobytes())].append(i)
    return buckets


def similarity_groups(seqs: Sequence[str], dna: bool, threshold: float = NEAR) -> list[int]:
    """Group ids: sequences whose MinHash Jaccard is >= threshold (or identical, or reverse complements)
    are linked, and linked sequences share a group (single linkage)."""
    find, union = _union_find(len(seqs))
    exact: dict[str, int] = {}
    for i, s in enumerate(seqs):
        key = min(s, _revcomp(s)) if dna else s
        if key in exact:
            union(exact[key], i)
        else:
            exact[key] = i
    sigs = [minhash(s, dna) for s in seqs]
    for members in _candidates(sigs).values():
        if len(members) < 2:
            continue
        # every pair of a small bucket (the leakage check looks at all of them too); big buckets
        # (low-complexity sequences) against their first and previous member only
        pairs = (
            ((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
            if len(members) <= 64
            else (
                p
                for k in range(1, len(members))
                for p in ((members[0], members[k]), (members[k - 1], members[k]))
            )
        )
        for a, b in pairs:
            if find(a) != find(b) and float(np.mean(sigs[a] == sigs[b])) >= threshold:
                union(a, b)
    return [find(i) for i in range(len(seqs))]


def _revcomp(s: str) -> str:
    return s.translate(str.maketrans("ACGTNacgtn", "TGCANtgcan"))[::-1]


def groups_for(
    split_by: str, seqs: Sequence[str], intervals: Sequence[tuple | None], dna: bool, gap: int = 0
) -> list[int] | None:
    if split_by == "random":
        return None
    if split_by in ("region", "chrom"):
        if not any(intervals):
            raise InputError(f"--split-by {split_by}: needs BED intervals (--bed with --genome)")
        return region_groups(intervals, gap) if split_by == "region" else chrom_groups(intervals)
    if split_by == "similarity":
        return similarity_groups(seqs, dna)
    raise InputError(f"--split-by: '{split_by}' is not a split; use one of {', '.join(SPLIT_BY)}")


# ---------------------------------------------------------------- leakage


def leakage(
    train_seqs: Sequence[str],
    other_seqs: Sequence[str],
    dna: bool,
    *,
    train_intervals: Sequence[tuple | None] = (),
    other_intervals: Sequence[tuple | None] = (),
    gap: int = 0,
    threshold: float = NEAR,
) -> dict[str, int]:
    """Records of `other` that leak from train: `exact` and `revcomp` duplicates (disjoint), `near`
    (MinHash Jaccard >= threshold, not counted as exact/revcomp) and `overlap` (an interval overlapping or
    within `gap` bases of a training interval)."""
    from genoml.metrics import duplicate_overlap  # heavy: genoml.metrics loads scikit-learn

    counts = dict(duplicate_overlap(train_seqs, other_seqs, dna))
    train_set = {s.upper() for s in train_seqs}
    rest = [
        s for s in other_seqs if s.upper() not in train_set and not (dna and _revcomp(s.upper()) in train_set)
    ]
    counts["near"] = near_duplicates(train_seqs, rest, dna, threshold) if rest else 0
    counts["overlap"] = overlapping(train_intervals, other_intervals, gap)
    return counts


def near_duplicates(
    train_seqs: Sequence[str], other_seqs: Sequence[str], dna: bool, threshold: float = NEAR
) -> int:
    train_sigs = [minhash(s, dna) for s in train_seqs]
    buckets = _candidates(train_sigs)
    rows = NUM_PERM // BANDS
    n = 0
    for s in other_seqs:
        sig = minhash(s, dna)
        if sig is None:
            continue
        seen: set[int] = set()
        hit = False
        for b in range(BANDS):
            for j in buckets.get((b, sig[b * rows : (b + 1) * rows].tobytes()), ()):
                if j in seen:
                    continue
                seen.add(j)
                if float(np.mean(train_sigs[j] == sig)) >= threshold:
                    hit = True
                    break
            if hit:
                break
        n += hit
    return n


def overlapping(train: Sequence[tuple | None], other: Sequence[tuple | None], gap: int = 0) -> int:
    """How many `other` intervals overlap (or lie within `gap` bases of) some training interval."""
    by_chrom: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for iv in train:
        if iv is not None:
            by_chrom[iv[0]].append((int(iv[1]), int(iv[2])))
    if not by_chrom:
        return 0

    index = {}
    for chrom, items in by_chrom.items():
        items.sort()
        starts = [a for a, _ in items]
        ends = np.maximum.accumulate(np.array([b for _, b in items]))
        index[chrom] = (starts, ends)
    n = 0
    for iv in other:
        if iv is None or iv[0] not in index:
            continue
        starts, ends = index[iv[0]]
        k = bisect.bisect_left(starts, int(iv[2]) + gap)  # train intervals starting before our end (+gap)
        if k and ends[k - 1] + gap > int(iv[1]):
            n += 1
    return n


def class_counts(labels: Sequence[str | None]) -> Counter:
    return Counter(lab for lab in labels if lab is not None)
