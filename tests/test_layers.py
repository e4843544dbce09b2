"""Direct tests of the shared layers: task inference and label decoding (data.py), freeze strategies
(strategies.py) and the run-directory contract (runs.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genoml.data import LabelSpace
from genoml.errors import InputError
from tests.tiny import tiny_bert_folder


@pytest.mark.parametrize(
    ("labels", "task", "names"),
    [
        (["0", "1", "1", "0"], "binary", ["0", "1"]),
        (["EI", "IE", "N", "N"], "multiclass", ["EI", "IE", "N"]),
        (["a;b", "b", "c;a"], "multilabel", ["a", "b", "c"]),
        (["0.5", "1.25", "-3", "2"], "regression", ["value"]),
        ([str(i) for i in range(25)], "regression", ["value"]),  # > 20 distinct integers: a quantity
    ],
)
def test_task_inference(labels, task, names):
    space = LabelSpace.infer(labels)
    assert (space.task, space.names) == (task, names)


def test_one_class_and_missing_labels_are_input_errors():
    with pytest.raises(InputError, match="only one class"):
        LabelSpace.infer(["x", "x"])
    with pytest.raises(InputError, match="have no label"):
        LabelSpace.infer(["1", ""])


def test_regression_encode_decode_round_trip():
    raw = ["1.0", "3.0", "5.0"]
    space = LabelSpace.infer(raw)
    y = space.encode(raw)  # standardized (N,)
    assert abs(float(y.mean())) < 1e-6
    np.testing.assert_allclose(space.decode(y.numpy()), [1.0, 3.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(space.decode(torch.tensor([[0.0]])).numpy(), [[3.0]])


def test_decode_leaves_classes_alone():
    space = LabelSpace.infer(["0", "1"])
    probs = np.array([[0.2, 0.8]])
    assert space.decode(probs) is probs


def _tiny_model(tmp_path, layers=3):
    from genoml.models import SequenceModel, load_hf_encoder
    from genoml.tokenizers import load_tokenizer

    folder = tiny_bert_folder(tmp_path / "bert", layers=layers)
    return SequenceModel(
        "hf",
        load_hf_encoder(str(folder)),
        2,
        tokenizer=load_tokenizer(folder),
        labels=["0", "1"],
        task="binary",
    )


@pytest.mark.parametrize("strategy", ["probe", "partial", "full"])
def test_strategies_set_exactly_the_trainable_parameters(tmp_path, strategy):
    from genoml.strategies import apply_strategy_, count_parameters

    model = _tiny_model(tmp_path)
    apply_strategy_(model, strategy, partial_layers=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {n for n in trainable if n.startswith("classifier.")}
    assert head  # the head always trains
    body = trainable - head
    if strategy == "probe":
        assert body == set()
    elif strategy == "partial":
        assert body and all(".layer.2." in n for n in body)  # only the last of 3 blocks
    else:
        assert body == {n for n, _ in model.named_parameters()} - head
    n_train, n_total = count_parameters(model)
    assert n_train == sum(p.numel() for n, p in model.named_parameters() if n in trainable) <= n_total


def test_lora_trains_adapters_and_head_only(tmp_path):
    from genoml.strategies import apply_strategy_, merge_lora_

    model = _tiny_model(tmp_path, layers=2)
    apply_strategy_(model, "lora", lora_rank=4)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("classifier.") for n in trainable)
    merge_lora_(model)
    assert not any("lora_" in n for n, _ in model.named_parameters())  # folded back into a plain encoder


def test_run_meta_missing_broken_and_round_trip(tmp_path):
    from genoml.data import LabelSpace
    from genoml.runs import RunMeta

    with pytest.raises(InputError, match="no genoml.json"):
        RunMeta.read(tmp_path)
    (tmp_path / "genoml.json").write_text("{not json")
    with pytest.raises(InputError, match=r"genoml\.json:1: not valid JSON"):
        RunMeta.read(tmp_path)
    (tmp_path / "genoml.json").write_text(json.dumps({"labels": {"task": "binary"}}))
    with pytest.raises(InputError, match="no arch field"):
        RunMeta.read(tmp_path)
    assert RunMeta.peek(tmp_path) is None  # not a run genoml wrote: a probe says so, a reader refuses
    # a folder written by an earlier genoml (no "kind", a record key RunMeta does not type) reads back
    old = {"arch": "cnn", "labels": {"task": "binary", "names": ["0", "1"]}, "data": {"train": {"n": 3}}}
    (tmp_path / "genoml.json").write_text(json.dumps(old))
    meta = RunMeta.read(tmp_path)
    assert (meta.kind, meta.arch, meta.predicts) == ("finetuned", "cnn", True)
    assert meta.labels == LabelSpace("binary", ["0", "1"]) and meta.extra == {"data": {"train": {"n": 3}}}
    assert (meta.aggregate, meta.rc_average, meta.threshold) == ("mean", False, 0.5)  # inference defaults
    meta.write(tmp_path)
    again = json.loads((tmp_path / "genoml.json").read_text())
    assert again["data"] == old["data"] and again["labels"]["names"] == ["0", "1"]
    assert again["versions"]["genoml"] and "stride" not in again  # None-valued optional fields left out
    assert RunMeta.read(tmp_path) == meta
    assert RunMeta.peek(tmp_path) == meta and RunMeta.peek(tmp_path / "nothing") is None
    pretrained = RunMeta(kind="pretrained", arch="bert", alphabet="dna", extra={"window": 512})
    pretrained.write(tmp_path)
    back = RunMeta.read(tmp_path)
    assert not back.predicts and back.extra["window"] == 512 and back.alphabet == "dna"


def test_one_alphabet_module():
    from genoml import alphabet
    from genoml.io import PROTEIN_RESIDUES, reverse_complement

    assert alphabet.get("dna").letters == "ACGT" and alphabet.PROTEIN.unknown == "X"
    assert PROTEIN_RESIDUES == alphabet.PROTEIN.all_letters  # io reads the same letters
    assert reverse_complement("AACGTNRy") == alphabet.reverse_complement("AACGTNRy") == "rYNACGTT"
    assert alphabet.detect(["ACGTNNACGU"]) == "dna" and alphabet.detect(["MKVLAAGIW"]) == "protein"
    with pytest.raises(InputError, match="allowed: 'dna', 'protein'"):
        alphabet.get("rna")
