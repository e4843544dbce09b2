#!/usr/bin/env python
"""Peak RSS of `genoml predict` on generated short DNA records at growing input sizes (issue 8, load).

    python scripts/measure_predict_rss.py RUN_DIR --sizes 10000,1000000 --length 50 --out runs/bench/rss-1m

Each size runs in a fresh process under /usr/bin/time -v; prints and writes JSON (records, peak RSS, seconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_suite import peak_rss_predict, random_fasta  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--length", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/rss-1m"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s]:
        fa = random_fasta(args.out / f"rand{size}.fa", size, args.length)
        row = {"records": size, "length": args.length, **peak_rss_predict(args.run_dir, fa, args.threads)}
        fa.unlink()
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "run_dir": str(args.run_dir),
        "command": " ".join(sys.argv),
        "rows": rows,
    }
    (args.out / "rss.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
