"""The k-mer-linear baseline: k-mer count profiles + scikit-learn logistic or ridge regression.

Fitted coefficients are stored as safetensors + JSON (never pickle), so the baseline is saved
and loaded like every other genoml model. logits(seqs) -> (N, C) linear logits (N, 1 for regression);
`genoml.inference.logits_to_scores` turns them into probabilities or values.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy.sparse import csr_matrix

from genoml.alphabet import ALPHABETS

LETTERS = {name: a.letters for name, a in ALPHABETS.items()}


def kmer_vocab(alphabet: str, ks: tuple[int, ...]) -> list[str]:
    letters = LETTERS[alphabet]
    return ["".join(p) for k in ks for p in itertools.product(letters, repeat=k)]


def _letter_codes(letters: str) -> np.ndarray:
    table = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(letters):
        table[ord(ch)] = i
    return table


def kmer_counts(seqs: list[str], alphabet: str, ks: tuple[int, ...]):
    """Sparse (N, V) matrix of k-mer frequencies (counts / number of k-mers of that k), vectorised with numpy.

    Column of a k-mer = offset of its k + its base-|alphabet| code (the `itertools.product` order of
    `kmer_vocab`); k-mers with a letter outside the alphabet (N, X) are not counted.
    """
    letters = LETTERS[alphabet]
    table, base = _letter_codes(letters), len(letters)
    offsets = np.cumsum([0] + [base**k for k in ks])[:-1]
    width = int(sum(base**k for k in ks))
    rows, cols, vals = [], [], []
    for r, seq in enumerate(seqs):
        codes = table[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]  # (L,)
        for k, off in zip(ks, offsets):
            n = len(codes) - k + 1
            if n <= 0:
                continue
            windows = np.lib.stride_tricks.sliding_window_view(codes, k)  # (n, k)
            valid = (windows >= 0).all(1)
            idx = windows[valid] @ (base ** np.arange(k - 1, -1, -1))  # (n_valid,)
            uniq, counts = np.unique(idx, return_counts=True)
            rows.append(np.full(len(uniq), r))
            cols.append(uniq + off)
            vals.append(counts / max(1, n))
    if not rows:
        return csr_matrix((len(seqs), width), dtype=np.float32)
    return csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(seqs), width),
        dtype=np.float32,
    )


class KmerLinear:
    """Logistic regression (classification) or ridge (regression) on k-mer frequencies."""

    def __init__(
        self, task: str, alphabet: str, ks: tuple[int, ...] | None = None, C: float = 1.0, seed: int = 0
    ):
        self.task, self.alphabet, self.C, self.seed = task, alphabet, C, seed
        self.ks = ks or ((1, 2, 3, 4, 5, 6) if alphabet == "dna" else (1, 2))
        self.vocab = kmer_vocab(alphabet, self.ks)
        self.coef = self.intercept = self.scale = None

    def fit(self, seqs: list[str], y: np.ndarray) -> KmerLinear:
        # heavy: scikit-learn loads in seconds; a saved model predicts without it
        from sklearn.linear_model import LogisticRegression, Ridge

        X = kmer_counts(seqs, self.alphabet, self.ks)
        self.scale = np.asarray(X.power(2).mean(0)).ravel() ** 0.5 + 1e-6  # (V,) per-feature RMS
        X = X.multiply(1.0 / self.scale).tocsr()
        if self.task == "regression":
            m = Ridge(alpha=1.0 / self.C).fit(X, y)
            self.coef, self.intercept = np.atleast_2d(m.coef_), np.atleast_1d(m.intercept_)
        else:
            m = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed).fit(X, y)
            coef, icpt = m.coef_, m.intercept_
            if coef.shape[0] == 1:  # binary: expand to two logits
                coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, icpt[0]])
            self.coef, self.intercept = coef, icpt
        return self

    def logits(self, seqs: list[str]) -> np.ndarray:
        X = kmer_counts(seqs, self.alphabet, self.ks).multiply(1.0 / self.scale).tocsr()
        return np.asarray(X @ self.coef.T) + self.intercept  # (N, C)

    def save(self, folder: Path) -> None:
        save_file(
            {
                "coef": self.coef.astype(np.float32),
                "intercept": self.intercept.astype(np.float32),
                "scale": self.scale.astype(np.float32),
            },
            str(folder / "kmer_linear.safetensors"),
        )
        (folder / "kmer_linear.json").write_text(
            json.dumps({"task": self.task, "alphabet": self.alphabet, "ks": list(self.ks), "C": self.C})
        )

    @classmethod
    def load(cls, folder: Path) -> KmerLinear:
        meta = json.loads((folder / "kmer_linear.json").read_text())
        m = cls(meta["task"], meta["alphabet"], tuple(meta["ks"]), meta["C"])
        t = load_file(str(folder / "kmer_linear.safetensors"))
        m.coef, m.intercept, m.scale = t["coef"], t["intercept"], t["scale"]
        return m
