"""genoml.config: defaults and help read from the fields, one message shape for bad values, DataConfig -> InputSpec."""

import dataclasses

import pytest

from genoml.config import (
    BenchConfig,
    DataConfig,
    FinetuneConfig,
    PretrainConfig,
    default,
    helptext,
    require,
)
from genoml.errors import InputError
from genoml.io import InputSpec


def test_default_and_helptext_come_from_the_field():
    assert default(FinetuneConfig, "strategy") == "full"
    assert default(BenchConfig, "models") == ["cnn", "kmer-linear"]
    assert default(BenchConfig, "models") is not default(BenchConfig, "models")  # a fresh list each time
    assert helptext(PretrainConfig, "mask_rate") == "Fraction of tokens masked (80/10/10)."
    with pytest.raises(KeyError):
        default(PretrainConfig, "no_such_field")
    with pytest.raises(KeyError):
        helptext(FinetuneConfig, "lora_rank")  # not a flag: no help text


def test_require_names_the_flag_the_rule_and_the_value():
    require([("--epochs", 3, True, "at least 1")])
    with pytest.raises(InputError, match=r"^--mode: must be fast or slow, got 'x'$"):
        require([("--epochs", 3, True, "at least 1"), ("--mode", "x", False, "fast or slow")])


def test_data_config_builds_the_input_spec():
    data = DataConfig(
        train="t.fa",
        labels="l.tsv",
        classes=[("a", "a.fa")],
        bed="r.bed",
        genome="g.fa",
        label_column=5,
        rna=True,
    )
    assert data.input_spec("t.fa") == InputSpec(
        path="t.fa",
        labels="l.tsv",
        classes=[("a", "a.fa")],
        bed="r.bed",
        genome="g.fa",
        rna=True,
        label_column=5,
    )
    assert data.input_spec("v.fa", extras=False, alphabet="dna") == InputSpec(
        path="v.fa", alphabet="dna", rna=True
    )


def test_data_config_mirrors_every_input_spec_setting():
    spec_fields = {f.name for f in dataclasses.fields(InputSpec)} - {"path", "lenient"}
    assert spec_fields <= {f.name for f in dataclasses.fields(DataConfig)}
