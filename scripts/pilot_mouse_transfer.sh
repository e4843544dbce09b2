#!/usr/bin/env bash
# Issue 15 pilots (seed 0, one run per cell): can a one-hot `cnn` trunk pretrained without the target's labels
# help the GUE mouse tasks? Trunks (6 min, 1 thread each, two side by side; mouse/0 and mouse/3 dev/test
# excluded): A = real vs dinucleotide-shuffled windows of the 984 kb human sequence (`multitask --shuffled`);
# B = the same task on those windows plus the tf/0 and tf/1 training sequences (labels unused), one pooled task;
# m0 / m3 = supervised on the other mouse task only. Then `genoml finetune` at 2.5 min, 1 thread, seed 0 —
# the protocol of scripts/transfer.py — beside the cnn from scratch. Reads ../shared/data; writes runs/pilot.
# Usage: bash scripts/pilot_mouse_transfer.sh   (about 25 min on 2 cores)
set -euo pipefail
G=../shared/data/gue
H=../shared/data/dna_genomes/human/plast_sapiens_1Mo.fa.gz
[ -d "$G" ] || { echo "skip: $G not found" >&2; exit 0; }
B=${GENOML:-.venv/bin/genoml}
PY=${PYTHON:-.venv/bin/python}
O=runs/pilot
mkdir -p $O
EX="--exclude $G/mouse/0/dev.csv --exclude $G/mouse/0/test.csv --exclude $G/mouse/3/dev.csv --exclude $G/mouse/3/test.csv"
TR="--arch cnn --time-budget 6 --epochs 30 --threads 1 --force"
$PY - "$H" "$G" "$O/human_tf_shuf.csv" <<'PY'
import csv, gzip, sys
from genoml.shuffle import genome_windows, real_vs_shuffled
h, g, out = sys.argv[1:]
seqs, cur = [], []
for line in gzip.open(h, "rt"):
    if line.startswith(">"):
        if cur: seqs.append("".join(cur)); cur = []
    else: cur.append(line.strip())
if cur: seqs.append("".join(cur))
real = list(genome_windows(seqs, 101))
for t in ("tf/0", "tf/1"):
    real += [r["sequence"] for r in csv.DictReader(open(f"{g}/{t}/train.csv"))]
w = csv.writer(open(out, "w")); w.writerow(["sequence", "label"])
w.writerows(real_vs_shuffled(real, 0))
PY
$B multitask --shuffled $H --shuffled-width 101 $EX $TR --out $O/trunkA > $O/trunkA.log 2>&1 &
$B multitask shuf=$O/human_tf_shuf.csv $EX $TR --out $O/trunkB > $O/trunkB.log 2>&1 &
wait
$B multitask m0=$G/mouse/0/train.csv $EX $TR --out $O/trunk_m0 > $O/trunk_m0.log 2>&1 &
$B multitask m3=$G/mouse/3/train.csv $EX $TR --out $O/trunk_m3 > $O/trunk_m3.log 2>&1 &
wait
ft() {  # task model name
  $B finetune $G/$1/train.csv --valid $G/$1/dev.csv --test $G/$1/test.csv --model $2 --time-budget 2.5 --seed 0 \
    --threads 1 --no-baselines --no-attention --out $O/ft_$3 --force > $O/ft_$3.log 2>&1
}
ft mouse/3 cnn m3_cnn & ft mouse/0 cnn m0_cnn & wait
ft mouse/3 $O/trunkA m3_A & ft mouse/0 $O/trunkA m0_A & wait
ft mouse/3 $O/trunkB m3_B & ft mouse/0 $O/trunkB m0_B & wait
ft mouse/3 $O/trunk_m0 m3_from_m0 & ft mouse/0 $O/trunk_m3 m0_from_m3 & wait
for r in m3_cnn m3_A m3_B m3_from_m0 m0_cnn m0_A m0_B m0_from_m3; do
  $PY -c "import json,sys; m=json.load(open('$O/ft_$r/metrics.json')); print('$r', 'test MCC %.3f valid %.3f' % (m['test']['mcc'], m['valid']['mcc']))"
done
