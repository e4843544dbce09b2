#!/usr/bin/env bash
# Deterministic runs of every pipeline on the project's own data, their metrics written without timings to
# OUT/summary.json. Run it at two commits (e.g. before and after a restructuring) and diff the summaries:
# for the same seed they must be identical.
#     bash scripts/same_metrics.sh OUT [GENOML]
set -euo pipefail
out=${1:?usage: same_metrics.sh OUT [GENOML]}
genoml=${2:-genoml}
m=data/motif
mkdir -p "$out"
export HF_HUB_OFFLINE=1 GENOML_THREADS=${GENOML_THREADS:-1}
$genoml finetune $m/train.csv --valid $m/valid.csv --test $m/test.csv --out "$out/auto" --force --seed 0 --epochs 3 --threads 1 2>"$out/auto.log"
$genoml finetune $m/train.csv --valid $m/valid.csv --test $m/test.csv --out "$out/embedded" --force --seed 0 --model embedded --epochs 1 --threads 1 2>"$out/embedded.log"
$genoml finetune $m/train.csv --valid $m/valid.csv --test $m/test.csv --out "$out/kmer" --force --seed 0 --model kmer-linear --threads 1 2>"$out/kmer.log"
$genoml predict --model "$out/auto" data/examples/motif_test.fa -o "$out/predictions.tsv" --threads 1 2>"$out/predict.log"
$genoml pretrain data/examples/motif_test.fa --out "$out/pretrain" --force --preset tiny --window 64 --max-steps 30 --batch-size 8 --eval-every 10 --eval-windows 16 --seed 0 --threads 1 --prefetch 0 2>"$out/pretrain.log"
python3 - "$out" <<'PY'
import hashlib, json, sys
from pathlib import Path

out = Path(sys.argv[1])
# timings and provenance differ between runs; everything else must not
DROP = {"versions", "command", "started", "date", "time", "seconds", "elapsed", "peak_rss_mb"}
DROP_SUFFIX = ("_s", "_seconds", "_per_s", "_per_second", "_time", "_wall", "_date")

def clean(o):
    if isinstance(o, dict):
        return {k: clean(v) for k, v in o.items() if k not in DROP and not k.endswith(DROP_SUFFIX)}
    if isinstance(o, list):
        return [clean(v) for v in o]
    return o

summary = {}
for run in ("auto", "embedded", "kmer"):
    summary[run] = clean(json.loads((out / run / "metrics.json").read_text()))
summary["predictions_sha256"] = hashlib.sha256((out / "predictions.tsv").read_bytes()).hexdigest()
meta = json.loads((out / "pretrain" / "genoml.json").read_text())
summary["pretrain"] = clean({k: meta.get(k) for k in ("history", "heldout", "baselines", "final") if k in meta})
(out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
print(f"{out}/summary.json")
PY
