"""Checkpoints on disk, with no pickle: atomic step folders that make a resumed run exact.

`write_checkpoint(root, step, ...)` writes `root/step-NNNNNN.tmp/` (model, best and averaged weights as safetensors,
optimizer/scheduler state as weights-only torch files, every rank's RNG state, `state.json`), writes
`COMPLETE` last, renames it to `root/step-NNNNNN/` and prunes older complete ones; `read_checkpoint`
reads one back for a rank; `latest_checkpoint` finds the newest complete one. Tied weights are stored
once (`save_tensors` keeps aliases), so they come back tied.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

CHECKPOINT_DIR = "checkpoints"
COMPLETE = "COMPLETE"


# ---------------------------------------------------------------- tensors and RNG states


def save_tensors(state: dict[str, torch.Tensor], path: Path) -> None:
    """state_dict -> safetensors; tensors sharing storage (tied weights) are stored once, as aliases."""
    seen: dict[tuple, str] = {}
    storages: set[int] = set()
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, t in state.items():
        ptr = t.untyped_storage().data_ptr()
        key = (ptr, t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        t = t.detach().to("cpu")
        # another view of an already stored storage (or a non-contiguous one) is stored as its own copy
        tensors[name] = t.clone() if (t.numel() and ptr in storages) or not t.is_contiguous() else t
        storages.add(ptr)
    save_file(tensors, str(path), metadata={"aliases": json.dumps(aliases)})


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The state_dict `save_tensors` wrote, aliases restored as the same tensor."""
    with safe_open(str(path), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
        aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
    state.update({name: state[target] for name, target in aliases.items()})
    return state


def rng_state() -> dict[str, Any]:
    """This process's RNG states: python/numpy as JSON-able lists, torch (and CUDA) as tensors."""
    np_state = np.random.get_state()
    state = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def finite(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf become None."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


# ---------------------------------------------------------------- step folders


def _complete_steps(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.glob("step-*") if p.name[5:].isdigit() and (p / COMPLETE).is_file()),
        key=lambda p: int(p.name[5:]),
    )


def latest_checkpoint(out_dir: Path) -> Path | None:
    """Newest `checkpoints/step-NNNNNN` folder holding a COMPLETE marker (incomplete ones are ignored)."""
    root = Path(out_dir) / CHECKPOINT_DIR
    done = _complete_steps(root) if root.is_dir() else []
    return done[-1] if done else None


def _write_rng(folder: Path, rngs: list[dict]) -> None:
    tensors = {f"torch.{r}": s["torch"] for r, s in enumerate(rngs)}
    for r, s in enumerate(rngs):
        tensors.update({f"cuda.{r}.{i}": t for i, t in enumerate(s.get("cuda", []))})
    save_file(tensors, str(folder / "rng.safetensors"))
    (folder / "rng.json").write_text(json.dumps([{k: s[k] for k in ("python", "numpy")} for s in rngs]))


def prune(root: Path, keep: int) -> None:
    """Keep the newest `keep` complete checkpoints; drop the rest and any stale `.tmp` folder."""
    for old in _complete_steps(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob("step-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def write_checkpoint(
    root: Path,
    step: int,
    *,
    model: dict[str, torch.Tensor],
    best: dict[str, torch.Tensor] | None,
    optimizer: dict,
    scheduler: dict,
    rngs: list[dict],
    meta: dict,
    keep: int,
    average: dict[str, torch.Tensor] | None = None,
) -> tuple[Path, bool]:
    """Write `root/step-NNNNNN/` atomically (COMPLETE last, then rename) and prune. -> (folder, rewritten),
    `rewritten` when that step's folder existed (e.g. its final state after early stopping)."""
    final = root / f"step-{step:06d}"
    tmp = root / f"{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_tensors(model, tmp / "model.safetensors")
    if best is not None:
        save_tensors(best, tmp / "best.safetensors")
    if average is not None:
        save_tensors(average, tmp / "average.safetensors")
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save(scheduler, tmp / "scheduler.pt")
    _write_rng(tmp, rngs)
    (tmp / "state.json").write_text(json.dumps(finite(meta)) + "\n")
    with open(tmp / COMPLETE, "w") as f:
        f.write(f"step {step}\n")
        f.flush()
        os.fsync(f.fileno())
    rewritten = final.exists()
    if rewritten:
        shutil.rmtree(final)
    os.rename(tmp, final)
    prune(root, keep)
    return final, rewritten


@dataclass
class SavedState:
    """One rank's view of a checkpoint. `rng` is None when the checkpoint has no state for this rank."""

    meta: dict
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict
    scheduler: dict
    rng: dict | None
    average: dict[str, torch.Tensor] | None = None  # the weight average (TrainConfig.ema_decay)


def read_checkpoint(ckpt: Path, rank: int = 0) -> SavedState:
    """Read a step folder back (weights-only torch loading, safetensors for tensors)."""
    meta = json.loads((ckpt / "state.json").read_text())
    best = load_tensors(ckpt / "best.safetensors") if (ckpt / "best.safetensors").is_file() else None
    rng = None
    py = json.loads((ckpt / "rng.json").read_text())
    if rank < len(py):
        with safe_open(str(ckpt / "rng.safetensors"), framework="pt") as f:
            rng = {**py[rank], "torch": f.get_tensor(f"torch.{rank}")}
            keys = [k for k in f.keys() if k.startswith(f"cuda.{rank}.")]  # noqa: SIM118
            if keys:
                rng["cuda"] = [f.get_tensor(k) for k in sorted(keys, key=lambda k: int(k.split(".")[2]))]
    return SavedState(
        meta=meta,
        model=load_tensors(ckpt / "model.safetensors"),
        best=best,
        optimizer=torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True),
        scheduler=torch.load(ckpt / "scheduler.pt", map_location="cpu", weights_only=True),
        rng=rng,
        average=load_tensors(ckpt / "average.safetensors")
        if (ckpt / "average.safetensors").is_file()
        else None,
    )
