"""The device rule: every path that runs a model hands it inputs on the model's own device.

No GPU is needed: the test doubles keep their parameters on the `meta` device (as if Accelerate had moved
them to cuda:0) and a forward pre-hook (`check_inputs_on_model_device`) raises when an input tensor is
elsewhere. A path that used a stored default device (the cpu) fails here, as it failed on CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genoml.data import LabelSpace
from genoml.device import (
    DeviceMismatchError,
    check_inputs_on_model_device,
    model_device,
    resolve_device,
    resolve_precision,
)
from genoml.errors import InputError
from genoml.inference import Predictor
from genoml.tokenizers import build_tokenizer

META = torch.device("meta")


def _check(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.device.type != "meta":
            raise DeviceMismatchError(f"input on {t.device}, parameters on meta")


class MetaHead(nn.Module):
    """A head whose weights are on the meta device: (B, H) features -> (B, C) zeros (on the CPU)."""

    def __init__(self, n_out: int):
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_out, device=META))
        self.n_out = n_out
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check(x)
        self.seen += 1
        return torch.zeros(x.shape[0], self.n_out)


class MetaSequenceModel(nn.Module):
    """Stands in for a SequenceModel moved to another device: parameters on `meta`, answers on the CPU."""

    arch = "hf"

    def __init__(self, n_out: int = 2, hidden: int = 4):
        super().__init__()
        self.encoder = nn.Module()
        self.w = nn.Parameter(torch.empty(hidden, device=META))
        self.classifier = MetaHead(n_out)
        self.hidden, self.n_out = hidden, n_out
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.zeros(input_ids.shape[0], self.n_out)  # (B, C)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        _check(input_ids, attention_mask)
        self.calls += 1
        return torch.zeros(input_ids.shape[0], self.hidden)  # (B, H)


def meta_model(n_out: int = 2) -> MetaSequenceModel:
    model = MetaSequenceModel(n_out)
    check_inputs_on_model_device(model)  # the hook under test: raises on an input on another device
    return model


LABELS = LabelSpace(task="binary", names=["0", "1"])
SEQS = ["ACGTACGTAC", "ACGT" * 30, "GGGCCCAAATTT"]


# ---------------------------------------------------------------- the rule itself


def test_resolve_device_and_precision():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InputError, match="--device tpu: use auto, cpu or cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="--device cuda: no CUDA device is available"):
            resolve_device("cuda")
    assert resolve_precision("BF16") == "bf16"
    with pytest.raises(InputError, match="--precision fp8"):
        resolve_precision("fp8")


def test_the_hook_catches_an_input_on_another_device():
    model = meta_model()
    with pytest.raises(DeviceMismatchError, match="parameters are on meta"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3))
    assert model_device(model) == META
    real = nn.Linear(3, 2)
    check_inputs_on_model_device(real)
    real(torch.zeros(1, 3))  # same device: fine


# ---------------------------------------------------------------- every path


def test_predictor_feeds_the_model_on_its_device_whatever_it_was_built_with():
    model = meta_model()
    pred = Predictor(
        model,
        LABELS,
        tokenizer=build_tokenizer("char"),
        max_tokens=32,
        device=torch.device("cpu"),
        rc_average=True,
    )
    scores = pred.scores(SEQS)
    assert scores.shape == (3, 2) and model.calls > 0
    assert model.training  # a Predictor leaves the train/eval mode as it found it


def _job(tmp_path, strategy: str):
    from genoml.config import DataConfig, FinetuneConfig
    from genoml.finetune_data import Split
    from genoml.finetune_train import Job

    rows = {"train": SEQS * 4, "valid": SEQS}
    splits = {
        n: Split(n, [f"{n}{i}" for i in range(len(s))], s, [str(i % 2) for i in range(len(s))], source=n)
        for n, s in rows.items()
    }
    cfg = FinetuneConfig(
        data=DataConfig(train="x"),
        out=str(tmp_path),
        strategy=strategy,
        epochs=1,
        batch_size=4,
        baselines=False,
        attention=False,
    )
    return Job(cfg, tmp_path, splits, "dna")


class _AcceleratedTrainer:
    """Stands in for genoml.train.Trainer after Accelerate moved the model: fit() runs one training batch and
    then the validation callback with the model on another device, as the real loop does."""

    def __init__(self, model, cfg, out_dir, *, get_batch, loss_fn, evaluate=None, on_log=None):
        self.model, self.get_batch, self.evaluate = model, get_batch, evaluate

    def fit(self, resume=False):
        from genoml.train import TrainResult

        batch = self.get_batch(0, 0, 1)
        assert all(v.device.type == "cpu" for v in batch.values())  # the loop moves batches itself
        metrics = self.evaluate(self.model)
        return TrainResult(
            history=[{"event": "eval", "step": 1, **metrics}], best=None, steps=1, stopped_reason="max_steps"
        )


@pytest.mark.parametrize("strategy", ["full", "probe"])
def test_validation_inside_training_uses_the_model_device(tmp_path, monkeypatch, strategy):
    """The crash of issue 14: validation during training built a Predictor with device=cpu while the model
    was on cuda:0. Also the probe's feature caching and its cached-feature validation."""
    import genoml.train
    from genoml.finetune_train import train_torch

    monkeypatch.setattr(genoml.train, "Trainer", _AcceleratedTrainer)
    model = meta_model()
    check_inputs_on_model_device(model.classifier)
    result, _ = train_torch(_job(tmp_path, strategy), model, build_tokenizer("char"), 64)
    assert result.history[0]["event"] == "eval"
    if strategy == "probe":
        assert model.classifier.seen > 0  # validation ran the head on the cached features, on meta
    else:
        assert model.calls > 0


