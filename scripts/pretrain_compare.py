"""Tabulate masked-LM pretraining runs from their genoml.json: architecture, size, data seen, held-out masked
accuracy against the k-mer context baseline of the same held-out tokens. Prints Markdown to stdout.

    python scripts/pretrain_compare.py FOLDER [FOLDER ...]

The cnn row of BENCHMARKS.md ("Self-supervised pretraining: ConvLM vs transformer") comes from
    genoml pretrain <the 19 genome files of data/models/genoml-dna-small/genoml.json> --out runs/convlm/small256
      --force --arch cnn --preset small --tokenizer char --alphabet dna --window 256 --batch-size 64 --lr 2e-3
      --dropout 0 --max-steps 3000 --eval-every 250 --eval-windows 512 --checkpoint-every 250 --time-budget 70
      --threads 1
(one thread at nice 10, beside other jobs), the esm row from scripts/pretrain_defaults.sh (the shipped model).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(folder: Path) -> str:
    m = json.loads((folder / "genoml.json").read_text())
    c, h = m["config"], m["heldout"]
    base = h["baselines"]
    curve = [
        f"{r['step']}: {r['masked_acc']:.3f}"
        for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
        if r.get("event") == "eval" and r.get("masked_acc") is not None
    ]
    tokens = m["steps"] * m["batch_size"] * m["max_tokens"]
    return (
        f"| {m['arch']} {c['preset']} | {m['parameters']:,} | {m['steps']:,} × {m['batch_size']} × {m['window']} "
        f"({tokens / 1e6:.1f}M tokens), lr {c['lr']:g}, {m['wall_s'] / 60:.0f} min | {h['masked_acc']:.4f} | "
        f"{base['context_acc']:.4f} | **{h['masked_acc'] - base['context_acc']:+.4f}** | {', '.join(curve)} |"
    )


def main(folders: list[str]) -> None:
    print(
        "| model | parameters | steps × batch × window (tokens seen), lr, wall | held-out masked acc | "
        "3-token context baseline | margin | held-out curve (step: acc) |"
    )
    print("|---|---:|---|---:|---:|---:|---|")
    for f in folders:
        print(row(Path(f)))


if __name__ == "__main__":
    main(sys.argv[1:])
