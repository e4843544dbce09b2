"""genoml.io: exact records from every input format, equivalence of encodings, and every bad input."""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from pathlib import Path

import pytest
from bad_inputs import BAD_DIR, BAD_INPUTS, BED_GENOME, GOOD_DIR, input_spec, label_table_for

from genoml.errors import InputError
from genoml.io import (
    InputSpec,
    Record,
    atomic_output,
    detect_alphabet,
    normalize_sequence,
    open_text,
    read_bed,
    read_fasta,
    read_label_table,
    read_records,
    read_table,
    reverse_complement,
)

RECORDS_FA = GOOD_DIR / "records.fa"
# (id, seq, label, flags) of good/records.fa
EXPECTED = [
    ("seq1", "ACGTACGTNNACGT", "promoter", ("has_N",)),
    ("seq2", "GGGGCCCCNN", "background", ("has_N",)),
    ("seq3", "ACGTN", None, ("has_N",)),
    ("seq4", "TTTTAAAA", "promoter", ()),
]


def essentials(records) -> list[tuple]:
    return [(r.id, r.seq, r.label, r.flags) for r in records]


def genome_copy(tmp_path: Path) -> Path:
    """A copy of the test genome in tmp, so pyfaidx's .fai lands there, not in the repo."""
    return Path(shutil.copy(BED_GENOME, tmp_path / "genome.fa"))


class FakeStdin:
    """A text stdin whose bytes come from `.buffer`, like the real sys.stdin."""

    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


# --------------------------------------------------------------------------- FASTA


def test_read_fasta_exact_records():
    records = list(read_fasta(RECORDS_FA))
    assert essentials(records) == EXPECTED
    assert [r.where for r in records] == [f"{RECORDS_FA}:{n}" for n in (1, 5, 7, 9)]
    assert all(r.interval is None for r in records)


def fasta_text(width: int) -> str:
    lines = []
    for rec_id, seq, label, _ in EXPECTED:
        lines.append(f">{rec_id}" + (f" label={label}" if label else ""))
        lines += [seq[i : i + width].lower() for i in range(0, len(seq), width)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("width", [1, 3, 60])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("compress", [False, True])
def test_fasta_encodings_give_identical_records(tmp_path, width, newline, compress):
    data = fasta_text(width).replace("\n", newline).encode()
    path = tmp_path / "x.fa"  # no .gz suffix: gzip must be found by its magic bytes
    path.write_bytes(gzip.compress(data) if compress else data)
    assert essentials(read_fasta(path)) == EXPECTED


def test_plain_text_named_gz_is_read_as_plain(tmp_path):
    path = tmp_path / "x.fa.gz"
    path.write_bytes(RECORDS_FA.read_bytes())
    assert essentials(read_fasta(path)) == EXPECTED


def test_fasta_committed_crlf_file_matches_lf():
    assert essentials(read_fasta(GOOD_DIR / "records_crlf.fa")) == EXPECTED


@pytest.mark.parametrize("compress", [False, True])
def test_fasta_from_stdin_bytes(monkeypatch, compress):
    data = RECORDS_FA.read_bytes().replace(b"\n", b"\r\n")
    monkeypatch.setattr(sys, "stdin", FakeStdin(gzip.compress(data) if compress else data))
    records = list(read_fasta("-"))
    assert essentials(records) == EXPECTED
    assert records[0].where == "<stdin>:1"
    assert not sys.stdin.buffer.closed  # stdin is not ours to close


def test_fasta_from_text_only_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(RECORDS_FA.read_text()))
    assert essentials(read_records(InputSpec(path="-"))) == EXPECTED


def test_protein_fasta_auto_detected_star_stripped_extras_kept():
    records = list(read_fasta(GOOD_DIR / "protein.fa"))
    assert essentials(records) == [
        ("p1", "MKVLLXBZUO", "AMP", ()),
        ("p2", "ACDEFGHIKLMNPQRSTVWY", None, ()),
    ]


