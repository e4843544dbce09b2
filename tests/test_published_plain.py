"""The published models transformers implements itself (DNABERT-6, ESM-2, ProtBert), built as tiny random
checkpoints from their published config and tokenizer files in ../shared/hf_configs: finetune with every
strategy, then predict, embed and attention on the run (issue 17's end-to-end matrix for the plain models)."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genoml.cli import main
from tests.tiny import planted_motif_rows, write_csv, write_fasta

HF_CONFIGS = Path(__file__).resolve().parents[1].parent / "shared" / "hf_configs"
MODELS = {"dnabert6": "dna", "esm2-8m": "protein", "protbert-bfd": "protein"}


def _published_folder(name: str, dest: Path) -> Path:
    from transformers import AutoConfig, AutoModelForMaskedLM

    src = HF_CONFIGS / name
    if not src.is_dir():
        pytest.skip(f"../shared/hf_configs/{name} is not here")
    dest.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "PROVENANCE.txt":
            shutil.copy(f, dest / f.name)
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(dest)).save_pretrained(dest)
    return dest


def _protein_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Label 1 peptides carry the motif WKWHC, label 0 do not."""
    rng = random.Random(seed)
    letters = "ACDEFGHIKLMNPQRSTVY"  # no W: the motif letter marks the positives
    rows = []
    for i in range(n):
        seq = "".join(rng.choice(letters) for _ in range(30))
        if i % 2:
            p = rng.randrange(0, 25)
            seq = seq[:p] + "WKWHC" + seq[p + 5 :]
        rows.append((seq, str(i % 2)))
    return rows


@pytest.fixture(scope="module", params=list(MODELS))
def published(request, tmp_path_factory):
    name = request.param
    d = tmp_path_factory.mktemp(name.replace("-", "_"))
    folder = _published_folder(name, d / "model")
    rows = planted_motif_rows(40, length=30, seed=3) if MODELS[name] == "dna" else _protein_rows(40)
    data = (
        write_csv(d / "train.csv", rows[:24]),
        write_csv(d / "valid.csv", rows[24:32]),
        write_csv(d / "test.csv", rows[32:]),
        write_fasta(d / "x.fa", rows[32:]),
    )
    return name, folder, data


@pytest.mark.parametrize("strategy", ["probe", "partial:1", "lora", "full"])
def test_plain_published_model_end_to_end(published, strategy, tmp_path, capsys, monkeypatch):
    name, folder, (train, valid, test, fa) = published
    monkeypatch.setattr("genoml.finetune.write_reports", lambda *a, **k: None)  # plots are tested elsewhere
    run = tmp_path / "run"
    rc = main(
        [
            "-q",
            "finetune",
            str(train),
            "--valid",
            str(valid),
            "--test",
            str(test),
            "--model",
            str(folder),
            "--strategy",
            strategy,
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--no-baselines",
            "--no-attention",
            "--out",
            str(run),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    meta = json.loads((run / "genoml.json").read_text())
    assert meta["arch"] == "hf" and meta["strategy"] == strategy
    assert main(["-q", "predict", str(fa), "--model", str(run), "-o", str(tmp_path / "p.tsv")]) == 0
    assert len((tmp_path / "p.tsv").read_text().splitlines()) == 1 + 8
    assert main(["-q", "embed", str(fa), "--model", str(run), "-o", str(tmp_path / "e.npz")]) == 0
    emb = np.load(tmp_path / "e.npz")["embeddings"]
    assert emb.shape == (8, json.loads((folder / "config.json").read_text())["hidden_size"])
    assert (
        main(
            [
                "-q",
                "attention",
                str(fa),
                "--model",
                str(run),
                "--out",
                str(tmp_path / "att"),
                "--limit",
                "1",
                "--method",
                "attention,grad-input",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert list((tmp_path / "att").glob("*attention.npz"))
