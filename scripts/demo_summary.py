"""Print a `--model auto` run's default model beside the other candidates (used by `make demo`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(run: str = "runs/demo") -> int:
    m = json.loads((Path(run) / "metrics.json").read_text())
    print(f"{'model':<28} {'valid MCC':>9} {'test MCC':>9} {'train s':>8}")
    print(
        f"{'default (auto -> ' + m['chosen'] + ')':<28} {m['valid']['mcc']:>9.3f} {m['test']['mcc']:>9.3f} "
        f"{m.get('train_seconds', 0):>8.0f}"
    )
    for r in m["candidates"]:
        if "error" in r:
            print(f"{r['candidate']:<28} failed: {r['error']}")
            continue
        print(
            f"{r['candidate']:<28} {r['valid']['mcc']:>9.3f} {r['test']['mcc']:>9.3f} {r['train_seconds'] or 0:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
