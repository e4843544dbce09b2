"""genoml: transfer learning on biological sequences (DNA and protein).

The public API in a few names; the CLI (`genoml --help`) is a thin layer over these:

    import genoml
    records = list(genoml.read_records(genoml.InputSpec(path="train.csv")))
    tok = genoml.build_tokenizer("kmer:6")
    genoml.run_finetune(genoml.FinetuneConfig(data=genoml.DataConfig(train="train.csv"), out="runs/x"))
    predictor, meta = genoml.load_predictor("runs/x")
    probs = predictor.scores(["ACGTACGT"])          # (N, C)

Names are imported lazily (PEP 562), so `import genoml` stays fast and torch loads only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from genoml.errors import GenomlError, InputError, UnsafeModelError  # noqa: E402

_LAZY = {
    "Record": "genoml.io",
    "InputSpec": "genoml.io",
    "read_records": "genoml.io",
    "read_fasta": "genoml.io",
    "build_tokenizer": "genoml.tokenizers",
    "load_tokenizer": "genoml.tokenizers",
    "DataConfig": "genoml.config",
    "FinetuneConfig": "genoml.config",
    "run_finetune": "genoml.finetune",
    "PretrainConfig": "genoml.config",
    "run_pretrain": "genoml.pretrain",
    "load_predictor": "genoml.runs",
    "Predictor": "genoml.inference",
}

__all__ = ["__version__", "GenomlError", "InputError", "UnsafeModelError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genoml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
