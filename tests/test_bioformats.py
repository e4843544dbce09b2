"""GenBank, EMBL and FASTQ through Biopython, and bzip2/xz/zstd input, read into the same Records as FASTA."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from genoml.errors import InputError
from genoml.io import InputSpec, read_records

GOOD = Path(__file__).parent / "fixtures" / "good"

GENBANK = """LOCUS       seqA                      12 bp    DNA     linear   SYN 01-JAN-2000
DEFINITION  first test record.
ACCESSION   seqA
VERSION     seqA.1
FEATURES             Location/Qualifiers
     source          1..12
                     /label="promoter"
ORIGIN
        1 acgtacgtac gt
//
LOCUS       seqB                       8 bp    DNA     linear   SYN 01-JAN-2000
DEFINITION  second test record.
ACCESSION   seqB
VERSION     seqB.1
FEATURES             Location/Qualifiers
     source          1..8
                     /label="background"
ORIGIN
        1 ttttnnaa
//
"""

EMBL = """ID   seqE; SV 1; linear; DNA; STD; SYN; 8 BP.
XX
AC   seqE;
XX
DE   an EMBL record label=yes
XX
SQ   Sequence 8 BP; 2 A; 2 C; 2 G; 2 T; 0 other;
     acgtacgt                                                           8
//
"""

FASTQ = "@r1 label=1\nACGTAC\n+\nIIIIII\n@r2 label=0\nGGGTTT\n+\nIIIIII\n"


def _read(path: Path, **kw) -> list:
    return list(read_records(InputSpec(path=str(path), **kw)))


def test_genbank_records_and_labels_from_qualifiers(tmp_path):
    recs = _read(tmp_path.joinpath("x.gb").write_text(GENBANK) and tmp_path / "x.gb")
    assert [(r.id, r.seq, r.label) for r in recs] == [
        ("seqA.1", "ACGTACGTACGT", "promoter"),
        ("seqB.1", "TTTTNNAA", "background"),
    ]
    assert recs[0].where.endswith("x.gb:1")
    assert "has_N" in recs[1].flags


def test_embl_label_from_description(tmp_path):
    path = tmp_path / "x.embl"
    path.write_text(EMBL)
    (rec,) = _read(path)
    assert (rec.seq, rec.label) == ("ACGTACGT", "yes")


def test_fastq_reads_like_fasta(tmp_path):
    path = tmp_path / "x.fq"
    path.write_text(FASTQ)
    recs = _read(path)
    assert [(r.id, r.seq, r.label) for r in recs] == [("r1", "ACGTAC", "1"), ("r2", "GGGTTT", "0")]


def test_fastq_duplicate_id_is_an_error(tmp_path):
    path = tmp_path / "dup.fq"
    path.write_text(FASTQ.replace("@r2", "@r1"))
    with pytest.raises(InputError, match="duplicate id 'r1'"):
        _read(path)


def test_broken_fastq_names_file_and_record(tmp_path):
    path = tmp_path / "bad.fq"
    path.write_text("@r1\nACGT\n+\nII\n")  # quality shorter than the sequence
    with pytest.raises(InputError, match=r"bad\.fq:1: fastq record 1 could not be parsed"):
        _read(path)


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz", "zstd"])
def test_compressed_fasta_reads_identically(tmp_path, codec):
    data = b">a label=1\nACGT\nAC\n>b label=0\nGGTT\n"
    if codec == "zstd":
        zstandard = pytest.importorskip("zstandard")
        packed = zstandard.ZstdCompressor().compress(data)
    else:
        packed = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[codec](data)
    path = tmp_path / "x.fa"
    path.write_bytes(packed)
    assert [(r.id, r.seq, r.label) for r in _read(path)] == [("a", "ACGTAC", "1"), ("b", "GGTT", "0")]


def test_bzip2_fixture_reads():
    assert [(r.id, r.seq) for r in _read(GOOD / "bzip2.fa")] == [("s", "ACGT")]


def test_finetune_reads_genbank_end_to_end(tmp_path):
    from genoml.cli import main

    rows = []
    for i in range(24):
        seq = ("acgt" * 6) if i % 2 else ("ttga" * 6)
        rows.append(
            GENBANK.split("//")[0]
            .replace("seqA", f"s{i:03d}")
            .replace("acgtacgtac gt", seq[:10] + " " + seq[10:])
            .replace("12 bp", "24 bp")
            .replace("1..12", "1..24")
            .replace("promoter", str(i % 2))
            + "//\n"
        )
    path = tmp_path / "train.gb"
    path.write_text("".join(rows))
    code = main(
        [
            "-q",
            "finetune",
            str(path),
            "--out",
            str(tmp_path / "run"),
            "--model",
            "kmer-linear",
            "--no-baselines",
            "--no-attention",
        ]
    )
    assert code == 0
    assert (tmp_path / "run" / "metrics.json").is_file()
