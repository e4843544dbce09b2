#!/usr/bin/env bash
# Pretrain genoml's embedded default models on CPU and write their model cards:
#   data/models/genoml-dna-small      (ESM-style mini, single-nucleotide tokens, bacterial/phage/human DNA)
#   data/models/genoml-protein-small  (ESM-2 style small, ESM tokens, UniProtKB/Ensembl/proteome proteins)
# Each run uses one thread at nice 10 and stops on its time budget (checkpoint + save), so the two
# run side by side in ~40 minutes. Logs: runs/pretrain-defaults/*.log.
# Usage: scripts/pretrain_defaults.sh [--cards-only]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${GENOML_SHARED_DATA:-../shared/data}
BUDGET_MIN=${BUDGET_MIN:-35}
LOGS=runs/pretrain-defaults
mkdir -p "$LOGS" data/models
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg

pretrain() {  # name alphabet arch preset window lr max_steps files...
  local name=$1 alphabet=$2 arch=$3 preset=$4 window=$5 lr=$6 steps=$7
  shift 7
  nice -n 10 "$PY" - "$name" "$alphabet" "$arch" "$preset" "$window" "$lr" "$steps" "$BUDGET_MIN" "$@" <<'EOF'
import logging, sys, torch
torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
from genoml.config import PretrainConfig
from genoml.pretrain import run_pretrain
name, alphabet, arch, preset, window, lr, steps, budget, *files = sys.argv[1:]
run_pretrain(PretrainConfig(
    inputs=files, out=f"data/models/{name}", preset=preset, arch=arch, alphabet=alphabet,
    tokenizer="char" if alphabet == "dna" else "esm", window=int(window), max_steps=int(steps), batch_size=32,
    lr=float(lr), mask_rate=0.15, eval_fraction=0.02, eval_windows=512, eval_every=250, checkpoint_every=250,
    log_every=25, seed=0, dropout=0.0, time_budget_min=float(budget), force=True, threads=1,
))
EOF
}

model_card() {  # name provenance-file
  "$PY" scripts/model_card.py "data/models/$1" "$2" \
    "\`scripts/pretrain_defaults.sh\` (one CPU thread; a time budget of $BUDGET_MIN min)."
}

if [ "${1:-}" = "--cards-only" ]; then  # rewrite the model cards from the existing genoml.json files
  model_card genoml-dna-small "$DATA/dna_genomes/PROVENANCE.txt"
  model_card genoml-protein-small "$DATA/protein_corpus/PROVENANCE.txt"
  exit 0
fi

DNA_FILES=$(find "$DATA/dna_genomes" -name '*.gz' | sort)
PROTEIN_FILES=$(ls "$DATA"/protein_corpus/*.fa.gz "$DATA"/protein_corpus/*.fasta.gz "$DATA"/protein_corpus/*.faa | sort)

# Choices measured on this machine (2 shared cores, 6-7 min trial runs, held-out loss at equal wall time):
# DNA: ESM-style (pre-LN, rotary) mini (128 hidden, 4 layers) beat BERT mini and BERT small; protein: ESM small
# matched ESM mini per minute and learns more per step. max_steps ~ what one contended core does in the budget.
# shellcheck disable=SC2086 # word splitting of the file lists is intended (paths without spaces)
pretrain genoml-dna-small dna esm mini 128 1e-3 1600 $DNA_FILES >"$LOGS/dna.log" 2>&1 &
dna=$!
# shellcheck disable=SC2086
pretrain genoml-protein-small protein esm small 128 5e-4 650 $PROTEIN_FILES >"$LOGS/protein.log" 2>&1 &
protein=$!
wait $dna && model_card genoml-dna-small "$DATA/dna_genomes/PROVENANCE.txt"
wait $protein && model_card genoml-protein-small "$DATA/protein_corpus/PROVENANCE.txt"
du -sh data/models/genoml-dna-small data/models/genoml-protein-small
