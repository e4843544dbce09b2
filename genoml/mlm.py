"""The masked-LM objective and its held-out evaluation.

`MaskedLMObjective(mlm)(input_ids (B, L), attention_mask (B, L), labels (B, L))` -> (loss, logits (M, V),
targets (M,)) over the M masked positions. `evaluate_heldout` gives loss, perplexity and masked accuracy
over fixed batches; `frequency_baselines` the accuracy of token-frequency guesses on the same targets,
and `baseline_warning` says when the model does not beat them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch.nn.functional as F
from torch import nn

from genoml.device import autocast, model_device

if TYPE_CHECKING:
    from genoml.mlm_batches import MaskedBatcher

BASELINE_MARGIN = 0.02  # held-out masked accuracy must beat the k-mer context baseline by this much


class MaskedLMObjective(nn.Module):
    """Wraps a HF *ForMaskedLM: logits only at masked positions (hidden states gathered before the LM head).

    forward(input_ids (B, L), attention_mask (B, L), labels (B, L)) -> (loss, logits (M, V), targets (M,)).
    """

    def __init__(self, mlm: nn.Module):
        super().__init__()
        self.mlm = mlm
        self.head_name = next(
            (n for n in ("cls", "lm_head") if isinstance(getattr(mlm, n, None), nn.Module)), None
        )

    def forward(self, input_ids, attention_mask, labels):
        chosen = labels != -100  # (B, L)
        if self.head_name is not None:
            hidden = self.mlm.base_model(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state  # (B, L, H)
            logits = getattr(self.mlm, self.head_name)(hidden[chosen])  # (M, V)
        else:
            logits = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits[chosen]  # (M, V)
        targets = labels[chosen]  # (M,)
        if targets.numel() == 0:
            return logits.sum() * 0.0, logits, targets
        return F.cross_entropy(logits.float(), targets), logits, targets


def evaluate_heldout(model: nn.Module, batches: list[dict]) -> dict:
    """Masked-token loss, perplexity and accuracy over the fixed held-out batches."""
    device = model_device(model)
    total_loss, correct, count = 0.0, 0, 0
    for b in batches:
        with autocast(device):
            loss, logits, targets = model(**{k: v.to(device) for k, v in b.items()})
        total_loss += float(loss) * targets.numel()
        correct += int((logits.argmax(-1) == targets).sum())
        count += targets.numel()
    loss = total_loss / max(count, 1)
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 50.0)),
        "masked_acc": correct / max(count, 1),
        "masked_tokens": count,
    }


def frequency_baselines(batcher: MaskedBatcher, heldout: list[dict], n_windows: int = 2000) -> dict:
    """Accuracy on the held-out masked tokens of (a) the most frequent token and (b) the most frequent token
    given the c visible tokens on each side, from (2c+1)-mer counts over training windows (backs off to (a)
    when a neighbour is masked/special or the context was never seen)."""
    rngs = [np.random.default_rng([batcher.cfg.seed, 2**32 - 2, j]) for j in range(n_windows)]
    train = [batcher.tok.encode(batcher.corpus.sample(r).seq, batcher.max_tokens).ids for r in rngs]
    vocab = len(batcher.tok)
    bad = batcher.unpredictable.numpy()  # (V,)
    unigram = np.bincount(np.concatenate([np.asarray(t) for t in train]), minlength=vocab)
    unigram[bad] = 0
    top = int(unigram.argmax())
    seen = max(2, int((unigram > 0).sum()))
    c = max(1, int(math.log(2e4) / (2 * math.log(seen))))
    best = _best_in_context(train, c, vocab, bad)
    hits_uni = hits_ctx = n = 0
    for b in heldout:
        x, y = b["input_ids"].numpy(), b["labels"].numpy()
        for r, p in zip(*np.nonzero(y != -100), strict=True):
            n += 1
            hits_uni += int(y[r, p] == top)
            lo, hi = p - c, p + c + 1
            guess = top
            if lo >= 0 and hi <= x.shape[1]:
                ctx = x[r, lo:hi]
                key = (*ctx[:c].tolist(), *ctx[c + 1 :].tolist())
                if not bad[np.delete(ctx, c)].any() and key in best:
                    guess = best[key]
            hits_ctx += int(y[r, p] == guess)
    return {
        "unigram_acc": hits_uni / max(n, 1),
        "context_acc": hits_ctx / max(n, 1),
        "context_size": c,
        "most_frequent_token": batcher.tok.vocab[top],
        "count_windows": n_windows,
    }


def _best_in_context(train: list, c: int, vocab: int, bad: np.ndarray) -> dict[tuple, int]:
    """(c tokens left, c tokens right) -> the most frequent middle token, counted over the token ids of
    `train` windows; contexts holding an unpredictable token (`bad` (V,) bool) are not counted."""
    table: dict[tuple, np.ndarray] = {}
    for t in train:
        t = np.asarray(t)
        for p in range(c, len(t) - c):
            ctx = t[p - c : p + c + 1]
            if not bad[ctx].any():
                key = (*ctx[:c].tolist(), *ctx[c + 1 :].tolist())
                table.setdefault(key, np.zeros(vocab, np.int64))[t[p]] += 1
    return {k: int(v.argmax()) for k, v in table.items()}


def baseline_warning(masked_acc: float | None, baselines: dict | None) -> str | None:
    """A warning when the held-out masked accuracy does not beat the k-mer context baseline by BASELINE_MARGIN."""
    ctx = (baselines or {}).get("context_acc")
    if masked_acc is None or ctx is None or masked_acc >= ctx + BASELINE_MARGIN:
        return None
    return (
        f"held-out masked accuracy {masked_acc:.4f} does not beat the {baselines.get('context_size', '?')}-token "
        f"context frequency baseline ({ctx:.4f}) by {BASELINE_MARGIN}: the model has learnt little beyond local "
        "k-mer statistics; train longer, or try --arch esm --dropout 0 with a higher --lr"
    )
