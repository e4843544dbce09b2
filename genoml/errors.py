"""One error hierarchy for genoml; the CLI maps each class to an exit code.

Every message names the file/argument, what was given, what is allowed and the fix,
e.g. ``reads.fa:12: empty sequence for record 'x'; remove the record or give its bases``.
"""

from __future__ import annotations


class GenomlError(Exception):
    """Base class: an internal or environment failure (exit code 1)."""

    exit_code = 1


class InputError(GenomlError):
    """Bad user input: a malformed file, a bad flag value or combination (exit code 2)."""

    exit_code = 2


class UnsafeModelError(GenomlError):
    """A model file that could run code (pickle) or asks for remote code without opt-in (exit code 3)."""

    exit_code = 3


def where(path: object, line: int | None = None) -> str:
    """Format a ``path:line`` location for messages (``<stdin>`` for ``-``)."""
    name = "<stdin>" if str(path) == "-" else str(path)
    return f"{name}:{line}" if line is not None else name
