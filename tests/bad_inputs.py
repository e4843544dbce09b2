"""Table of pathological inputs in tests/fixtures/bad/, shared by the io and CLI tests.

Each entry is (filename, kind, expected message fragment). `kind` says how the file is read;
`input_spec` turns an entry into the `InputSpec` that reads it (CLI tests map that to flags):
  fasta    InputSpec(path=file)                     (the file is a FASTA)
  table    InputSpec(path=file)                     (the file is a CSV/TSV table)
  protein  InputSpec(path=file, alphabet="protein")
  labels   InputSpec(path=file, labels=<stem>.labels.tsv)
  bed      InputSpec(bed=file, genome=<genome>)     genome: a copy of BED_GENOME (pyfaidx writes
           <genome>.fai beside it, so copy it to a tmp folder first)
Every error is an InputError (exit code 2); fragments include `file:line` where there is a line.
"""

from __future__ import annotations

from pathlib import Path

from genoml.io import InputSpec

FIXTURES = Path(__file__).parent / "fixtures"
BAD_DIR = FIXTURES / "bad"
GOOD_DIR = FIXTURES / "good"
BED_GENOME = GOOD_DIR / "genome.fa"  # chr1: 60 bp, chr2: 25 bp

BAD_INPUTS: list[tuple[str, str, str]] = [
    ("empty.fa", "fasta", "empty.fa: empty file"),
    ("blank_lines_only.fa", "fasta", "blank_lines_only.fa: empty file"),
    ("binary.fa", "fasta", "binary.fa:1: undecodable byte 0x89 at column 1 (not UTF-8 text)"),
    ("binary_nul.fa", "fasta", "binary_nul.fa:2: NUL byte at column 5"),
    ("zip.fa", "fasta", "zip-compressed input is not supported"),
    ("bzip2_truncated.fa", "fasta", "the file is truncated or corrupt"),
    ("gzip_truncated.fa.gz", "fasta", "the file is truncated or corrupt"),
    ("text_before_header.fa", "fasta", "text_before_header.fa:1: text before the first '>' header"),
    ("header_no_sequence.fa", "fasta", "header_no_sequence.fa:3: record 'seq2' has no sequence"),
    (
        "header_no_sequence_at_end.fa",
        "fasta",
        "header_no_sequence_at_end.fa:3: record 'seq2' has no sequence",
    ),
    ("empty_header.fa", "fasta", "empty_header.fa:3: empty header"),
    ("gt_in_sequence.fa", "fasta", "gt_in_sequence.fa:3: invalid character '>' at column 3"),
    ("gap_in_sequence.fa", "fasta", "gap_in_sequence.fa:3: invalid character '-' at column 5"),
    ("duplicate_ids.fa", "fasta", "duplicate_ids.fa:5: duplicate id 'a' (first at line 1)"),
    ("rna_without_flag.fa", "fasta", "rna_without_flag.fa:3: looks like RNA: 'U' at column 4; pass --rna"),
    ("protein_invalid.fa", "protein", "protein_invalid.fa:3: invalid character 'J' at column 4 of a protein"),
    ("missing_sequence_column.csv", "table", "missing_sequence_column.csv:1: no 'sequence' column"),
    ("wrong_column_count.csv", "table", "wrong_column_count.csv:3: expected 2 comma-separated columns"),
    ("duplicate_ids.tsv", "table", "duplicate_ids.tsv:4: duplicate id 'x' (first at line 2)"),
    ("header_only.csv", "table", "header_only.csv:1: no data rows after the header"),
    ("modlamp_bad_label.csv", "table", "modlamp_bad_label.csv:3: label '2' is not a class index 0..1"),
    ("labels_missing.fa", "labels", "labels_missing.fa:5: 2 record(s) have no label"),
    (
        "label_ids_without_sequence.fa",
        "labels",
        "2 id(s) have no sequence in",
    ),
    ("label_conflict.fa", "labels", "record 'a' has label 'pos' in the input but 'neg'"),
    (
        "label_table_bad_line.fa",
        "labels",
        "label_table_bad_line.labels.tsv:2: expected 2 tab-separated fields",
    ),
    ("bed_unknown_chrom.bed", "bed", "bed_unknown_chrom.bed:2: unknown chromosome 'chrX'"),
    ("bed_end_past_chrom.bed", "bed", "bed_end_past_chrom.bed:1: end 61 is past the end of chr1 (60 bp"),
    ("bed_start_not_before_end.bed", "bed", "bed_start_not_before_end.bed:1: start 10 must be < end 10"),
    (
        "bed_malformed_number.bed",
        "bed",
        "bed_malformed_number.bed:1: start 'ten' is not a non-negative integer",
    ),
    ("bed_too_few_columns.bed", "bed", "bed_too_few_columns.bed:1: expected at least 3"),
    ("bed_bad_strand.bed", "bed", "bed_bad_strand.bed:1: strand (column 6) is 'plus'"),
]


def label_table_for(filename: str) -> Path:
    """The label table that goes with a "labels" entry: <stem>.labels.tsv beside it."""
    return BAD_DIR / (filename.split(".")[0] + ".labels.tsv")


def input_spec(filename: str, kind: str, genome: Path | None = None) -> InputSpec:
    """The InputSpec that reads one BAD_INPUTS entry (`genome` is required for kind "bed")."""
    path = str(BAD_DIR / filename)
    if kind in ("fasta", "table"):
        return InputSpec(path=path)
    if kind == "protein":
        return InputSpec(path=path, alphabet="protein")
    if kind == "labels":
        return InputSpec(path=path, labels=str(label_table_for(filename)))
    if kind == "bed":
        if genome is None:
            raise ValueError("kind 'bed' needs a genome: pass a tmp copy of BED_GENOME")
        return InputSpec(bed=path, genome=str(genome))
    raise ValueError(f"unknown kind {kind!r}")
