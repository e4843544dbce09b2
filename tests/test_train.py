"""The shared training loop: optimisation, early stopping with best weights, atomic checkpoints, exact resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from torch import nn

from genoml.config import TrainConfig
from genoml.errors import InputError
from genoml.train import (
    COMPLETE,
    Trainer,
    build_optimizer,
    latest_checkpoint,
    load_tensors,
    save_tensors,
)


class TinyNet(nn.Module):
    """Embedding + dropout + LayerNorm + linear: has biases, norms, dropout RNG and a tied weight."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(12, 16)
        nn.init.normal_(self.emb.weight, std=0.1)
        self.norm = nn.LayerNorm(16)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(16, 12)
        self.out.weight = self.emb.weight  # tied, like an MLM decoder

    def forward(self, input_ids):  # (B, L) -> (B, L, V)
        return self.out(self.drop(self.norm(self.emb(input_ids))))


def get_batch(step: int, rank: int = 0, world: int = 1) -> dict:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randint(0, 12, (8, 6), generator=g)
    return {"input_ids": x[rank::world], "labels": ((x + 1) % 12)[rank::world]}


def loss_fn(model, batch):
    logits = model(batch["input_ids"])  # (B, L, V)
    return nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())


def held_out_loss(model) -> dict:
    b = get_batch(10_000)
    return {"loss": float(loss_fn(model, b))}


def cfg(**kw) -> TrainConfig:
    base = dict(max_steps=12, lr=3e-2, grad_accum=2, eval_every=3, checkpoint_every=4, log_every=2, seed=3)
    return TrainConfig(**{**base, **kw})


def fit(tmp_path, name, *, model_seed=0, batch_fn=get_batch, resume=False, **kw):
    model = TinyNet(model_seed)
    trainer = Trainer(
        model, cfg(**kw), tmp_path / name, get_batch=batch_fn, loss_fn=loss_fn, evaluate=held_out_loss
    )
    return model, trainer.fit(resume=resume)


def strip_time(history):
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s")} for r in history]


