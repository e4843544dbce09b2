"""Batched inference shared by finetune (evaluation), evaluate and predict.

`Predictor.scores(seqs)` -> (N, C) class probabilities, (N, C) multilabel probabilities or (N, 1)
regression values, with the run's windowing, window aggregation and reverse-complement averaging.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genoml.data import LabelSpace, aggregate_windows, collate, make_windows, token_budget_batches


def reverse_complement(seq: str) -> str:
    from genoml.io import reverse_complement as rc

    return rc(seq)


def logits_to_scores(logits: torch.Tensor, labels: LabelSpace) -> np.ndarray:
    """(N, C) logits -> probabilities (softmax / sigmoid) or de-standardized values (N, 1)."""
    logits = logits.float()
    if labels.task == "regression":
        return (logits * labels.std + labels.mean).numpy()
    if labels.task == "multilabel":
        return torch.sigmoid(logits).numpy()
    return torch.softmax(logits, -1).numpy()


def autocast(device: torch.device):
    """bf16 autocast on GPU, a no-op on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@dataclass
class Predictor:
    """A trained model plus the run's inference settings."""

    model: torch.nn.Module | None  # SequenceModel (None for kmer-linear)
    labels: LabelSpace
    tokenizer: object = None
    kmer: object = None  # KmerLinear
    max_tokens: int = 512
    stride: int | None = None
    aggregate: str = "mean"
    rc_average: bool = False
    batch_tokens: int = 16384
    device: torch.device = torch.device("cpu")

    @torch.no_grad()
    def window_logits(self, seqs: list[str]) -> torch.Tensor:
        """Sequence logits (N, C), aggregated over windows."""
        if self.kmer is not None:
            return torch.as_tensor(self.kmer.logits(seqs), dtype=torch.float32)
        self.model.eval()
        win = make_windows(seqs, self.tokenizer, self.max_tokens, self.stride)
        lengths = [len(x) for x in win.ids]
        out = torch.zeros(len(win.ids), self.labels.n_out)
        for idx in token_budget_batches(lengths, self.batch_tokens):
            ids, mask = collate([win.ids[i] for i in idx], self.tokenizer.pad_id)
            with autocast(self.device):
                logits = self.model(ids.to(self.device), mask.to(self.device))  # (B, C)
            out[torch.as_tensor(idx)] = logits.float().cpu()
        return aggregate_windows(out, win.parent, len(seqs), self.aggregate)

    def logits(self, seqs: list[str]) -> torch.Tensor:
        if not seqs:
            return torch.zeros(0, self.labels.n_out)
        fwd = self.window_logits(seqs)
        if self.rc_average:
            rev = self.window_logits([reverse_complement(s) for s in seqs])
            return (fwd + rev) / 2
        return fwd

    def scores(self, seqs: list[str]) -> np.ndarray:
        return logits_to_scores(self.logits(seqs), self.labels)