def test_rna_read_as_dna_with_flag():
    assert essentials(read_fasta(GOOD_DIR / "rna.fa", rna=True)) == [("r1", "ACGTACGT", None, ())]


def test_id_is_first_word_kept_verbatim(tmp_path):
    path = tmp_path / "ids.fa"
    path.write_text(">gi|123|ref|NC_1.1| E. coli label=x\tmore\nAC\n>Seq_2.b\nGG\n")
    assert essentials(read_fasta(path)) == [
        ("gi|123|ref|NC_1.1|", "AC", "x", ()),
        ("Seq_2.b", "GG", None, ()),
    ]


def test_fasta_streams_records_before_a_later_error(tmp_path):
    """Records are yielded as read: a broken record 150 does not stop records 1..100 from coming."""
    path = tmp_path / "late.fa"
    path.write_text("".join(f">s{i}\nACGT\n" for i in range(150)) + ">s150\nAC>GT\n")
    records = read_fasta(path)
    assert next(records).id == "s0"  # auto alphabet buffers at most 100 records
    with pytest.raises(InputError, match=r"late.fa:302: invalid character '>' at column 3"):
        list(records)


def test_long_record_is_one_record(tmp_path):
    seq = "ACGTTGCA" * 50_000  # 400 kbp wrapped at 80
    path = tmp_path / "chrom.fa.gz"
    body = "\n".join(seq[i : i + 80] for i in range(0, len(seq), 80))
    path.write_bytes(gzip.compress(f">chr\n{body}\n".encode()))
    assert essentials(read_fasta(path)) == [("chr", seq, None, ())]


# --------------------------------------------------------------------------- tables


def test_read_table_gue_csv_ids_are_row_numbers():
    records = list(read_table(GOOD_DIR / "records.csv"))
    assert essentials(records) == [
        ("row1", "ACGTACGTNN", "1", ("has_N",)),
        ("row2", "GGGGCCCC", "0", ()),
        ("row3", "TTTTAAAA", "1", ()),
    ]
    assert [r.where.rsplit(":", 1)[1] for r in records] == ["2", "3", "4"]


def test_read_table_tsv_any_column_order_and_case():
    records = list(read_table(GOOD_DIR / "records.tsv"))
    assert essentials(records) == [
        ("p1", "ACGTACGTNN", "promoter", ("has_N",)),
        ("b1", "GGGGCCCC", "background", ()),
        ("p2", "TTTTAAAA", "promoter", ()),
    ]
    assert records[2].where.endswith("records.tsv:5")  # the blank line 4 is skipped but counted


def test_read_table_modlamp_labels_mapped_and_fields_stripped():
    records = list(read_table(GOOD_DIR / "modlamp.csv"))
    assert essentials(records) == [
        ("row1", "GLWSKIK", "AMP", ()),
        ("row2", "AAGAATVL", "TM", ()),
        ("row3", "LWIVIA", "AMP", ()),
    ]


def test_table_without_label_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Sequence\nACGT\n")
    assert essentials(read_table(path)) == [("row1", "ACGT", None, ())]


def test_table_quoted_field_keeps_row_start_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('id,sequence,label\na,ACGT,"multi\nline"\nb,AC>GT,1\n')
    with pytest.raises(InputError, match=r"x.csv:4: invalid character '>' at position 3"):
        list(read_table(path))


def test_read_records_tells_fasta_from_table_by_content(tmp_path):
    fasta_as_txt = tmp_path / "seqs.txt"
    fasta_as_txt.write_bytes(RECORDS_FA.read_bytes())
    assert essentials(read_records(InputSpec(path=str(fasta_as_txt)))) == EXPECTED
    table = list(read_records(InputSpec(path=str(GOOD_DIR / "records.tsv"))))
    assert [r.id for r in table] == ["p1", "b1", "p2"]


# --------------------------------------------------------------------------- labels and classes


