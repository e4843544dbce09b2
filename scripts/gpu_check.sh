#!/usr/bin/env bash
# One-GPU check of every genoml command that runs a model (issue 14). Under 6 minutes on one H100/H200.
#
#   bash scripts/gpu_check.sh            # on CUDA: pretrain throughput probes (base, small presets) with MFU,
#                                        # finetune (cnn; tiny transformer probe/lora/full), predict, evaluate,
#                                        # embed, attention and a two-model bench
#   bash scripts/gpu_check.sh --cpu      # the same commands on the CPU with tiny sizes (part of the test suite)
#   bash scripts/gpu_check.sh --compile  # also a base-preset probe with `pretrain --compile` (adds ~1-2 min)
#
# Runs from the checkout with PYTHONPATH=. on the machine's own torch (installs nothing; $PYTHON, else python3),
# makes its own data in a temporary folder, prints one table (command, ok/failed, rate, MFU) and exits
# non-zero when any command failed. MFU = 6 x parameters x tokens/s / peak dense bf16 FLOP/s of the GPU
# (H100 and H200: 989e12; another GPU: no MFU, flagged in the table).
set -u
cd "$(dirname "$0")/.."
MODE=cuda
COMPILE=0
for arg in "$@"; do
  case "$arg" in
    --cpu) MODE=cpu ;;
    --compile) COMPILE=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $arg (use --cpu or --compile)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false MPLBACKEND=Agg
WORK="$(mktemp -d -t genoml-gpu-check-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
if [ "$MODE" = cuda ] && command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" - "$MODE" "$WORK" "$COMPILE" <<'PYEOF'
import gc
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

mode, work, with_compile = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
cpu = mode == "cpu"
if not cpu and not torch.cuda.is_available():
    print("gpu_check: no CUDA device visible to torch; run with --cpu for the CPU check", file=sys.stderr)
    sys.exit(2)
device = "cpu" if cpu else "cuda"
if cpu:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

from genoml.cli import main as genoml  # noqa: E402
from genoml.log import setup_logging  # noqa: E402

PEAKS = {"H100": 989e12, "H200": 989e12}  # dense bf16 FLOP/s
gpu = torch.cuda.get_device_name(0) if not cpu else "cpu"
peak = next((v for k, v in PEAKS.items() if k in gpu.upper()), None)
print(f"gpu_check: {mode} on {gpu}; torch {torch.__version__}; work folder {work}", flush=True)

# ---------------------------------------------------------------- data (made here, no downloads)
rng = np.random.default_rng(0)
bases = np.frombuffer(b"ACGT", dtype=np.uint8)
genome = work / "genome.fa"
n_rec, rec_len = (2, 20_000) if cpu else (4, 500_000)
with open(genome, "w") as fh:
    for i in range(n_rec):
        fh.write(f">chr{i}\n{bases[rng.integers(0, 4, rec_len)].tobytes().decode()}\n")
MOTIF = "TATAATGC"


def labelled(n: int, length: int, seed: int) -> list[tuple[str, str]]:
    r = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s = bases[r.integers(0, 4, length)].tobytes().decode()
        if i % 2:
            p = int(r.integers(0, length - len(MOTIF)))
            s = s[:p] + MOTIF + s[p + len(MOTIF):]
        rows.append((s, str(i % 2)))
    return rows


n_train, n_eval, seq_len = (48, 16, 40) if cpu else (4000, 500, 200)
splits = {"train": labelled(n_train, seq_len, 1), "valid": labelled(n_eval, seq_len, 2),
          "test": labelled(n_eval, seq_len, 3)}
