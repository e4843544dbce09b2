"""The public API in genoml/__init__.py: every advertised name resolves, and the README example runs."""

from __future__ import annotations

import genoml
from tests.tiny import planted_motif_rows, write_csv


def test_every_public_name_resolves():
    for name in genoml.__all__:
        assert getattr(genoml, name) is not None, name


def test_api_round_trip(tmp_path):
    csv = write_csv(tmp_path / "train.csv", planted_motif_rows(60))
    records = list(genoml.read_records(genoml.InputSpec(path=str(csv))))
    assert len(records) == 60 and records[0].label in ("0", "1")
    assert genoml.build_tokenizer("kmer:3").encode("ACGTA")  # ids of the 3-mers (+ specials)
    cfg = genoml.FinetuneConfig(
        data=genoml.DataConfig(train=str(csv)),
        out=str(tmp_path / "run"),
        model="kmer-linear",
        baselines=False,
        attention=False,
    )
    genoml.run_finetune(cfg)
    predictor, meta = genoml.load_predictor(tmp_path / "run")
    probs = predictor.scores([r.seq for r in records[:4]])
    assert probs.shape == (4, 2) and meta.arch == "kmer-linear"
