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
  "$PY" - "data/models/$1" "$2" <<'EOF'
import json, shutil, sys
from pathlib import Path
out, provenance = Path(sys.argv[1]), Path(sys.argv[2])
m = json.loads((out / "genoml.json").read_text())
h, b = m["heldout"], m["heldout"]["baselines"]
prov = provenance.read_text()
licence = next((l.split(":", 1)[1].strip() for l in prov.splitlines() if l.startswith("License:")), "see PROVENANCE")
source = next((l.split(":", 1)[1].strip() for l in prov.splitlines() if l.startswith("Source:")), "")
lines = prov.splitlines()
start = next((i + 1 for i, l in enumerate(lines) if l.startswith("Description:")), len(lines))
end = next((i for i in range(start, len(lines)) if lines[i].startswith("Files")), len(lines))
description = " ".join(l.strip() for l in lines[start:end] if l.strip())
files = "\n".join(f"| `{Path(c['path']).name}` | {c['records']:,} | {c['residues']:,} | `{c['sha256'][:16]}…` |"
                  for c in m["corpus"])
unit = "bases" if m["alphabet"] == "dna" else "residues"
card = f"""# {out.name}

genoml's embedded default {m['alphabet'].upper()} encoder: a masked language model pretrained from scratch by
`genoml pretrain` on CPU ({m['processes']} process, 1 thread). `genoml finetune` uses it when no `--model` is
given and the input is {m['alphabet'].upper()}. Standard Hugging Face folder (`AutoModelForMaskedLM`, safetensors).

| | |
|---|---|
| architecture | {m['arch']} (`{m['preset']}` preset), {m['parameters']:,} parameters |
| tokenizer | `{m['tokenizer']}` ({len((out / 'vocab.txt').read_text().split())} tokens) |
| window | {m['window']} {unit} = {m['max_tokens']} tokens (= max_position_embeddings; longer inputs are windowed) |
| training | {m['steps']:,} steps × {m['batch_size']} windows ({m['windows_seen']:,} windows), stopped: {m['stopped']}, wall time {m['wall_s'] / 60:.1f} min |
| masking | {m['masking']['rate']:.0%} of tokens, span {m['masking']['span']}; {m['masking']['replace']} |
| optimizer | AdamW lr {m['config']['lr']}, warmup {m['config']['warmup_ratio']:.0%} then linear decay, seed {m['config']['seed']} |

## Held-out evaluation

{h['windows']} windows from the held-out part of the corpus ({h['residues']:,} {unit}, never trained on:
{h['rule']}); {h['masked_tokens']:,} masked tokens, all replaced by the mask token.

| predictor | masked-token accuracy |
|---|---|
| this model | **{h['masked_acc']:.4f}** (loss {h['loss']:.4f} nats, perplexity {h['perplexity']:.3f}) |
| k-mer frequency baseline: most frequent token given {b['context_size']} visible tokens each side | {b['context_acc']:.4f} |
| most frequent token (`{b['most_frequent_token']}`) | {b['unigram_acc']:.4f} |

Baseline counts come from {b['count_windows']:,} training windows. Loss curve: `loss.png`; every logged value: `metrics.jsonl`.

![loss curve](loss.png)

## Corpus

{source} {description}

| file | records | {unit} | sha256 |
|---|---|---|---|
{files}

Licence of the data: {licence}. Full provenance (origin and checksum of each file): `PROVENANCE.txt` of the
corpus folder (`../shared/data/<corpus>/PROVENANCE.txt` beside a genoml checkout). The model weights are released under genoml's licence (MIT).

Reproduce: `scripts/pretrain_defaults.sh` (one CPU thread; a time budget of {m['config']['time_budget_min']:g} min).
"""
(out / "README.md").write_text(card)
shutil.rmtree(out / "checkpoints", ignore_errors=True)
EOF
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
