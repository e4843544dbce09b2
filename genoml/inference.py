"""Batched inference shared by finetune (evaluation), evaluate and predict.

`Predictor.scores(seqs)` -> (N, C) class probabilities, (N, C) multilabel probabilities or (N, 1)
regression values, with the run's windowing, window aggregation and reverse-complement averaging.
Inputs go to the model's device at call time (`genoml.device.model_device`), so a Predictor built
before Accelerate moved the model (validation inside training) still feeds it correctly.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from genoml.alphabet import reverse_complement
from genoml.data import LabelSpace, aggregate_windows, collate, make_windows, token_budget_batches
from genoml.device import autocast as _autocast
from genoml.device import default_batch_tokens, fused_kernels, model_device, quantize_int8

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 15.0  # a progress line at most this often during a long inference


def logits_to_scores(logits: torch.Tensor, labels: LabelSpace) -> np.ndarray:
    """(N, C) logits -> probabilities (softmax / sigmoid) or de-standardized values (N, 1)."""
    logits = logits.float()
    if labels.task == "regression":
        return labels.decode(logits).numpy()
    if labels.task == "multilabel":
        return torch.sigmoid(logits).numpy()
    return torch.softmax(logits, -1).numpy()


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast on GPU; on CPU only with precision="bf16" (see genoml.device.autocast)."""
    return _autocast(device, precision)


@dataclass
class Predictor:
    """A trained model plus the run's inference settings.

    `device` is informational (where `load_predictor` put the model); inputs always follow the model.
    `precision`: auto (bf16 on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16 | int8 (CPU,
    dynamically quantized linear layers).
    """

    model: torch.nn.Module | None  # SequenceModel (None for kmer-linear)
    labels: LabelSpace
    tokenizer: object = None
    kmer: object = None  # KmerLinear
    max_tokens: int = 512
    stride: int | None = None
    aggregate: str = "mean"
    rc_average: bool = False
    batch_tokens: int | None = None  # None: the device's default (genoml.device.default_batch_tokens)
    device: torch.device | None = None
    precision: str = "auto"
    _int8: torch.nn.Module | None = None

    def sequence_logits(self, seqs: list[str]) -> torch.Tensor:
        """One strand's sequence logits (N, C): window logits aggregated per sequence."""
        if self.kmer is not None:
            return torch.as_tensor(self.kmer.logits(seqs), dtype=torch.float32)
        win = make_windows(seqs, self.tokenizer, self.max_tokens, self.stride)
        out = self.ids_logits(win.ids)  # (W, C)
        return aggregate_windows(out, win.parent, len(seqs), self.aggregate)

    def ids_logits(self, ids: list[list[int]]) -> torch.Tensor:
        """Token id lists (W of them) -> window logits (W, C) float32 on the CPU; batches sorted by length under
        a padded-token budget, run on the model's device under inference_mode (and autocast, see `precision`)."""
        was_training = self.model.training
        self.model.eval()
        device = model_device(self.model)
        model = self.model
        if self.precision == "int8":
            if self._int8 is None:
                self._int8 = quantize_int8(self.model)
            model = self._int8
        out = torch.zeros(len(ids), self.labels.n_out)
        budget = default_batch_tokens(device, self.batch_tokens)
        progress = _Progress(len(ids))
        try:
            with torch.inference_mode(), fused_kernels():
                for idx in token_budget_batches([len(x) for x in ids], budget):
                    progress.advance(len(idx))
                    x, mask = collate([ids[i] for i in idx], self.tokenizer.pad_id)  # (B, L) each
                    if device.type == "cuda":
                        x, mask = x.pin_memory(), mask.pin_memory()
                    x = x.to(device, non_blocking=True)
                    mask = mask.to(device, non_blocking=True)
                    with _autocast(device, self.precision):
                        logits = model(x, mask)  # (B, C)
                    out[torch.as_tensor(idx)] = logits.float().cpu()
        finally:
            self.model.train(was_training)
        return out

    def logits(self, seqs: list[str]) -> torch.Tensor:
        if not seqs:
            return torch.zeros(0, self.labels.n_out)
        fwd = self.sequence_logits(seqs)
        if self.rc_average:
            rev = self.sequence_logits([reverse_complement(s) for s in seqs])
            return (fwd + rev) / 2
        return fwd

    def scores(self, seqs: list[str]) -> np.ndarray:
        return logits_to_scores(self.logits(seqs), self.labels)


class _Progress:
    """Logs "windows done/total" on stderr every PROGRESS_EVERY_S seconds while a long inference runs (a single
    50-Mb record is ~100,000 windows); silent for short ones and under -q."""

    def __init__(self, total: int):
        self.total, self.done, self.last = total, 0, time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S and self.done < self.total:
            self.last = now
            log.info(
                "inference: %s of %s windows (%.0f%%)",
                f"{self.done:,}",
                f"{self.total:,}",
                100 * self.done / self.total,
            )
