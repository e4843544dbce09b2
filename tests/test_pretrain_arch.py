"""`genoml pretrain --arch esm|bert` from the CLI, and the warning when the masked LM does not beat the k-mer baseline."""

from __future__ import annotations

import json

from genoml.cli import main
from genoml.mlm import baseline_warning as _baseline_warning
from tests.test_pretrain import dna_fasta  # noqa: F401  (fixture)


def test_baseline_warning_rule():
    assert _baseline_warning(0.40, {"context_acc": 0.30, "context_size": 3}) is None
    msg = _baseline_warning(0.31, {"context_acc": 0.30, "context_size": 3})
    assert "does not beat the 3-token context frequency baseline (0.3000)" in msg
    assert _baseline_warning(None, {"context_acc": 0.3}) is None and _baseline_warning(0.2, {}) is None


def test_cli_pretrain_esm_arch_and_warning_in_genoml_json(tmp_path, dna_fasta):  # noqa: F811
    out = tmp_path / "esm"
    assert (
        main(
            [
                "-q",
                "pretrain",
                *dna_fasta,
                "--arch",
                "esm",
                "--dropout",
                "0",
                "--preset",
                "tiny",
                "--window",
                "32",
                "--max-steps",
                "2",
                "--batch-size",
                "8",
                "--eval-every",
                "2",
                "--eval-fraction",
                "0.2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    meta = json.loads((out / "genoml.json").read_text())
    assert meta["arch"] == "esm" and meta["config"]["dropout"] == 0.0
    acc, ctx = meta["heldout"]["masked_acc"], meta["heldout"]["baselines"]["context_acc"]
    assert ("warning" in meta) == (acc < ctx + 0.02)  # two steps: almost surely warned
    assert main(["pretrain", *dna_fasta, "--arch", "lstm", "--out", str(tmp_path / "x")]) == 2
