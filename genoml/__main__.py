"""`python -m genoml` = the `genoml` command (works under torchrun / accelerate launch)."""

from genoml.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
