"""Logging set-up: messages and progress bars go to stderr, never stdout (stdout is for data)."""

from __future__ import annotations

import logging
import sys

_state = {"quiet": False}


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only), 0 info, 1 debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    _state["quiet"] = verbosity < 0
    root = logging.getLogger("genoml")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("genoml: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for noisy in ("transformers", "accelerate", "peft", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:  # transformers configures its own logger on import (possibly after this): set it through its API
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    # its load reports (e.g. an MLM head unused by AutoModel) are warnings: shown with -v only
    hf_logging.set_verbosity(logging.WARNING if verbosity > 0 else logging.ERROR)
    if not progress_enabled():  # its progress bars (loading/writing weights) follow genoml's rule
        hf_logging.disable_progress_bar()


def progress_enabled() -> bool:
    """Progress bars only when not quiet and stderr is a terminal."""
    return not _state["quiet"] and sys.stderr.isatty()
