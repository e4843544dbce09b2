"""Logging set-up: messages and progress bars go to stderr, never stdout (stdout is for data)."""

from __future__ import annotations

import logging
import re
import sys

_state = {"quiet": False}


def shorten_message(text: str, quoted: int = 80, total: int = 4000) -> str:
    """Cut long quoted values (a 1-MB record id) and very long messages, saying how long they were."""

    def cut(m: re.Match) -> str:
        q, body = m.group(1), m.group(2)
        return f"{q}{body[:quoted]}…{q} ({len(body)} characters)"

    text = re.sub(r"(['\"])([^'\"\n]{" + str(quoted + 20) + r",})\1", cut, text)
    return text if len(text) <= total else text[:total] + f"… ({len(text)} characters)"


class _ShortFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return shorten_message(super().format(record))


def setup_logging(verbosity: int = 0) -> None:
    """verbosity: -1 quiet (warnings only), 0 info, 1 debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    _state["quiet"] = verbosity < 0
    root = logging.getLogger("genoml")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ShortFormatter("genoml: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    for noisy in ("transformers", "accelerate", "peft", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # transformers configures its own logger on import (possibly after this): set it through its API
    try:
        from transformers.utils import logging as hf_logging  # heavy: transformers, at CLI start-up
    except ImportError:
        return
    # its load reports (e.g. an MLM head unused by AutoModel) are warnings: shown with -v only
    hf_logging.set_verbosity(logging.WARNING if verbosity > 0 else logging.ERROR)
    if not progress_enabled():  # its progress bars (loading/writing weights) follow genoml's rule
        hf_logging.disable_progress_bar()


def progress_enabled() -> bool:
    """Progress bars only when not quiet and stderr is a terminal."""
    return not _state["quiet"] and sys.stderr.isatty()
