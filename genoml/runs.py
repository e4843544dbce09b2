"""The run directory contract: save a trained model + `genoml.json`, and load it back as a Predictor.

Transformer runs are plain transformers folders (config.json + model.safetensors + tokenizer)
plus `head.safetensors`; baselines store `model.safetensors` (cnn/rnn) or `kmer_linear.*`.
Everything is loaded from safetensors; nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from genoml import __version__
from genoml.config import BASELINE_NETS
from genoml.data import LabelSpace
from genoml.errors import InputError
from genoml.inference import Predictor

META = "genoml.json"


def versions() -> dict[str, str]:
    import transformers

    return {
        "genoml": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def prepare_run_dir(path: str | Path, *, force: bool = False, resume: bool = False, inputs=()) -> Path:
    """Create the output directory of a run: refuse a non-empty one unless --force (replace genoml's own
    outputs, see genoml.outputs) or --resume (keep)."""
    from genoml.outputs import prepare_output_dir

    return prepare_output_dir(path, flag="--out", inputs=inputs, force=force, resume=resume, kind="run")


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The `genoml.json` of a genoml folder (run, pretrain, multitask); InputError naming the file when it is
    missing or not JSON. The one reader of the run contract: every command reads it through here."""
    path = Path(folder) / META
    if not path.is_file():
        raise InputError(
            f"--model {folder}: no {META} here; is it a genoml run directory (from genoml finetune)?"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def save_model(model, folder: Path, meta: dict[str, Any]) -> None:
    """Write the model weights (safetensors) + tokenizer + genoml.json into `folder`."""
    from safetensors.torch import save_file

    if meta["arch"] == "hf":
        model.encoder.save_pretrained(folder, safe_serialization=True)
        head = {k: v.detach().contiguous().cpu() for k, v in model.classifier.state_dict().items()}
        save_file(head, str(folder / "head.safetensors"))
    elif meta["arch"] in BASELINE_NETS:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
    if model is not None and getattr(model, "tokenizer", None) is not None:
        model.tokenizer.save_pretrained(folder)
    write_meta(folder, {**meta, "versions": versions(), "command": meta.get("command") or sys.argv})


def write_meta(folder: str | Path, meta: dict[str, Any]) -> None:
    """Write `genoml.json` atomically (temporary file, then rename); the one writer of the run contract."""
    path = Path(folder) / META
    tmp = path.with_name(f".{META}.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def load_predictor(
    folder: str | Path,
    *,
    device: str = "cpu",
    batch_tokens: int = 16384,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Predictor, dict]:
    """Rebuild the trained model of a run directory as a Predictor (weights from safetensors only).

    `trust_remote_code` is needed only for a run fine-tuned from a model whose code genoml does not implement."""
    from safetensors.torch import load_file

    from genoml.checks import check_safetensors
    from genoml.kmer_linear import KmerLinear
    from genoml.models import SequenceModel, build_baseline, load_hf_encoder
    from genoml.tokenizers import load_tokenizer

    folder = Path(folder)
    meta = read_meta(folder)
    if "labels" not in meta or meta.get("kind") == "pretrained":
        raise InputError(
            f"--model {folder}: a pretrained model (genoml pretrain), not a fine-tuned run: it has no labels to "
            f"predict. Fine-tune it first (genoml finetune DATA --model {folder} --out RUN) and use RUN; "
            "for embeddings use genoml embed"
        )
    for needed in ("head.safetensors",) if meta.get("arch") == "hf" else ():
        if not (folder / needed).is_file():
            raise InputError(
                f"--model {folder}: {needed} is missing (an incomplete or damaged run folder); "
                "re-run genoml finetune"
            )
    if meta.get("arch") in BASELINE_NETS and not (folder / "model.safetensors").is_file():
        raise InputError(
            f"--model {folder}: model.safetensors is missing (an incomplete or damaged run folder); "
            "re-run genoml finetune"
        )
    from genoml.models import check_safe_weights

    check_safe_weights(folder)  # a pickle that could run code is exit 3, before any "corrupt file" message
    check_safetensors(folder)
    labels = LabelSpace(**meta["labels"])
    dev = torch.device(device)
    common = dict(
        labels=labels,
        max_tokens=meta.get("max_tokens", 512),
        stride=meta.get("stride"),
        aggregate=meta.get("aggregate", "mean"),
        rc_average=meta.get("rc_average", False),
        batch_tokens=batch_tokens,
        device=dev,
    )
    if meta["arch"] == "kmer-linear":
        return Predictor(None, kmer=KmerLinear.load(folder), **common), meta
    tokenizer = load_tokenizer(folder)
    if meta["arch"] == "hf":
        encoder = load_hf_encoder(str(folder), revision=revision, trust_remote_code=trust_remote_code)
        model = SequenceModel(
            "hf",
            encoder,
            labels.n_out,
            tokenizer=tokenizer,
            labels=labels.names,
            task=labels.task,
            pooling=meta.get("pooling", "mean"),
            head=meta.get("head", "linear"),
        )
        model.classifier.load_state_dict(load_file(str(folder / "head.safetensors")))
    else:
        model = build_baseline(
            meta["arch"],
            tokenizer,
            labels.n_out,
            labels=labels.names,
            task=labels.task,
            head=meta.get("head", "linear"),
        )
        try:
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
        except RuntimeError as e:  # e.g. a `cnn` run saved by genoml before its architecture changed
            raise InputError(
                f"{folder}: its {meta['arch']} weights do not fit this genoml's {meta['arch']} architecture (saved "
                f"by genoml {meta.get('versions', {}).get('genoml', '?')}); re-run finetune with this version "
                f"({str(e).splitlines()[0][:120]})"
            ) from None
    model.to(dev).eval()
    return Predictor(model, tokenizer=tokenizer, **common), meta