def test_training_lowers_loss_and_writes_metrics(tmp_path):
    with torch.no_grad():
        initial = held_out_loss(TinyNet(0).eval())["loss"]
    model, result = fit(tmp_path, "run")
    evals = [r["loss"] for r in result.history if r["event"] == "eval"]
    assert result.stopped_reason == "max_steps" and result.steps == 12
    assert evals[-1] < initial * 0.7
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lines == result.history
    train = [r for r in lines if r["event"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert all(r["tokens_per_s"] > 0 for r in train)
    assert train[-1]["lr"] == 0.0  # linear decay ends at 0


@pytest.mark.parametrize("ema", [None, 0.9])
def test_kill_then_resume_gives_bit_identical_weights(tmp_path, ema):
    reference, ref = fit(tmp_path, "ref", ema_decay=ema)

    def dying(step, rank=0, world=1):
        if step == 2 * 6 + 1:  # micro-batch inside step 7, after the checkpoint of step 4
            raise RuntimeError("simulated kill -9")
        return get_batch(step, rank, world)

    with pytest.raises(RuntimeError, match="simulated"):
        fit(tmp_path, "run", batch_fn=dying, ema_decay=ema)
    assert latest_checkpoint(tmp_path / "run").name == "step-000004"
    resumed, res = fit(
        tmp_path, "run", model_seed=99, resume=True, ema_decay=ema
    )  # other init: weights must come from disk
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert strip_time(res.history) == strip_time(ref.history)
    saved = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert strip_time(saved) == strip_time(ref.history)


def test_weight_average_is_the_ema_of_the_trained_weights(tmp_path):
    """ema_decay: the result (no validation) and what evaluate sees are the warm-up EMA of the weights after
    each optimizer step, e_1 = w_1, e_t+1 = e_t + (1 - min(d, (1 + t) / (10 + t))) (w_t+1 - e_t)."""
    model = TinyNet()
    weights = []  # weights after each optimizer step (get_batch of step k sees those after step k - 1)

    def recording(step, rank=0, world=1):
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
        return get_batch(step, rank, world)

    c = cfg(max_steps=6, grad_accum=1, eval_every=100, checkpoint_every=100)
    Trainer(model, c, tmp_path / "plain", get_batch=recording, loss_fn=loss_fn).fit()
    weights = weights[1:] + [model.state_dict()]  # w_1 .. w_6
    expected = dict(weights[0])
    for t, w in enumerate(weights[1:], start=1):
        keep = min(0.8, (1 + t) / (10 + t))
        expected = {k: keep * expected[k] + (1 - keep) * w[k] for k in expected}
    seen = []

    def evaluate(m):
        seen.append({k: v.clone() for k, v in m.state_dict().items()})
        return {}

    averaged = TinyNet()
    c = cfg(max_steps=6, grad_accum=1, eval_every=6, checkpoint_every=100, ema_decay=0.8)
    Trainer(averaged, c, tmp_path / "ema", get_batch=get_batch, loss_fn=loss_fn, evaluate=evaluate).fit()
    for k, v in averaged.state_dict().items():
        torch.testing.assert_close(v, expected[k], msg=k)
        torch.testing.assert_close(seen[-1][k], expected[k], msg=k)
    assert not torch.allclose(expected["norm.weight"], weights[-1]["norm.weight"])  # the average differs
    assert (tmp_path / "ema" / "checkpoints" / "step-000006" / "average.safetensors").is_file()


def test_sigint_stops_with_checkpoint_and_resume_matches(tmp_path):
    reference, _ = fit(tmp_path, "ref", checkpoint_every=100)

    def interrupting(step, rank=0, world=1):
        if step == 2 * 4:  # first micro-batch of step 5
            os.kill(os.getpid(), signal.SIGINT)
        return get_batch(step, rank, world)

    before = signal.getsignal(signal.SIGINT)
    _, res = fit(tmp_path, "run", batch_fn=interrupting, checkpoint_every=100)
    assert res.stopped_reason == "interrupted" and res.steps == 5
    assert latest_checkpoint(tmp_path / "run").name == "step-000005"
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    resumed, res2 = fit(tmp_path, "run", resume=True, checkpoint_every=100)
    assert res2.stopped_reason == "max_steps"
    assert all(
        torch.equal(a, b) for a, b in zip(reference.state_dict().values(), resumed.state_dict().values())
    )


def test_incomplete_checkpoints_are_ignored(tmp_path):
    fit(tmp_path, "run", max_steps=4)
    root = tmp_path / "run" / "checkpoints"
    fake = root / "step-000999"
    fake.mkdir()
    (fake / "state.json").write_text("{not json")  # no COMPLETE: must never be read
    (root / "step-001000.tmp").mkdir()
    assert latest_checkpoint(tmp_path / "run").name == "step-000004"
    _, res = fit(tmp_path, "run", max_steps=8, resume=True)
    assert res.steps == 8 and res.stopped_reason == "max_steps"
    assert (root / "step-000008" / COMPLETE).is_file()
    assert not (root / "step-000004").exists()  # keep_checkpoints=1
    assert not (root / "step-001000.tmp").exists()


def test_checkpoint_files_load_without_pickle(tmp_path):
    fit(tmp_path, "run", max_steps=4)
    ckpt = latest_checkpoint(tmp_path / "run")
    assert {p.name for p in ckpt.iterdir()} >= {
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng.json",
        "rng.safetensors",
        "state.json",
        COMPLETE,
    }
    for name in ("optimizer.pt", "scheduler.pt"):
        torch.load(ckpt / name, weights_only=True)
    weights = load_tensors(ckpt / "model.safetensors")
    assert weights["out.weight"].data_ptr() == weights["emb.weight"].data_ptr()  # tied weight stored once


def test_early_stopping_restores_best_weights(tmp_path):
    scores = iter([0.2, 0.9, 0.5, 0.4, 0.3, 0.1])
    snapshots = {}

    def evaluate(model):
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"acc": next(scores)}

    model = TinyNet()
    c = cfg(max_steps=30, eval_every=2, checkpoint_every=100, patience=2, select_metric="acc")
    res = Trainer(model, c, tmp_path / "run", get_batch=get_batch, loss_fn=loss_fn, evaluate=evaluate).fit()
    assert res.stopped_reason == "early_stop" and res.steps == 8
    assert res.best["step"] == 4 and res.best["acc"] == 0.9
    assert all(torch.equal(v, snapshots[2][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[4][k]) for k, v in model.state_dict().items())
    # resuming a finished early-stopped run changes nothing
    again = TinyNet(5)
    res2 = Trainer(again, c, tmp_path / "run", get_batch=get_batch, loss_fn=loss_fn, evaluate=evaluate).fit(
        resume=True
    )
    assert res2.stopped_reason == "early_stop" and res2.steps == 8
    assert all(torch.equal(v, snapshots[2][k]) for k, v in again.state_dict().items())


def test_time_budget_stops_and_saves(tmp_path):
    _, res = fit(tmp_path, "run", time_budget_s=0.0, max_steps=50)
    assert res.stopped_reason == "time_budget" and res.steps == 1
    assert latest_checkpoint(tmp_path / "run").name == "step-000001"
    assert res.history[-1]["event"] == "eval" and res.history[-1]["step"] == 1  # final eval


def test_optimizer_groups_skip_frozen_and_do_not_decay_norms():
    model = TinyNet()
    model.norm.weight.requires_grad_(False)
    opt = build_optimizer(model, cfg())
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model.emb.weight)}  # tied: listed once
    assert {id(p) for p in plain["params"]} == {id(model.norm.bias), id(model.out.bias)}


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(InputError, match="grad_accum"):
        Trainer(TinyNet(), cfg(grad_accum=0), tmp_path, get_batch=get_batch, loss_fn=loss_fn)
    with pytest.raises(InputError, match="select_metric"):
        Trainer(TinyNet(), cfg(patience=2), tmp_path, get_batch=get_batch, loss_fn=loss_fn)
    with pytest.raises(InputError, match="ema_decay"):
        Trainer(TinyNet(), cfg(ema_decay=1.0), tmp_path, get_batch=get_batch, loss_fn=loss_fn)


