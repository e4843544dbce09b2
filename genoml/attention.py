"""`genoml attention`: explain chosen records of a trained run (attention maps, per-base tracks).

Glue between the run directory (`genoml.runs.load_predictor`) and `genoml.interpret.explain`.
"""

from __future__ import annotations

import logging
from itertools import islice

from genoml import runs
from genoml.device import resolve_device
from genoml.errors import InputError
from genoml.interpret import explain
from genoml.io import read_records
from genoml.outputs import discard_outputs, prepare_output_dir, record_outputs

log = logging.getLogger(__name__)

METHODS = ("attention", "rollout", "grad-input", "integrated-gradients")


def _index(value: str, flag: str) -> int | str:
    if value in ("all", "mean"):
        return "mean"
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{flag} {value}: give an integer or 'all'") from None


def run_attention(
    model: str,
    spec,
    out: str,
    *,
    ids=None,
    layer="-1",
    head="all",
    methods=("attention",),
    limit: int = 10,
    force: bool = False,
    device: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
) -> dict:
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise InputError(f"--method {','.join(bad) or '(empty)'}: use one or more of {', '.join(METHODS)}")
    predictor, meta = runs.load_predictor(
        model, device=str(resolve_device(device)), trust_remote_code=trust_remote_code, revision=revision
    )
    if predictor.model is None:
        raise InputError(
            f"--model {model}: a kmer-linear baseline has no per-base attributions; use a neural model"
        )
    no_attention = predictor.model.arch != "hf" or attention_free(predictor.model.encoder)
    if no_attention and {"attention", "rollout"} & set(methods):
        kept = [m for m in methods if m not in ("attention", "rollout")] or ["grad-input"]
        what = (
            f"the '{predictor.model.arch}' baseline"
            if predictor.model.arch != "hf"
            else "this encoder (HyenaDNA)"
        )
        log.warning(
            "--method: %s has no attention maps; skipping attention/rollout, using %s", what, ", ".join(kept)
        )
        methods = kept
    if spec.alphabet == "auto":
        spec.alphabet = meta.alphabet or "auto"
    records = read_records(spec)
    if ids:
        wanted = set(ids)
        records = [r for r in records if r.id in wanted]
        missing = wanted - {r.id for r in records}
        if missing:
            raise InputError(f"--ids: not found in {spec.path or spec.bed}: {', '.join(sorted(missing)[:5])}")
    else:
        records = list(islice(records, limit))
    layer_i, head_i = _index(layer, "--layer"), _index(head, "--head")
    folder = prepare_output_dir(
        out, flag="--out", inputs=[spec.path, spec.bed, spec.genome, model], force=force, kind="attention"
    )
    try:
        summary = explain(
            predictor.model,
            records,
            folder,
            methods=tuple(methods),
            layer=layer_i,
            head=head_i,
            max_tokens=predictor.max_tokens,
            stride=predictor.stride,
        )
    except BaseException:
        discard_outputs(folder)
        raise
    record_outputs(folder)
    log.info("explained %d records into %s", len(records), out)
    return summary


def attention_free(encoder) -> bool:
    """True for encoders that mix positions without attention (their config says `attention_free`: HyenaDNA, ConvLM)."""
    return bool(getattr(getattr(encoder, "config", None), "attention_free", False))
