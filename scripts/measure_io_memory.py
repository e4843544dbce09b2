"""Measure streaming cost of genoml.io.read_fasta: bases/s and peak RSS over the shared genomes.

Usage: python scripts/measure_io_memory.py [FOLDER]   (default ../shared/data/dna_genomes)
Prints one JSON object: files, records, total Mbp, largest record, seconds, peak RSS (MiB)
before and after reading (ru_maxrss is the process high-water mark).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from genoml.io import read_fasta

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "dna_genomes"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(folder: Path) -> dict:
    files = sorted(folder.glob("**/*.gz"))
    if not files:
        raise SystemExit(f"{folder}: no *.gz files")
    before = peak_rss_mib()
    records = bases = largest = 0
    start = time.perf_counter()
    for path in files:
        for rec in read_fasta(path, alphabet="dna"):
            records += 1
            bases += len(rec.seq)
            largest = max(largest, len(rec.seq))
    seconds = time.perf_counter() - start
    return {
        "folder": str(folder),
        "files": len(files),
        "records": records,
        "total_mbp": round(bases / 1e6, 2),
        "largest_record_mbp": round(largest / 1e6, 2),
        "seconds": round(seconds, 2),
        "mbp_per_s": round(bases / 1e6 / seconds, 1),
        "peak_rss_mib_before": round(before, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT), indent=2))