def test_save_tensors_round_trip(tmp_path):
    a = torch.arange(6.0).reshape(2, 3)
    save_tensors({"a": a, "b": a, "c": a[1]}, tmp_path / "t.safetensors")
    back = load_tensors(tmp_path / "t.safetensors")
    assert torch.equal(back["a"], a) and torch.equal(back["b"], a) and torch.equal(back["c"], a[1])


def test_schedule_is_fitted_to_the_time_budget(tmp_path, monkeypatch):
    """A fake clock runs one step per second: with a 10 s budget and max_steps 1000, the lr schedule is
    shortened so that it decays to 0 when the budget is spent, and training stops there."""
    import genoml.train as train_mod

    clock = {"t": 1000.0}

    class FakeTime:
        @staticmethod
        def time():
            return clock["t"]

    def ticking_batch(step, rank=0, world=1):
        clock["t"] += 0.5  # grad_accum=2 micro-batches per step -> 1 s per step
        return get_batch(step, rank, world)

    monkeypatch.setattr(train_mod, "time", FakeTime)
    _, res = fit(
        tmp_path,
        "run",
        batch_fn=ticking_batch,
        max_steps=1000,
        time_budget_s=10.0,
        eval_every=100,
        checkpoint_every=100,
        log_every=1,
        warmup_ratio=0.1,
    )
    lrs = [h["lr"] for h in res.history if h["event"] == "train"]
    assert res.stopped_reason == "time_budget" and 9 <= res.steps <= 11
    assert lrs[-1] < 0.15 * max(lrs)  # decayed, not cut off at the peak
    assert max(lrs) == pytest.approx(3e-2, rel=0.35)  # the warmup shrank with the plan (100 steps -> ~1)


def test_schedule_keeps_max_steps_without_a_budget(tmp_path):
    _, res = fit(tmp_path, "run", max_steps=12, log_every=1)
    assert res.stopped_reason == "max_steps" and res.steps == 12


def test_resume_with_a_weight_average_needs_one_in_the_checkpoint(tmp_path):
    from genoml.errors import GenomlError

    fit(tmp_path, "run", max_steps=12, checkpoint_every=4, batch_fn=get_batch)
    with pytest.raises(GenomlError, match="without a weight average"):
        fit(tmp_path, "run", max_steps=24, resume=True, ema_decay=0.9)