def test_read_label_table_tsv_with_header_and_csv_without():
    expected = {"a": "pos", "b": "neg", "c": "neg"}
    assert read_label_table(GOOD_DIR / "plain_labels.tsv") == expected
    assert read_label_table(GOOD_DIR / "plain_labels.csv") == expected


@pytest.mark.parametrize("table", ["plain_labels.tsv", "plain_labels.csv"])
def test_label_table_joined_by_id(table):
    spec = InputSpec(path=str(GOOD_DIR / "plain.fa"), labels=str(GOOD_DIR / table))
    assert essentials(read_records(spec)) == [
        ("a", "ACGT", "pos", ()),
        ("b", "GGCC", "neg", ()),
        ("c", "TTAA", "neg", ()),
    ]


def test_label_table_agreeing_with_header_labels(tmp_path):
    labels = tmp_path / "l.tsv"
    labels.write_text("seq1\tpromoter\nseq2\tbackground\nseq3\tother\nseq4\tpromoter\n")
    records = list(read_records(InputSpec(path=str(RECORDS_FA), labels=str(labels))))
    assert [r.label for r in records] == ["promoter", "background", "other", "promoter"]


def test_class_files_label_records_in_given_order():
    spec = InputSpec(
        classes=[("promoter", str(GOOD_DIR / "prom.fa")), ("background", str(GOOD_DIR / "bg.fa"))]
    )
    assert essentials(read_records(spec)) == [
        ("p1", "ACGTACGT", "promoter", ()),
        ("p2", "AAAACCCC", "promoter", ()),
        ("b1", "GGGGTTTT", "background", ()),
    ]


def test_class_files_duplicate_id_across_files(tmp_path):
    other = tmp_path / "other.fa"
    other.write_text(">x\nACGT\n>p2\nGGGG\n")
    spec = InputSpec(classes=[("a", str(GOOD_DIR / "prom.fa")), ("b", str(other))])
    with pytest.raises(InputError, match=r"other.fa:3: duplicate id 'p2' \(also at .*prom.fa:3\)"):
        list(read_records(spec))


@pytest.mark.parametrize(
    "spec, fragment",
    [
        (InputSpec(), "give exactly one of"),
        (InputSpec(path="a.fa", bed="b.bed", genome="g.fa"), "give exactly one of"),
        (InputSpec(bed="b.bed"), "a BED file needs a genome"),
        (InputSpec(path="a.fa", alphabet="rna"), "alphabet: got 'rna'"),
        (InputSpec(path="a.fa", label_column=4), "only applies to BED"),
        (InputSpec(classes=[("a", "x.fa"), ("a", "y.fa")]), "distinct, non-empty label"),
        (InputSpec(classes=[("a", "x.fa")], labels="l.tsv"), "drop the label table"),
    ],
)
def test_bad_input_specs_fail_before_reading(spec, fragment):
    with pytest.raises(InputError, match=fragment):
        read_records(spec)  # no iteration needed


# --------------------------------------------------------------------------- BED


def test_read_bed_exact_records_and_minus_strand(tmp_path):
    genome = genome_copy(tmp_path)
    records = list(read_bed(GOOD_DIR / "regions.bed", genome, label_column=5))
    assert [(r.id, r.seq, r.label, r.interval, r.flags) for r in records] == [
        ("r1", "ACGTACGTAC", "pos", ("chr1", 0, 10, "+"), ()),
        ("chr1:10-20(-)", "TTGGGGCCCC", "neg", ("chr1", 10, 20, "-"), ()),  # revcomp of GGGGCCCCAA
        ("r3", "ACGTNACGTA", "pos", ("chr2", 0, 10, "."), ("has_N",)),  # soft-masked, uppercased
        ("chr1:55-60(.)", "ACACA", "neg", ("chr1", 55, 60, "."), ()),
    ]
    assert records[1].where.endswith("regions.bed:4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa", "genome.fa.fai"]


