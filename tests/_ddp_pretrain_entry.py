"""Entry point for the torchrun test: `torchrun --nproc_per_node 2 --standalone tests/_ddp_pretrain_entry.py OUT FASTA...`.

Runs a tiny pretraining with the gloo backend on CPU; the test checks what the ranks drew.
"""

from __future__ import annotations

import sys

import torch

from genoml.config import PretrainConfig
from genoml.pretrain import run_pretrain


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    out, *inputs = argv
    cfg = PretrainConfig(
        inputs=inputs,
        out=out,
        preset="tiny",
        window=32,
        max_steps=4,
        batch_size=8,
        lr=3e-3,
        eval_fraction=0.2,
        eval_windows=16,
        eval_every=4,
        checkpoint_every=4,
        log_every=2,
        seed=1,
    )
    run_pretrain(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
