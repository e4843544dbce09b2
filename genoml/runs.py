"""The run directory contract: save a trained model + `genoml.json`, and load it back as a Predictor.

Transformer runs are plain transformers folders (config.json + model.safetensors + tokenizer)
plus `head.safetensors`; baselines store `model.safetensors` (cnn/rnn) or `kmer_linear.*`.
Everything is loaded from safetensors; nothing is unpickled.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from genoml import __version__
from genoml.checks import check_safetensors
from genoml.config import BASELINE_NETS, write_json
from genoml.data import LabelSpace
from genoml.errors import InputError
from genoml.inference import Predictor
from genoml.kmer_linear import KmerLinear
from genoml.models import SequenceModel, build_baseline, check_safe_weights, load_hf_encoder
from genoml.outputs import prepare_output_dir
from genoml.tokenizers import load_tokenizer

META = "genoml.json"


def versions() -> dict[str, str]:
    import transformers  # heavy: loaded only when a run is saved

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
    return prepare_output_dir(path, flag="--out", inputs=inputs, force=force, resume=resume, kind="run")


@dataclass
class RunMeta:
    """The run contract: what `genoml.json` holds, typed. One writer (`write`) and one reader (`read`).

    Every genoml folder has one: `kind` "finetuned" (a run that predicts: `labels` and the inference
    settings below), "pretrained" (a masked-LM folder: `pretrain`), or "multitask" (a supervised trunk:
    `multitask`). JSON layout: the fields below at the top level, None-valued optional ones left out, plus
    the keys of `extra` (records of one kind of folder: corpus, held-out curve, data hashes, the auto
    comparison...), so folders written by earlier versions read back unchanged.
    """

    kind: str  # finetuned | pretrained | multitask
    arch: str  # hf | a baseline net | kmer-linear, or the model_type of a pretrained folder
    alphabet: str | None = None  # dna | protein
    tokenizer: str | None = None  # tokenizer spec (char, kmer:6, esm, hf, ...)
    max_tokens: int | None = None
    labels: LabelSpace | None = None  # finetuned runs: what the head predicts
    stride: int | None = None  # windowing of long sequences at inference (None: non-overlapping)
    aggregate: str = "mean"  # windows -> sequence: mean | max
    rc_average: bool = False  # average both strands at inference
    threshold: float = 0.5
    pooling: str = "mean"
    head: str = "linear"
    strategy: str | None = None
    source_model: str | None = None
    revision: str | None = None
    seed: int | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the command's config dataclass, as a dict
    command: list[str] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def predicts(self) -> bool:
        """A fine-tuned run (has labels), as opposed to a pretrained or multitask trunk."""
        return self.labels is not None and self.kind != "pretrained"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.name not in _ALWAYS):
                continue
            out[f.name] = value.to_dict() if isinstance(value, LabelSpace) else value
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = META) -> RunMeta:
        names = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in ("kind", "arch") if k not in d and not (k == "kind" and "labels" in d)]
        if missing:
            raise InputError(f"{where}: no {' or '.join(missing)} field; not a genoml.json written by genoml")
        known = {k: v for k, v in d.items() if k in names}
        known.setdefault("kind", "finetuned")
        if known.get("labels") is not None:
            known["labels"] = LabelSpace(**known["labels"])
        return cls(**known, extra={k: v for k, v in d.items() if k not in names})

    @classmethod
    def read(cls, folder: str | Path) -> RunMeta:
        """The `genoml.json` of a genoml folder; InputError naming the file when it is missing or not JSON."""
        path = Path(folder) / META
        if not path.is_file():
            raise InputError(
                f"--model {folder}: no {META} here; is it a genoml run directory (from genoml finetune)?"
            )
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise InputError(f"{path}: not a JSON object")
        return cls.from_json(d, where=str(path))

    @classmethod
    def peek(cls, folder: str | Path) -> RunMeta | None:
        """The folder's RunMeta, or None when it has no `genoml.json` or one without an `arch` (a folder genoml
        did not write as a run); InputError for a `genoml.json` that is not JSON."""
        path = Path(folder) / META
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        return cls.from_json(d, where=str(path)) if isinstance(d, dict) and "arch" in d else None

    def write(self, folder: str | Path) -> None:
        """Write `genoml.json` atomically, stamped with the versions of genoml, torch and transformers."""
        self.versions = self.versions or versions()
        write_json(Path(folder) / META, self.to_json())


_ALWAYS = ("kind", "arch")


def save_model(model, folder: Path, meta: RunMeta) -> None:
    """Write the model weights (safetensors) + tokenizer + genoml.json into `folder`."""
    if meta.arch == "hf":
        model.encoder.save_pretrained(folder, safe_serialization=True)
        head = {k: v.detach().contiguous().cpu() for k, v in model.classifier.state_dict().items()}
        save_file(head, str(folder / "head.safetensors"))
    elif meta.arch in BASELINE_NETS:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))
    if model is not None and getattr(model, "tokenizer", None) is not None:
        model.tokenizer.save_pretrained(folder)
    meta.command = meta.command or sys.argv
    meta.write(folder)


def load_predictor(
    folder: str | Path,
    *,
    device: str = "cpu",
    batch_tokens: int = 16384,
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> tuple[Predictor, RunMeta]:
    """Rebuild the trained model of a run directory as a Predictor (weights from safetensors only).

    `trust_remote_code` is needed only for a run fine-tuned from a model whose code genoml does not implement."""
    folder = Path(folder)
    meta = RunMeta.read(folder)
    check_run_folder(folder, meta)
    dev = torch.device(device)
    common = dict(
        labels=meta.labels,
        max_tokens=meta.max_tokens or 512,
        stride=meta.stride,
        aggregate=meta.aggregate,
        rc_average=meta.rc_average,
        batch_tokens=batch_tokens,
        device=dev,
    )
    if meta.arch == "kmer-linear":
        return Predictor(None, kmer=KmerLinear.load(folder), **common), meta
    tokenizer = load_tokenizer(folder)
    model = _load_network(folder, meta, tokenizer, revision=revision, trust_remote_code=trust_remote_code)
    model.to(dev).eval()
    return Predictor(model, tokenizer=tokenizer, **common), meta


def check_run_folder(folder: Path, meta: RunMeta) -> None:
    """InputError (exit 2) unless `folder` is a complete fine-tuned run; exit 3 for a weights file that could
    run code (checked before any "corrupt file" message)."""
    if not meta.predicts:
        raise InputError(
            f"--model {folder}: a pretrained model (genoml pretrain), not a fine-tuned run: it has no labels to "
            f"predict. Fine-tune it first (genoml finetune DATA --model {folder} --out RUN) and use RUN; "
            "for embeddings use genoml embed"
        )
    needed = {"hf": "head.safetensors", **dict.fromkeys(BASELINE_NETS, "model.safetensors")}.get(meta.arch)
    if needed and not (folder / needed).is_file():
        raise InputError(
            f"--model {folder}: {needed} is missing (an incomplete or damaged run folder); re-run genoml finetune"
        )
    check_safe_weights(folder)
    check_safetensors(folder)


def _load_network(folder: Path, meta: RunMeta, tokenizer, *, revision, trust_remote_code) -> SequenceModel:
    """The fine-tuned network of a transformer or cnn/rnn run, weights loaded."""
    labels = meta.labels
    if meta.arch == "hf":
        encoder = load_hf_encoder(str(folder), revision=revision, trust_remote_code=trust_remote_code)
        model = SequenceModel(
            "hf",
            encoder,
            labels.n_out,
            tokenizer=tokenizer,
            labels=labels.names,
            task=labels.task,
            pooling=meta.pooling,
            head=meta.head,
        )
        model.classifier.load_state_dict(load_file(str(folder / "head.safetensors")))
        return model
    model = build_baseline(
        meta.arch, tokenizer, labels.n_out, labels=labels.names, task=labels.task, head=meta.head
    )
    try:
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except RuntimeError as e:  # e.g. a `cnn` run saved by genoml before its architecture changed
        raise InputError(
            f"{folder}: its {meta.arch} weights do not fit this genoml's {meta.arch} architecture (saved "
            f"by genoml {meta.versions.get('genoml', '?')}); re-run finetune with this version "
            f"({str(e).splitlines()[0][:120]})"
        ) from None
    return model