def test_read_bed_without_labels_and_missing_label_column(tmp_path):
    genome = genome_copy(tmp_path)
    assert [r.label for r in read_bed(GOOD_DIR / "regions.bed", genome)] == [None] * 4
    with pytest.raises(InputError, match=r"regions.bed:3: label column 7 asked for, but the line has 6"):
        list(read_bed(GOOD_DIR / "regions.bed", genome, label_column=7))


def test_genome_with_uneven_lines_is_an_input_error(tmp_path):
    genome = tmp_path / "uneven.fa"
    genome.write_text(">chr1\nACGTACGT\nACG\nACGTACGT\n")
    with pytest.raises(InputError, match=r"uneven.fa: cannot index the genome .*equal line lengths"):
        list(read_bed(GOOD_DIR / "regions.bed", genome))


def test_read_bed_through_read_records(tmp_path):
    spec = InputSpec(bed=str(GOOD_DIR / "regions.bed"), genome=str(genome_copy(tmp_path)), label_column=5)
    assert [r.label for r in read_records(spec)][:3] == ["pos", "neg", "pos"]


def test_plain_gzip_genome_asks_for_bgzip(tmp_path):
    genome = tmp_path / "genome.fa.gz"
    genome.write_bytes(gzip.compress(BED_GENOME.read_bytes()))
    with pytest.raises(InputError, match=r"plain gzip, but random access needs bgzip"):
        list(read_bed(GOOD_DIR / "regions.bed", genome))


def test_bgzip_genome_reads(tmp_path):
    from Bio import bgzf

    genome = tmp_path / "genome.fa.gz"
    with bgzf.BgzfWriter(str(genome), "wb") as fh:
        fh.write(BED_GENOME.read_bytes())
    records = list(read_bed(GOOD_DIR / "regions.bed", genome))
    assert [r.seq for r in records[:2]] == ["ACGTACGTAC", "TTGGGGCCCC"]


# --------------------------------------------------------------------------- alphabets


@pytest.mark.parametrize(
    "seq, alphabet, rna, expected",
    [
        ("acgt", "dna", False, ("ACGT", ())),
        ("AC GT\t", "dna", False, ("ACGT", ())),
        ("ACRYKMSWBDHVN", "dna", False, ("ACNNNNNNNNNNN", ("has_N",))),
        ("acgu", "dna", True, ("ACGT", ())),
        ("mkvXbzuo*", "protein", False, ("MKVXBZUO", ())),
    ],
)
def test_normalize_sequence(seq, alphabet, rna, expected):
    assert normalize_sequence(seq, alphabet, rna=rna) == expected


@pytest.mark.parametrize(
    "seq, alphabet, fragment",
    [
        ("ACGU", "dna", "f.fa:7: looks like RNA: 'U' at column 4; pass --rna"),
        ("AC*G", "dna", "invalid character '*' at column 3 of a dna sequence"),
        ("AC1G", "dna", "invalid character '1' at column 3"),
        ("AC.G", "dna", "invalid character '.' at column 3"),
        ("ACGé", "dna", "invalid character 'é' at column 4"),
        ("MK*V", "protein", "invalid character '*' at column 3 of a protein sequence"),
        ("MKJV", "protein", "invalid character 'J' at column 3"),
    ],
)
def test_normalize_sequence_errors(seq, alphabet, fragment):
    with pytest.raises(InputError) as err:
        normalize_sequence(seq, alphabet, where="f.fa:7")
    assert fragment in str(err.value)


def test_detect_alphabet():
    assert detect_alphabet(["ACGTNACGTU", "acgt"]) == "dna"
    assert detect_alphabet(["MKVLLAGE"]) == "protein"
    assert detect_alphabet(["ACGTACGTAE"]) == "dna"  # 90% ACGTUN
    assert detect_alphabet(["ACGTACGTEE"]) == "protein"  # 80%


def test_reverse_complement_handles_iupac():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("RYKMSWBDHV") == "BDHVWSKMRY"
    assert reverse_complement("acgt") == "acgt"


# --------------------------------------------------------------------------- lenient


