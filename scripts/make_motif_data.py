#!/usr/bin/env python
"""Make the planted-motif task in data/motif/ (and the FASTA example in data/examples/), deterministically.

Positives: 100 bp iid background (GC 0.45) with one CTCF core site sampled from a simple PWM around
the JASPAR MA0139.1 core consensus CCACCAGGGGGCGC, planted on the forward strand at a uniform random
start. Negatives: the same background with a composition-matched decoy (the sampled site, shuffled)
and no site within 4 mismatches of the consensus on either strand. Only stdlib + numpy.

    python scripts/make_motif_data.py [--seed 0] [--out data]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

BASES = "ACGT"
# JASPAR MA0139.1 (CTCF) consensus is TGGCCACCAGGGGGCGCTA; its core, positions 4-17, is planted.
JASPAR_CONSENSUS = "TGGCCACCAGGGGGCGCTA"
CONSENSUS = "CCACCAGGGGGCGC"
FIDELITY = 0.85  # PWM: the consensus base with p = 0.85, each other base 0.05
MAX_SITE_MISMATCHES = 3  # planted sites are at most 3 mismatches from the consensus
MIN_NEG_MISMATCHES = 5  # no 14-mer anywhere else (either strand) is closer than 5 mismatches
SEQ_LEN = 100
GC = 0.45
SPLITS = (("train", 2000), ("valid", 300), ("test", 300))
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def pwm(consensus: str = CONSENSUS, fidelity: float = FIDELITY) -> np.ndarray:
    """(w, 4) probabilities in ACGT order."""
    other = (1.0 - fidelity) / 3
    m = np.full((len(consensus), 4), other)
    for i, b in enumerate(consensus):
        m[i, BASES.index(b)] = fidelity
    return m


def background(rng: np.random.Generator, n: int) -> str:
    p = [(1 - GC) / 2, GC / 2, GC / 2, (1 - GC) / 2]
    return "".join(rng.choice(list(BASES), size=n, p=p))


def sample_site(rng: np.random.Generator, probs: np.ndarray) -> str:
    while True:
        site = "".join(BASES[rng.choice(4, p=row)] for row in probs)
        if mismatches(site, CONSENSUS) <= MAX_SITE_MISMATCHES:
            return site


def mismatches(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def closest_site(seq: str, skip: tuple[int, int] | None = None) -> int:
    """Fewest mismatches between the consensus and any 14-mer of seq (both strands), skipping [a, b)."""
    w, best = len(CONSENSUS), len(CONSENSUS)
    rc_consensus = CONSENSUS.translate(COMPLEMENT)[::-1]
    for i in range(len(seq) - w + 1):
        if skip and i < skip[1] and i + w > skip[0]:
            continue
        window = seq[i : i + w]
        best = min(best, mismatches(window, CONSENSUS), mismatches(window, rc_consensus))
    return best


def make_positive(rng: np.random.Generator, probs: np.ndarray) -> tuple[str, int]:
    w = len(CONSENSUS)
    while True:
        start = int(rng.integers(0, SEQ_LEN - w + 1))
        bg = background(rng, SEQ_LEN)
        seq = bg[:start] + sample_site(rng, probs) + bg[start + w :]
        if closest_site(seq, skip=(start, start + w)) >= MIN_NEG_MISMATCHES:
            return seq, start


def make_negative(rng: np.random.Generator, probs: np.ndarray) -> str:
    w = len(CONSENSUS)
    while True:
        start = int(rng.integers(0, SEQ_LEN - w + 1))
        decoy = list(sample_site(rng, probs))
        rng.shuffle(decoy)
        bg = background(rng, SEQ_LEN)
        seq = bg[:start] + "".join(decoy) + bg[start + w :]
        if closest_site(seq) >= MIN_NEG_MISMATCHES:
            return seq


def make_split(rng: np.random.Generator, name: str, n: int) -> list[dict[str, str]]:
    probs = pwm()
    labels = np.array([1] * (n // 2) + [0] * (n - n // 2))
    rng.shuffle(labels)
    rows = []
    for i, label in enumerate(labels):
        if label:
            seq, start = make_positive(rng, probs)
        else:
            seq, start = make_negative(rng, probs), None
        rows.append(
            {
                "id": f"{name}_{i + 1:04d}",
                "sequence": seq,
                "label": str(label),
                "motif_start": "" if start is None else str(start),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "sequence", "label", "motif_start"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_examples(folder: Path, rows: list[dict[str, str]]) -> None:
    with (folder / "motif_test.fa").open("w") as f:
        for r in rows:
            f.write(f">{r['id']} label={r['label']}\n{r['sequence']}\n")
    with (folder / "labels.tsv").open("w") as f:
        f.write("id\tlabel\n")
        for r in rows:
            f.write(f"{r['id']}\t{r['label']}\n")


README = """# Planted-motif task (synthetic)

Made by `python scripts/make_motif_data.py --seed {seed}` (stdlib + numpy; deterministic for a seed).

- Files: `train.csv` ({n_train}), `valid.csv` ({n_valid}), `test.csv` ({n_test}); columns
  `id,sequence,label,motif_start`; classes balanced (label `1` = motif present, `0` = absent).
- Background: {seq_len} bp, bases drawn iid with GC content {gc}.
- Motif: the CTCF core `{consensus}`, positions 4-17 of the JASPAR MA0139.1 consensus
  `{jaspar}` (JASPAR CORE, CTCF, Homo sapiens). Each planted site is sampled from a simplified
  PWM built from that consensus (the consensus base with probability {fidelity}, each other base
  {other:.2f}; not JASPAR's own counts), redrawn until it is within {max_mm} mismatches of the consensus.
- Positives: one site on the forward strand at a uniform random start; `motif_start` is its
  0-based start, so the site covers `sequence[motif_start : motif_start + {w}]`. No other 14-mer of
  the sequence (either strand) is within {min_mm_minus} mismatches of the consensus.
- Negatives: `motif_start` is empty. They carry a composition-matched decoy (a sampled site with its
  bases shuffled) at a random position, so GC content does not give the class away, and no 14-mer
  on either strand is within {min_mm_minus} mismatches of the consensus.
- `data/examples/motif_test.fa` is `test.csv` as FASTA (`>id label=...`); `data/examples/labels.tsv`
  holds `id<TAB>label` for it.

`scripts/motif_check.py` uses this task to check genoml's attributions: the attribution peak should
fall inside the planted site, and motif discovery should return a logo matching `{consensus}`.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    (out / "motif").mkdir(parents=True, exist_ok=True)
    (out / "examples").mkdir(parents=True, exist_ok=True)
    splits = {name: make_split(rng, name, n) for name, n in SPLITS}
    for name, rows in splits.items():
        write_csv(out / "motif" / f"{name}.csv", rows)
    write_examples(out / "examples", splits["test"])
    sizes = {f"n_{name}": n for name, n in SPLITS}
    text = README.format(
        seed=args.seed,
        seq_len=SEQ_LEN,
        gc=GC,
        consensus=CONSENSUS,
        jaspar=JASPAR_CONSENSUS,
        fidelity=FIDELITY,
        other=(1 - FIDELITY) / 3,
        max_mm=MAX_SITE_MISMATCHES,
        w=len(CONSENSUS),
        min_mm_minus=MIN_NEG_MISMATCHES - 1,
        **sizes,
    )
    (out / "motif" / "README.md").write_text(text)


if __name__ == "__main__":
    main()
