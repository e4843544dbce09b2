#!/usr/bin/env python
"""Planted-motif check: do a trained run's attributions point at the planted CTCF site?

For the correctly classified positives of data/motif/test.csv it computes per-base tracks for each
method (target: the positive class), the fraction whose attribution peak (argmax of a 5-base smoothed
track) lies inside the planted site +- 3 bases, and whether motif discovery (positives' tracks vs the
test negatives) returns a top motif matching the planted consensus. Pass: hit rate >= 0.80 and match.

    python scripts/motif_check.py RUN_DIR [--test data/motif/test.csv] [--out RUN_DIR/motif_check]
    python scripts/motif_check.py --demo 90 --out runs/motif_demo   # no run: train a tiny kmer:6 BERT here

Prints a table; writes results.json, logos and example track plots under --out. Exit code 1 if a method fails.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genoml import interpret as I  # noqa: E402
from genoml.motifs import consensus_match, find_motifs, write_motifs  # noqa: E402

PLANTED = "CCACCAGGGGGCGC"  # see data/motif/README.md
DEFAULT_METHODS = ("attention", "rollout", "grad-input", "integrated-gradients")


def read_test(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def check(
    model,
    max_tokens,
    rows,
    methods,
    out: Path,
    *,
    window=3,
    min_rate=0.8,
    positive="1",
    n_examples=4,
    predict=None,
):
    """Hit rates and motif recovery per method; writes logos/plots under `out`. Returns the results dict.
    `predict(seqs) -> class indices` (e.g. the run's Predictor, with its windowing and RC averaging);
    default: argmax of the model's logits per sequence."""
    seqs = [r["sequence"] for r in rows]
    labels = list(model.labels)
    pos_index = labels.index(positive)
    if predict is not None:
        preds = [int(p) for p in predict(seqs)]
    else:
        preds = [
            int(
                I.explain_sequence(
                    model, s, methods=(), max_tokens=max_tokens, keep_maps=False
                ).logits.argmax()
            )
            for s in seqs
        ]
    truth = [labels.index(r["label"]) for r in rows]
    correct_pos = [i for i, (p, t) in enumerate(zip(preds, truth, strict=True)) if t == pos_index and p == t]
    negatives = [seqs[i] for i, t in enumerate(truth) if t != pos_index]
    starts = [int(rows[i]["motif_start"]) for i in correct_pos]
    tracks = {m: [] for m in methods}
    for i in correct_pos:
        exp = I.explain_sequence(
            model, seqs[i], methods=methods, target=positive, max_tokens=max_tokens, keep_maps=False
        )
        for m in methods:
            tracks[m].append(exp.tracks[m])
    results = {
        "planted": PLANTED,
        "n_test": len(rows),
        "accuracy": float(np.mean(np.array(preds) == np.array(truth))),
        "n_positives": sum(t == pos_index for t in truth),
        "n_correct_positives": len(correct_pos),
        "window": window,
        "methods": {},
    }
    for m in methods:
        hits = I.motif_hits(tracks[m], starts, len(PLANTED), window=window)
        motifs = find_motifs([seqs[i] for i in correct_pos], tracks[m], negatives) if correct_pos else []
        write_motifs(motifs[:3], out / m)
        top = motifs[0] if motifs else None
        found = top is not None and consensus_match(top.consensus, PLANTED)
        rate = float(hits.mean()) if len(hits) else float("nan")
        results["methods"][m] = {
            "hit_rate": rate,
            "hits": int(hits.sum()),
            "n": int(len(hits)),
            "motif_found": bool(found),
            "top_motif": top.to_dict() if top else None,
            "pass": bool(rate >= min_rate and found),
        }
        for j in range(min(n_examples, len(correct_pos))):
            i = correct_pos[j]
            I.plot_track(
                seqs[i],
                tracks[m][j],
                out / m / f"{rows[i]['id']}.track.png",
                title=f"{rows[i]['id']} {m} (shaded: planted site)",
                highlight=(starts[j], starts[j] + len(PLANTED)),
            )
        np.savez_compressed(
            out / m / "tracks.npz",
            ids=np.array([rows[i]["id"] for i in correct_pos]),
            tracks=np.array(tracks[m]),
            motif_starts=np.array(starts),
        )
    return results


def train_demo(train_csv: Path, seconds: float, spec: str = "kmer:6", seed: int = 0):
    """Development fallback: a tiny BERT (hidden 64, 2 layers, 4 heads, mean pooling) on `spec` tokens,
    trained from scratch on train_csv for about `seconds` (whole epochs). Not a genoml finetune run."""
    import time

    import torch
    from torch import nn
    from transformers import BertConfig, BertModel

    from genoml.data import collate
    from genoml.models import SequenceModel
    from genoml.tokenizers import build_tokenizer

    torch.manual_seed(seed)
    tok = build_tokenizer(spec)
    rows = read_test(train_csv)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        pad_token_id=tok.pad_id,
        attention_probs_dropout_prob=0.0,
    )
    model = SequenceModel(
        "hf", BertModel(cfg, add_pooling_layer=False), 2, tokenizer=tok, labels=["0", "1"], task="binary"
    )
    ids = [tok.encode(r["sequence"]).ids for r in rows]
    y = torch.tensor([int(r["label"]) for r in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    start = time.time()
    while time.time() - start < seconds:
        model.train()
        for idx in torch.randperm(len(ids)).split(32):
            x, mask = collate([ids[i] for i in idx], tok.pad_id)
            loss = nn.functional.cross_entropy(model(x, mask), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def print_table(results: dict) -> None:
    print(
        f"test accuracy {results['accuracy']:.3f} ({results['n_test']} sequences); correctly classified "
        f"positives {results['n_correct_positives']}/{results['n_positives']}"
    )
    print(f"{'method':<22} {'peak in motif':>16}  {'motif found':<11}  top motif (q)")
    for m, r in results["methods"].items():
        top = r["top_motif"]
        desc = f"{top['consensus']} (q={top['qvalue']:.1e}, n={top['n_hits']})" if top else "-"
        print(
            f"{m:<22} {r['hit_rate']:>6.3f} ({r['hits']:>3}/{r['n']:<3})  {'yes' if r['motif_found'] else 'no':<11}  "
            f"{desc}  {'PASS' if r['pass'] else 'FAIL'}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="run directory written by genoml finetune")
    ap.add_argument(
        "--demo",
        type=float,
        default=None,
        metavar="SECONDS",
        help="no run: train a tiny kmer:6 BERT on data/motif/train.csv for SECONDS and check it",
    )
    ap.add_argument("--test", default=str(ROOT / "data" / "motif" / "test.csv"))
    ap.add_argument("--out", default=None, help="default: RUN/motif_check")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument(
        "--window", type=int, default=3, help="bases either side of the site still counted as a hit"
    )
    args = ap.parse_args(argv)

    import torch

    from genoml.runs import load_predictor

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    if args.demo is not None:
        model, max_tokens, meta = train_demo(Path(args.test).with_name("train.csv"), args.demo), None, None
    elif args.run:
        predictor, meta = load_predictor(args.run)
        model, max_tokens = predictor.model, predictor.max_tokens
    else:
        ap.error("give a run directory or --demo SECONDS")
    if model is None:
        print(f"{args.run}: a {meta.arch} run has no per-base attributions", file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    if getattr(model, "arch", "hf") != "hf":
        methods = [m for m in methods if m not in I.ATTENTION_METHODS]
    out = Path(args.out or Path(args.run or "runs/motif_demo") / "motif_check")
    out.mkdir(parents=True, exist_ok=True)
    predict = (
        (lambda seqs: predictor.logits(seqs).argmax(-1).tolist()) if args.run and args.demo is None else None
    )
    results = check(
        model, max_tokens, read_test(Path(args.test)), methods, out, window=args.window, predict=predict
    )
    results["run"] = str(args.run) if args.run else f"demo: tiny kmer:6 BERT trained {args.demo:g}s"
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    return 0 if all(r["pass"] for r in results["methods"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
