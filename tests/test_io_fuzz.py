"""Property tests for genoml.io: no input crashes the readers with anything but InputError, and
records written as FASTA/CSV in any encoding read back identical."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genoml.errors import InputError
from genoml.io import InputSpec, read_fasta, read_records, read_table

# GENOML_FUZZ_EXAMPLES=5000 for a longer hunt
FUZZ = settings(
    max_examples=int(os.environ.get("GENOML_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# bytes that look a bit like FASTA/CSV, so the parsers get past their first checks
fastaish = st.lists(
    st.sampled_from([b">", b"a", b"ACGT", b"N", b"U", b"\n", b"\r\n", b"\r", b" ", b"\t", b",", b"*", b"-"])
    | st.sampled_from([b"label=x", b"sequence,label\n", b"\x00", b"\xff", b"\xc3\xa9", b"\x1f\x8b", b"MKV"])
    | st.binary(max_size=4),
    max_size=40,
).map(b"".join)
any_bytes = st.binary(max_size=300) | fastaish | fastaish.map(gzip.compress)
truncated_gzip = st.tuples(fastaish, st.integers(min_value=0, max_value=200)).map(
    lambda pair: gzip.compress(pair[0])[: pair[1]]
)


def read_all(data: bytes, reader, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        try:
            list(reader(path))
        except InputError:
            pass  # the only exception a user may ever see from a reader


@FUZZ
@given(
    data=any_bytes | truncated_gzip,
    lenient=st.booleans(),
    alphabet=st.sampled_from(["auto", "dna", "protein"]),
)
def test_read_fasta_raises_only_input_error(data, lenient, alphabet):
    read_all(data, lambda p: read_fasta(p, alphabet=alphabet, lenient=lenient), ".fa")


@FUZZ
@given(data=any_bytes | truncated_gzip, lenient=st.booleans())
def test_read_table_and_read_records_raise_only_input_error(data, lenient):
    read_all(data, lambda p: read_table(p, lenient=lenient), ".csv")
    read_all(data, lambda p: read_records(InputSpec(path=str(p), lenient=lenient)), ".txt")


ids = st.from_regex(r"[A-Za-z0-9_.|:\-]{1,12}", fullmatch=True)
labels = st.none() | st.from_regex(r"[A-Za-z0-9_;.\-]{1,8}", fullmatch=True)
dna = st.text(alphabet="ACGTNacgtn", min_size=1, max_size=200)
records = st.lists(st.tuples(ids, dna, labels), min_size=1, max_size=8, unique_by=lambda r: r[0])


def expected(recs) -> list[tuple]:
    return [(rid, seq.upper(), label, ("has_N",) if "N" in seq.upper() else ()) for rid, seq, label in recs]


@FUZZ
@given(
    recs=records,
    width=st.integers(min_value=1, max_value=90) | st.none(),
    newline=st.sampled_from(["\n", "\r\n"]),
    compress=st.booleans(),
    blank_lines=st.booleans(),
)
def test_fasta_round_trip(recs, width, newline, compress, blank_lines):
    lines = []
    for rid, seq, label in recs:
        lines.append(f">{rid}" + (f" desc label={label}" if label is not None else ""))
        step = width or len(seq)
        lines += [seq[i : i + step] for i in range(0, len(seq), step)]
        if blank_lines:
            lines.append("")
    data = (newline.join(lines) + newline).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.fa"
        path.write_bytes(gzip.compress(data) if compress else data)
        got = [(r.id, r.seq, r.label, r.flags) for r in read_fasta(path, alphabet="dna")]
    assert got == expected(recs)


@FUZZ
@given(recs=records, delimiter=st.sampled_from([",", "\t"]), newline=st.sampled_from(["\n", "\r\n"]))
def test_table_round_trip(recs, delimiter, newline):
    rows = [delimiter.join(["label", "id", "sequence"])]
    rows += [delimiter.join([label or "", rid, f" {seq} "]) for rid, seq, label in recs]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.csv"
        path.write_bytes((newline.join(rows) + newline).encode())
        got = [(r.id, r.seq, r.label, r.flags) for r in read_table(path, alphabet="dna")]
    assert got == expected(recs)