def test_probe_feature_caching_uses_the_model_device():
    from genoml.heads import encode_features

    model = meta_model()
    feats = encode_features(model, [[2, 5, 6, 3], [2, 7, 3]], pad_id=0)
    assert feats.shape == (2, 4) and feats.device.type == "cpu" and not feats.is_inference()


def _meta_run(monkeypatch, model):
    import genoml.runs
    from genoml.runs import RunMeta

    meta = RunMeta(kind="finetuned", arch="hf", labels=LABELS, alphabet="dna", threshold=0.5)

    def load_predictor(folder, *, device="cpu", batch_tokens=16384, trust_remote_code=False, revision=None):
        assert device in ("cpu", "cuda") or device.startswith("cuda:")
        return Predictor(
            model,
            LABELS,
            tokenizer=build_tokenizer("char"),
            max_tokens=32,
            device=torch.device(device),
            batch_tokens=batch_tokens,
        ), meta

    monkeypatch.setattr(genoml.runs, "load_predictor", load_predictor)


def test_predict_uses_the_model_device(tmp_path, monkeypatch):
    from genoml.config import PredictConfig
    from genoml.predict import run_predict

    model = meta_model()
    _meta_run(monkeypatch, model)
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(SEQS)))
    out = tmp_path / "out.tsv"
    summary = run_predict(PredictConfig(model="run", input=str(fa), output=str(out), device="cpu"))
    assert summary["records"] == 3 and model.calls > 0
    assert len(out.read_text().splitlines()) == 4


def test_evaluate_uses_the_model_device(tmp_path, monkeypatch):
    from genoml.evaluate import run_evaluate
    from genoml.io import InputSpec

    model = meta_model()
    _meta_run(monkeypatch, model)
    csv = tmp_path / "eval.csv"
    csv.write_text("sequence,label\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SEQS * 2)))
    metrics = run_evaluate("run", InputSpec(path=str(csv)), str(tmp_path / "ev"), device="cpu")
    assert "eval" in metrics and model.calls > 0


def test_embed_uses_the_encoder_device(monkeypatch):
    import genoml.models
    from genoml.embed import embed_sequences

    class MetaEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(4, device=META))

        def forward(self, input_ids, attention_mask, output_hidden_states=True):
            from types import SimpleNamespace

            h = torch.zeros(*input_ids.shape, 4, device=META)  # (B, L, H) on the encoder's device
            return SimpleNamespace(hidden_states=(h, h))

    def pool(hidden, mask, how):  # the real pool on meta tensors; the answer comes back as CPU zeros
        _check(hidden, mask)
        return torch.zeros(hidden.shape[0], hidden.shape[2])

    monkeypatch.setattr(genoml.models, "pool", pool)
    enc = MetaEncoder()
    check_inputs_on_model_device(enc)
    emb = embed_sequences(enc, build_tokenizer("char"), SEQS, max_tokens=32)
    assert emb.shape == (3, 4) and emb.dtype == np.float32


def test_attention_inputs_and_heldout_evaluation_use_the_model_device():
    from genoml.interpret import _inputs
    from genoml.mlm import evaluate_heldout

    ids, mask = _inputs(meta_model(), build_tokenizer("char").encode("ACGT"))
    assert ids.device.type == "meta" and mask.device.type == "meta"

    class MetaObjective(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.empty(1, device=META))

        def forward(self, input_ids, attention_mask, labels):
            return torch.tensor(1.0), torch.zeros(2, 5), torch.zeros(2, dtype=torch.long)

    obj = MetaObjective()
    check_inputs_on_model_device(obj)
    batch = {
        "input_ids": torch.zeros(1, 4, dtype=torch.long),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
        "labels": torch.zeros(1, 4, dtype=torch.long),
    }
    assert evaluate_heldout(obj, [batch])["masked_tokens"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU refusal")
@pytest.mark.parametrize(
    "command", ["finetune", "predict", "evaluate", "embed", "attention", "bench", "pretrain"]
)
def test_every_model_command_refuses_cuda_without_a_gpu(tmp_path, command, capsys):
    from genoml.cli import main
    from tests.tiny import planted_motif_rows, write_csv, write_fasta

    csv = write_csv(tmp_path / "t.csv", planted_motif_rows(20))
    fa = write_fasta(tmp_path / "t.fa", planted_motif_rows(4))
    argv = {
        "finetune": ["finetune", str(csv), "--model", "cnn", "--out", str(tmp_path / "o")],
        "predict": ["predict", "--model", str(tmp_path), str(fa)],
        "evaluate": ["evaluate", str(csv), "--model", str(tmp_path), "--out", str(tmp_path / "e")],
        "embed": ["embed", str(fa), "--model", str(tmp_path), "-o", str(tmp_path / "e.npz")],
        "attention": ["attention", str(fa), "--model", str(tmp_path), "--out", str(tmp_path / "a")],
        "bench": ["bench", str(csv), "--out", str(tmp_path / "b")],
        "pretrain": ["pretrain", str(fa), "--out", str(tmp_path / "p")],
    }[command]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "--device cuda: no CUDA device is available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "p").exists()
