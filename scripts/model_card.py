"""Write the model card (README.md) of a genoml pretrained model folder from its genoml.json and the corpus's
PROVENANCE.txt.

    python scripts/model_card.py FOLDER PROVENANCE "HOW TO REPRODUCE" ["ROLE"]

ROLE: one sentence on how genoml uses the model (default: the embedded default encoder of its alphabet).
"""

import json
import shutil
import sys
from pathlib import Path

out, provenance = Path(sys.argv[1]), Path(sys.argv[2])
reproduce = sys.argv[3]
role = sys.argv[4] if len(sys.argv) > 4 else None
m = json.loads((out / "genoml.json").read_text())
h, b = m["heldout"], m["heldout"]["baselines"]
prov = provenance.read_text()
licence = next(
    (line.split(":", 1)[1].strip() for line in prov.splitlines() if line.startswith("License:")),
    "see PROVENANCE",
)
source = next((line.split(":", 1)[1].strip() for line in prov.splitlines() if line.startswith("Source:")), "")
lines = prov.splitlines()
start = next((i + 1 for i, line in enumerate(lines) if line.startswith("Description:")), len(lines))
end = next((i for i in range(start, len(lines)) if lines[i].startswith("Files")), len(lines))
description = " ".join(line.strip() for line in lines[start:end] if line.strip())
files = "\n".join(
    f"| `{Path(c['path']).name}` | {c['records']:,} | {c['residues']:,} | `{c['sha256'][:16]}…` |"
    for c in m["corpus"]
)
unit = "bases" if m["alphabet"] == "dna" else "residues"
intro = role or (
    f"genoml's embedded default {m['alphabet'].upper()} encoder: a masked language model pretrained from scratch by\n"
    f"`genoml pretrain` on CPU ({m['processes']} process, 1 thread). `genoml finetune --model embedded` uses it when\n"
    f"the input is {m['alphabet'].upper()}."
)
folder_note = (
    "Hugging Face folder (safetensors); `AutoModelForMaskedLM` loads it once genoml registered the architecture "
    "(`genoml.archs.native_module('convlm')`; genoml's own loaders do it)."
    if m["arch"] == "genoml_convlm"
    else "Standard Hugging Face folder (`AutoModelForMaskedLM`, safetensors)."
)
limit = (
    "no position limit: a convolutional model; genoml windows inputs at this length"
    if m["arch"] == "genoml_convlm"
    else "= max_position_embeddings"
)
card = f"""# {out.name}

{intro} {folder_note}

| | |
|---|---|
| architecture | {m["arch"]} (`{m["preset"]}` preset), {m["parameters"]:,} parameters |
| tokenizer | `{m["tokenizer"]}` ({len((out / "vocab.txt").read_text().split())} tokens) |
| window | {m["window"]} {unit} = {m["max_tokens"]} tokens ({limit}; longer inputs are windowed) |
| training | {m["steps"]:,} steps × {m["batch_size"]} windows ({m["windows_seen"]:,} windows), stopped: {m["stopped"]}, wall time {m["wall_s"] / 60:.1f} min |
| masking | {m["masking"]["rate"]:.0%} of tokens, span {m["masking"]["span"]}; {m["masking"]["replace"]} |
| optimizer | AdamW lr {m["config"]["lr"]}, warmup {m["config"]["warmup_ratio"]:.0%} then linear decay, seed {m["config"]["seed"]} |

## Held-out evaluation

{h["windows"]} windows from the held-out part of the corpus ({h["residues"]:,} {unit}, never trained on:
{h["rule"]}); {h["masked_tokens"]:,} masked tokens, all replaced by the mask token.

| predictor | masked-token accuracy |
|---|---|
| this model | **{h["masked_acc"]:.4f}** (loss {h["loss"]:.4f} nats, perplexity {h["perplexity"]:.3f}) |
| k-mer frequency baseline: most frequent token given {b["context_size"]} visible tokens each side | {b["context_acc"]:.4f} |
| most frequent token (`{b["most_frequent_token"]}`) | {b["unigram_acc"]:.4f} |

Baseline counts come from {b["count_windows"]:,} training windows. Loss curve: `loss.png`; every logged value: `metrics.jsonl`.

![loss curve](loss.png)

## Corpus

{source} {description}

| file | records | {unit} | sha256 |
|---|---|---|---|
{files}

Licence of the data: {licence}. Full provenance (origin and checksum of each file): `PROVENANCE.txt` of the
corpus folder (`../shared/data/<corpus>/PROVENANCE.txt` beside a genoml checkout). The model weights are released under genoml's licence (MIT).

Reproduce: {reproduce}
"""
(out / "README.md").write_text(card)
shutil.rmtree(out / "checkpoints", ignore_errors=True)
