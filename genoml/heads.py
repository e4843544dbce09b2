"""What trains on top of an encoder: the loss of each task, and the probe's head on cached features.

A probe (frozen encoder) runs the encoder once: `encode_features` turns token ids (W windows of ids) into
pooled features (W, H) on the CPU, and `FeatureHead` trains the model's head on them, (B, H) -> (B, C).
`loss_function(labels, class_weights)` -> loss(logits (B, C), targets) for the task of `labels`.
"""

from __future__ import annotations

import torch
from torch import nn

from genoml.data import LabelSpace, collate, token_budget_batches
from genoml.device import autocast, default_batch_tokens, fused_kernels, model_device


def loss_function(labels: LabelSpace, class_weights: torch.Tensor | None):
    """MSE for regression, BCE-with-logits for multilabel, (weighted) cross-entropy otherwise."""
    if labels.task == "regression":
        return lambda logits, y: nn.functional.mse_loss(logits.squeeze(-1), y)
    if labels.task == "multilabel":
        return lambda logits, y: nn.functional.binary_cross_entropy_with_logits(logits, y)
    return lambda logits, y: nn.functional.cross_entropy(logits, y, weight=class_weights)


class FeatureHead(nn.Module):
    """Probe: the trainable head applied to cached pooled features (B, H) -> (B, C)."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.classifier = head

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)


def encode_features(
    model, ids: list[list[int]], pad_id: int, batch_tokens: int | None = None
) -> torch.Tensor:
    """Pooled encoder features for every window (W, H) float32 on the CPU: computed once, reused every epoch.
    Batches run on the model's device (bf16 autocast on CUDA)."""
    model.eval()
    device = model_device(model)
    batch_tokens = default_batch_tokens(device, batch_tokens)
    out = None
    with torch.inference_mode(), fused_kernels():
        for idx in token_budget_batches([len(x) for x in ids], batch_tokens):
            x, mask = collate([ids[i] for i in idx], pad_id)  # (B, L) each
            with autocast(device):
                f = model.features(x.to(device), mask.to(device))  # (B, H)
            if out is None:
                out = torch.zeros(len(ids), f.shape[1])
            out[torch.as_tensor(idx)] = f.float().cpu()
    return torch.zeros(0, 0) if out is None else out.clone()  # clone: a normal tensor, usable under autograd
