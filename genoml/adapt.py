"""Task-adaptive pretraining (`genoml finetune --adapt-steps N`).

Continues masked-LM pretraining of the source model on the task's own *training* sequences
(never valid/test) with `genoml.pretrain`, and returns the adapted model folder to fine-tune.
"""

from __future__ import annotations

import logging
from pathlib import Path

from genoml.config import PretrainConfig
from genoml.errors import InputError
from genoml.pretrain import run_pretrain

log = logging.getLogger(__name__)


def adapt_model(
    source: str,
    train_seqs: list[str],
    out: Path,
    *,
    steps: int,
    seed: int = 0,
    threads: int | None = None,
    batch_size: int = 32,
    device: str = "auto",
) -> str:
    """Run `steps` MLM steps of `source` on `train_seqs`; returns the folder of the adapted model."""
    if not Path(source).is_dir():
        raise InputError(f"--adapt-steps: needs a local masked-LM folder as --model, got '{source}'")
    corpus = out / "adapt_corpus.fa"
    with open(corpus, "w") as fh:
        for i, seq in enumerate(train_seqs):
            fh.write(f">t{i}\n{seq}\n")
    window = max(8, min(max(len(s) for s in train_seqs), 510))
    cfg = PretrainConfig(
        inputs=[str(corpus)],
        out=str(out / "adapted"),
        model=source,
        window=window,
        max_steps=steps,
        batch_size=batch_size,
        lr=1e-4,
        seed=seed,
        threads=threads,
        eval_every=max(1, steps // 4),
        checkpoint_every=max(1, steps),
        force=True,
        device=device,
    )
    log.info("task-adaptive pretraining: %d MLM steps on %d training sequences", steps, len(train_seqs))
    folder = run_pretrain(cfg)
    corpus.unlink(missing_ok=True)
    return str(folder)
