"""genoml.shuffle: dinucleotide shuffles keep every dinucleotide count, and the real-vs-shuffled task that
`genoml multitask --shuffled` builds from unlabelled DNA."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from genoml.cli import main
from genoml.shuffle import dinucleotide_shuffle, genome_windows, real_vs_shuffled
from tests.tiny import planted_motif_rows, write_csv


def dinucleotides(s: str) -> collections.Counter:
    return collections.Counter(s[i : i + 2] for i in range(len(s) - 1))


def test_shuffle_keeps_dinucleotide_counts_and_ends():
    rng = np.random.default_rng(0)
    for _ in range(500):
        s = "".join(rng.choice(list("ACGTN"), int(rng.integers(3, 80))))
        t = dinucleotide_shuffle(s, rng)
        assert dinucleotides(t) == dinucleotides(s) and (t[0], t[-1]) == (s[0], s[-1])


def test_shuffle_is_random_and_seeded():
    s = "ACGTTGCAAGGCTTAACCGGTATATCGCGATCGATTTACG"
    draws = [dinucleotide_shuffle(s, np.random.default_rng(i)) for i in range(200)]
    assert len(set(draws)) > 150  # many distinct Eulerian paths, not a few fixed rearrangements
    assert dinucleotide_shuffle(s, np.random.default_rng(7)) == dinucleotide_shuffle(
        s, np.random.default_rng(7)
    )
    assert dinucleotide_shuffle("AC", np.random.default_rng(0)) == "AC"  # too short to change


def test_genome_windows_skip_n_and_keep_short_sequences():
    wins = list(genome_windows(["acgtACGTNNACGTACGTAC", "ACG"], 4))
    assert wins == ["ACGT", "ACGT", "GTAC", "GTAC", "ACG"]  # the window holding NN is skipped


def test_real_vs_shuffled_pairs_each_window_with_its_shuffle():
    pairs = real_vs_shuffled(["ACGTTGCAAGGCTTAACCGG", "TTTTACGATCGGGCAT"], seed=1)
    assert [lab for _, lab in pairs] == ["real", "shuffled", "real", "shuffled"]
    assert dinucleotides(pairs[1][0]) == dinucleotides(pairs[0][0]) and pairs[2][0] == "TTTTACGATCGGGCAT"


def test_multitask_shuffled_alone_and_with_a_dataset(tmp_path, capsys):
    """--shuffled alone trains a self-supervised trunk (one binary head: real vs shuffled) usable as finetune
    --model; with a labelled dataset both tasks share the trunk. Windows holding a target sequence are excluded."""
    rng = np.random.default_rng(3)
    genome = "".join(rng.choice(list("ACGT"), 4000, p=[0.3, 0.2, 0.2, 0.3]))
    target = genome[
        200:240
    ]  # a target test sequence inside the unlabelled DNA: its window must be screened out
    fa = tmp_path / "genome.fa"
    fa.write_text(">chr\n" + "\n".join(genome[i : i + 60] for i in range(0, len(genome), 60)) + "\n")
    excl = write_csv(tmp_path / "target_test.csv", [(target, "1")])
    out = tmp_path / "ss"
    args = ["-q", "multitask", "--shuffled", str(fa), "--shuffled-width", "50", "--exclude", str(excl)]
    assert main([*args, "--epochs", "1", "--threads", "1", "--out", str(out)]) == 0
    meta = json.loads((out / "genoml.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    [task] = meta["tasks"]
    assert task["name"] == "shuffled/genome.fa" and task["labels"]["names"] == ["real", "shuffled"]
    per = metrics["exclusion"]["per_dataset"]["shuffled/genome.fa"]
    assert (
        per["total"] == 160 and per["contains_target"] == 1
    )  # 80 windows + 80 shuffles; one holds the target

    data = write_csv(tmp_path / "train.csv", planted_motif_rows(60, length=40, seed=4))
    run = tmp_path / "run"
    ft = [
        "-q",
        "finetune",
        str(data),
        "--model",
        str(out),
        "--epochs",
        "1",
        "--no-baselines",
        "--no-attention",
    ]
    assert main([*ft, "--out", str(run)]) == 0

    both = tmp_path / "both"
    assert main(["-q", "multitask", f"motif={data}", "--shuffled", str(fa), "--epochs", "1", "--threads", "1",
                 "--out", str(both)]) == 0  # fmt: skip
    names = [t["name"] for t in json.loads((both / "genoml.json").read_text())["tasks"]]
    assert names == ["motif", "shuffled/genome.fa"]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "at least one labelled dataset"),
        (["--shuffled", "PROT"], "expected DNA"),
        (["--shuffled", "DNA", "--shuffled-width", "5"], "--shuffled-width"),
    ],
)
def test_multitask_shuffled_bad_inputs(args, message, tmp_path, capsys):
    prot = tmp_path / "p.fa"
    prot.write_text(">p\nMKVLAAGIWYRRKQHPEDSLMKVLAAGIWYRRKQHPEDSL\n")
    dna = tmp_path / "d.fa"
    dna.write_text(">d\n" + "ACGT" * 30 + "\n")
    args = [{"PROT": str(prot), "DNA": str(dna)}.get(a, a) for a in args]
    assert main(["multitask", *args, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