def test_lenient_flags_records_and_never_drops_them(tmp_path):
    path = tmp_path / "mixed.fa"
    path.write_text(">a\nACGT\n>empty\n>bad\nAC>GT\n>a\nGG\n>ok\nACNN\n")
    assert essentials(read_fasta(path, lenient=True)) == [
        ("a", "ACGT", None, ()),
        ("empty", "", None, ("empty",)),
        ("bad", "", None, ("invalid_chars",)),
        ("a", "GG", None, ("duplicate_id",)),
        ("ok", "ACNN", None, ("has_N",)),
    ]


def test_lenient_still_raises_file_level_problems():
    with pytest.raises(InputError, match="undecodable byte"):
        list(read_fasta(BAD_DIR / "binary.fa", lenient=True))
    with pytest.raises(InputError, match="empty header"):
        list(read_fasta(BAD_DIR / "empty_header.fa", lenient=True))


def test_lenient_table_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("sequence\nACGT\n\nAC#T\n,\n")
    assert essentials(read_records(InputSpec(path=str(path), lenient=True))) == [
        ("row1", "ACGT", None, ()),
        ("row2", "", None, ("invalid_chars",)),
    ]


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("filename, kind, fragment", BAD_INPUTS, ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_raises_input_error(tmp_path, filename, kind, fragment):
    spec = input_spec(filename, kind, genome_copy(tmp_path) if kind == "bed" else None)
    with pytest.raises(InputError) as err:
        list(read_records(spec))
    assert fragment in str(err.value)
    assert err.value.exit_code == 2


DIRECT = [row for row in BAD_INPUTS if row[1] != "labels"]


@pytest.mark.parametrize("filename, kind, fragment", DIRECT, ids=[row[0] for row in DIRECT])
def test_bad_input_same_error_from_direct_reader(tmp_path, filename, kind, fragment):
    path = BAD_DIR / filename
    readers = {
        "fasta": lambda: read_fasta(path),
        "protein": lambda: read_fasta(path, alphabet="protein"),
        "table": lambda: read_table(path),
        "bed": lambda: read_bed(path, genome_copy(tmp_path)),
    }
    with pytest.raises(InputError) as err:
        list(readers[kind]())
    assert fragment in str(err.value)


def test_every_bad_fixture_is_in_the_table():
    listed = {row[0] for row in BAD_INPUTS} | {label_table_for(row[0]).name for row in BAD_INPUTS}
    assert {p.name for p in BAD_DIR.iterdir()} <= listed


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_fasta(tmp_path / "nope.fa"))
    with pytest.raises(InputError, match="is a folder"):
        with open_text(tmp_path):
            pass


# --------------------------------------------------------------------------- output


def test_atomic_output_writes_on_success(tmp_path):
    target = tmp_path / "out.tsv"
    with atomic_output(str(target)) as fh:
        fh.write("id\tp\n")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "id\tp\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_atomic_output_keeps_old_file_and_removes_tmp_on_error(tmp_path):
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(str(target)) as fh:
            fh.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.tsv"]


def test_atomic_output_dash_is_stdout_not_closed(capsys):
    with atomic_output("-") as fh:
        fh.write("hello\n")
    assert not sys.stdout.closed
    assert capsys.readouterr().out == "hello\n"


def test_atomic_output_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        with atomic_output(str(tmp_path / "no" / "out.tsv")):
            pass


def test_record_is_frozen():
    rec = Record("a", "ACGT")
    with pytest.raises(AttributeError):
        rec.seq = "GG"  # type: ignore[misc]


def test_id_registry_finds_duplicates_across_flushes():
    from genoml.io import IdRegistry

    reg = IdRegistry(flush_at=3)
    assert [reg.setdefault(f"id{i}", i + 1) for i in range(10)] == list(range(1, 11))
    assert (
        reg.setdefault("id0", 50) == 1 and reg.setdefault("id9", 51) == 10 and reg.setdefault("new", 52) == 52
    )
