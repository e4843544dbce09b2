"""The two sequence alphabets genoml knows, in one place (as esm's `Alphabet` owns its symbols).

`DNA` and `PROTEIN` hold the canonical letters (one-hot order), the extra letters a reader accepts
(IUPAC ambiguity codes, rare residues), the letter those become, and the complement (DNA).
`get(name)` returns one; `reverse_complement(seq)` and `detect(seqs)` are the shared helpers that
io, inference, motifs, tokenizers, kmer-linear and the baselines use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from genoml.errors import InputError


@dataclass(frozen=True)
class Alphabet:
    """Letters of one alphabet. `letters` are the canonical ones, in one-hot / k-mer order."""

    name: str
    letters: str  # canonical letters (one-hot columns)
    extra: str  # further letters a reader keeps (protein) or maps onto `unknown` (DNA ambiguity codes)
    unknown: str  # the "any letter" symbol (N / X)

    @property
    def all_letters(self) -> str:
        """Every letter a normalised sequence can hold."""
        return self.letters + self.extra if self.name == "protein" else self.letters + self.unknown


DNA = Alphabet("dna", letters="ACGT", extra="NRYKMSWBDHV", unknown="N")
PROTEIN = Alphabet("protein", letters="ACDEFGHIKLMNPQRSTVWY", extra="XBZUO", unknown="X")
ALPHABETS = {"dna": DNA, "protein": PROTEIN}
DETECT_SAMPLE_CHARS = 100_000

_COMPLEMENT = str.maketrans("ACGTURYKMSWBDHVNacgturykmswbdhvn", "TGCAAYRMKSWVHDBNtgcaayrmkswvhdbn")


def get(name: str) -> Alphabet:
    """The alphabet called `name` ("dna" | "protein")."""
    try:
        return ALPHABETS[name]
    except KeyError:
        raise InputError(f"alphabet: got {name!r}; allowed: 'dna', 'protein'") from None


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA sequence; IUPAC codes map to their complements, N to N; case kept."""
    return seq.translate(_COMPLEMENT)[::-1]


def detect(seqs: Iterable[str], budget: int = DETECT_SAMPLE_CHARS) -> Literal["dna", "protein"]:
    """ "dna" if >= 90% of the letters in a sample (first `budget` characters) of `seqs` are ACGTUN, else "protein"."""
    counts: Counter[str] = Counter()
    for seq in seqs:
        counts.update(seq[:budget].upper())
        budget -= min(len(seq), budget)
        if budget <= 0:
            break
    letters = sum(n for ch, n in counts.items() if ch.isalpha())
    nucleic = sum(counts[ch] for ch in "ACGTUN")
    return "dna" if nucleic >= 0.9 * letters else "protein"