for name, rows in splits.items():
    (work / f"{name}.csv").write_text("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rows))
(work / "test.fa").write_text("".join(f">t{i}\n{s}\n" for i, (s, _) in enumerate(splits["test"])))

# a tiny transformer masked LM (random init) for the transformer finetune strategies
from genoml.presets import build_mlm_model  # noqa: E402
from genoml.tokenizers import build_tokenizer  # noqa: E402

tiny = work / "tiny-mlm"
tok = build_tokenizer("char")
torch.manual_seed(0)
build_mlm_model("tiny" if cpu else "mini", tok, seq_len + 2, "esm").save_pretrained(tiny)
tok.save_pretrained(tiny)

# ---------------------------------------------------------------- the checks
rows: list[tuple[str, str, str, str]] = []


def run(name: str, argv: list[str], rate=None) -> bool:
    """Run `genoml argv` in this process; rate(wall_s) -> (rate text, MFU text)."""
    setup_logging(-1)
    t0 = time.time()
    try:
        code = genoml(argv)
        ok = code == 0
        err = "" if ok else f"exit {code}"
    except BaseException as e:  # noqa: BLE001 - every failure becomes a table row
        ok, err = False, f"{type(e).__name__}: {str(e)[:120]}"
        traceback.print_exc()
    wall = time.time() - t0
    text, mfu = "", ""
    if ok and rate is not None:
        try:
            text, mfu = rate(wall)
        except Exception as e:  # noqa: BLE001
            ok, err = False, f"no rate: {type(e).__name__}: {e}"
    rows.append((name, "ok" if ok else f"FAILED ({err})", text, mfu))
    print(f"gpu_check: {name}: {'ok' if ok else 'FAILED ' + err} in {wall:.1f}s", flush=True)
    gc.collect()
    if not cpu:
        torch.cuda.empty_cache()
    return ok


def pretrain_rate(out: Path):
    def rate(wall):
        recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        tps = [r["tokens_per_s"] for r in recs if r.get("event") == "train" and "tokens_per_s" in r]
        steady = tps[-1]  # the last logging window: after warm-up (and compilation)
        params = json.loads((out / "genoml.json").read_text())["parameters"]
        if peak is None:
            mfu = "n/a (cpu)" if cpu else f"n/a (no peak for {gpu})"
        else:
            mfu = f"{100 * 6 * params * steady / peak:.1f}%"
        return f"{steady:,.0f} tokens/s ({params / 1e6:.1f}M params)", mfu
    return rate


def per_s(n: int, what: str = "seq"):
    return lambda wall: (f"{n / wall:,.1f} {what}/s (wall)", "")


def finetune_rate(out: Path):
    def rate(wall):
        m = json.loads((out / "metrics.json").read_text())
        hist = json.loads((out / "history.json").read_text())
        steps = max((r.get("step", 0) for r in hist), default=0)
        return f"{steps * batch / max(m['train_seconds'], 1e-9):,.1f} train seq/s", ""
    return rate


# pretraining throughput probes: (label, preset, window, batch, steps, log every)
probes = ([("pretrain base", "tiny", 32, 4, 2, 1), ("pretrain small", "tiny", 32, 8, 2, 1)] if cpu else
          [("pretrain base", "base", 512, 128, 60, 20), ("pretrain small", "small", 512, 256, 150, 50)])
if with_compile:
    probes.append(("pretrain base --compile", *probes[0][1:]))
for label, preset, window, batch_size, steps, log_every in probes:
    out = work / label.replace(" ", "-")
    run(f"{label} ({preset}, window {window}, batch {batch_size})",
        ["pretrain", str(genome), "--preset", preset, "--window", str(window), "--batch-size", str(batch_size),
         "--max-steps", str(steps), "--log-every", str(log_every), "--eval-every", str(steps),
         "--checkpoint-every", str(steps), "--eval-windows", "4" if cpu else "256", "--device", device,
         "--out", str(out), "--force", *(["--compile"] if "compile" in label else [])],
        pretrain_rate(out))

train, valid, test = (str(work / f"{n}.csv") for n in ("train", "valid", "test"))
epochs, batch = ("1", 16) if cpu else ("2", 64)
common = ["--valid", valid, "--test", test, "--epochs", epochs, "--batch-size", str(batch),
          "--device", device, "--no-baselines", "--force"]
run("finetune cnn", ["finetune", train, "--model", "cnn", "--out", str(work / "ft-cnn"), *common],
    finetune_rate(work / "ft-cnn"))
for strategy in ("probe", "lora", "full"):
    out = work / f"ft-{strategy}"
    run(f"finetune transformer {strategy}",
        ["finetune", train, "--model", str(tiny), "--strategy", strategy, "--out", str(out), "--no-attention",
         *common],
        finetune_rate(out))
full = str(work / "ft-full")
n_test = len(splits["test"])
n_attn = 1 if cpu else 4
run("predict", ["predict", "--model", full, str(work / "test.fa"), "-o", str(work / "pred.tsv"), "--device", device],
    per_s(n_test))
run("evaluate", ["evaluate", test, "--model", full, "--out", str(work / "eval"), "--device", device], per_s(n_test))
run("embed", ["embed", str(work / "test.fa"), "--model", full, "-o", str(work / "emb.npz"), "--device", device],
    per_s(n_test))
run("attention", ["attention", str(work / "test.fa"), "--model", full, "--out", str(work / "attn"), "--limit", str(n_attn),
                  "--device", device], per_s(n_attn))
run("bench (cnn, transformer probe)",
    ["bench", train, "--valid", valid, "--test", test, "--models", f"cnn,{tiny}:probe", "--seeds", "1",
     "--epochs", "1", "--device", device, "--out", str(work / "bench"), "--force"], per_s(2, "runs"))

# ---------------------------------------------------------------- the table
print()
print(f"genoml gpu_check ({mode}, {gpu})")
print("| command | status | rate | MFU |")
print("|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
failed = [r[0] for r in rows if r[1] != "ok"]
print(f"\n{len(rows) - len(failed)} ok, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
sys.exit(1 if failed else 0)
PYEOF
exit $?
