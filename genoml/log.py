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
    if not progress_enabled():  # transformers' own bars (loading/writing weights) follow genoml's rule
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass


def progress_enabled() -> bool:
    """Progress bars only when not quiet and stderr is a terminal."""
    return not _state["quiet"] and sys.stderr.isatty()
