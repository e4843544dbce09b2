"""genoml: transfer learning on biological sequences (DNA and protein).

The public API in a few names; the CLI (`genoml --help`) is a thin layer over these.
"""

__version__ = "0.1.0"

from genoml.errors import GenomlError, InputError, UnsafeModelError  # noqa: E402

__all__ = ["__version__", "GenomlError", "InputError", "UnsafeModelError"]
