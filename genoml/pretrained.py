"""Where genoml's embedded pretrained models live, from a checkout or an installed package.

Search order: $GENOML_MODELS_DIR, <checkout>/data/models, <sys.prefix>/share/genoml/models.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODELS = {"dna": "genoml-dna-cnn", "protein": "genoml-protein-small"}  # BENCHMARKS: pretraining


def model_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("GENOML_MODELS_DIR"):
        dirs.append(Path(os.environ["GENOML_MODELS_DIR"]))
    dirs.append(Path(__file__).resolve().parent.parent / "data" / "models")
    dirs.append(Path(sys.prefix) / "share" / "genoml" / "models")
    return dirs


def default_model_dir(alphabet: str) -> Path | None:
    """The embedded default model folder for 'dna' or 'protein', or None if none is installed."""
    name = DEFAULT_MODELS[alphabet]
    for d in model_dirs():
        if (d / name / "config.json").is_file():
            return d / name
    return None
