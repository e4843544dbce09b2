"""The one training loop of genoml (pretrain and finetune); it knows nothing about the model.

Built on Accelerate: the same code runs in one process, under `torchrun` or `accelerate launch`
(DDP; FSDP/DeepSpeed through the Accelerate config), bf16 autocast on CUDA. Data contract:
`get_batch(micro_step, rank, world_size) -> dict of tensors` is a pure function of its arguments,
so the data position is the step and a resumed run is exact. Checkpoints are atomic folders
`checkpoints/step-NNNNNN/` written and read by `genoml.checkpoints` (the Trainer keeps the loop).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from genoml.checkpoints import (  # noqa: F401  (save_tensors, load_tensors, COMPLETE re-exported for callers)
    CHECKPOINT_DIR,
    COMPLETE,
    finite,
    latest_checkpoint,
    load_tensors,
    read_checkpoint,
    rng_state,
    save_tensors,
    set_rng_state,
    write_checkpoint,
)
from genoml.config import TrainConfig
from genoml.device import fused_kernels
from genoml.errors import GenomlError, InputError
from genoml.log import progress_enabled

log = logging.getLogger(__name__)

BEST_IN_MEMORY_BYTES = 2**31  # larger models keep their best weights on disk


@dataclass
class TrainResult:
    history: list[dict]
    best: dict | None
    steps: int
    stopped_reason: str  # max_steps | early_stop | time_budget | interrupted


@dataclass
class _State:
    """Everything besides tensors that a checkpoint restores."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    bad_evals: int = 0
    elapsed_s: float = 0.0
    stopped: str | None = None
    last_eval_step: int = -1


def _to(v, device: torch.device):
    """A batch value on the training device (pinned CPU tensors are copied without blocking the host)."""
    if not torch.is_tensor(v) or v.device == device:
        return v
    return v.to(device, non_blocking=device.type == "cuda" and v.is_pinned())


def force_cpu() -> bool:
    """Under torchrun/accelerate launch without CUDA, Accelerate only sets up gloo (MULTI_CPU) when told `cpu=True`."""
    world = max(int(os.environ.get(k, "1") or 1) for k in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    return world > 1 and not torch.cuda.is_available()


# ---------------------------------------------------------------- optimizer and schedule


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over parameters that still train; no weight decay on biases and norms (ndim < 2)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise GenomlError("the model has no trainable parameters (everything is frozen)")
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)


class _Schedule:
    """Linear warmup to the peak lr, then linear or cosine decay to 0 (or constant). Picklable, pure."""

    def __init__(self, max_steps: int, warmup_ratio: float, kind: str):
        self.total, self.kind, self.ratio = max_steps, kind, warmup_ratio
        self.warmup = int(round(max_steps * warmup_ratio))

    def shorten(self, total: int) -> None:
        """Plan `total` steps instead (a time budget): the warmup keeps its share of the new total."""
        self.total = total
        self.warmup = min(self.warmup, int(round(total * self.ratio)))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, _Schedule(cfg.max_steps, cfg.warmup_ratio, cfg.schedule)
    )


# ---------------------------------------------------------------- weight averaging


class WeightAverage:
    """An exponential moving average of `model`'s parameters and buffers (`TrainConfig.ema_decay`), kept by
    torch's `AveragedModel`. After t updates the decay is min(decay, (1 + t) / (10 + t)), the usual warm-up,
    so a short run is not dominated by its random init. Float tensors are averaged; integer buffers (batch-
    norm counters) follow the model. `module` is never trained and stays in eval mode. t is counted on the
    host, so an update never waits for the device."""

    def __init__(self, model: nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel

        self.source, self.decay, self._updates = model, decay, 0
        self.averaged = AveragedModel(model, multi_avg_fn=self._average, use_buffers=True)
        self.averaged.eval()

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    @torch.no_grad()
    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _n: torch.Tensor) -> None:
        if not (torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0])):
            torch._foreach_copy_(averaged, current)
            return
        t = self._updates
        torch._foreach_lerp_(averaged, current, 1.0 - min(self.decay, (1.0 + t) / (10.0 + t)))

    def update(self) -> None:
        """Fold the source model's current weights into the average (after an optimizer step)."""
        self.averaged.update_parameters(self.source)
        self._updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.averaged.state_dict()  # module.* and n_averaged

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        self.averaged.load_state_dict(sd)
        self._updates = int(self.averaged.n_averaged)


# ---------------------------------------------------------------- interruption


class _StopSignal:
    """SIGINT/SIGTERM set a flag checked at the next step boundary; a second SIGINT aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:  # noqa: ANN001 - signal handler signature
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        log.warning(
            "%s received: stopping after this step and writing a checkpoint", signal.Signals(signum).name
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopSignal]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)


# ---------------------------------------------------------------- the loop


class Trainer:
    """Optimise `loss_fn(model, batch)` over batches from `get_batch`, with evals, checkpoints, resume.

    `evaluate(model) -> dict` runs under no_grad in eval mode on every rank (rank 0's result is
    used); it gets the unwrapped model except under FSDP/DeepSpeed. Only rank 0 writes files.
    """

    def __init__(
        self,
        model: nn.Module,
        cfg: TrainConfig,
        out_dir: Path,
        *,
        get_batch: Callable[[int, int, int], dict],
        loss_fn: Callable[[nn.Module, dict], torch.Tensor],
        evaluate: Callable[[nn.Module], dict] | None = None,
        on_log: Callable[[dict], None] | None = None,
    ):
        # heavy: accelerate loads in seconds; only a Trainer needs it, not TrainConfig or the optimizer helpers
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cfg.validate()
        self.cfg, self.out_dir = cfg, Path(out_dir)
        self.get_batch, self.loss_fn, self.evaluate, self.on_log = get_batch, loss_fn, evaluate, on_log
        on_cpu = force_cpu() or cfg.device == "cpu"
        if cfg.device not in (None, "auto", "cpu") and not str(cfg.device).startswith("cuda"):
            raise InputError(f"--device {cfg.device}: use auto, cpu or cuda")
        if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"--device {cfg.device}: no CUDA device is available; use --device cpu or auto")
        precision = cfg.mixed_precision or ("bf16" if torch.cuda.is_available() and not on_cpu else "no")
        self.accelerator = Accelerator(
            cpu=on_cpu,
            mixed_precision=precision,
            gradient_accumulation_steps=cfg.grad_accum,
            kwargs_handlers=[
                DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)
            ],
        )
        self.model = model
        self._best_weights: dict[str, torch.Tensor] | Path | None = None
        self._average: WeightAverage | None = None  # set by fit() when cfg.ema_decay
        self._saved_step = -1  # step of the last checkpoint written (same value on every rank)

    # -- public

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def fit(self, resume: bool = False) -> TrainResult:
        """Train to max_steps, early stop, time budget or SIGINT/SIGTERM; restore the best weights."""
        from accelerate.utils import set_seed  # heavy: accelerate

        cfg, acc = self.cfg, self.accelerator
        set_seed(cfg.seed, device_specific=True)
        optimizer = build_optimizer(self.model, cfg)
        scheduler = build_scheduler(optimizer, cfg)  # not prepared: Accelerate would step it once per process
        model, optimizer = acc.prepare(self.model, optimizer)
        if cfg.ema_decay:
            self._start_average(model)
        state = _State()
        ckpt = latest_checkpoint(self.out_dir) if resume else None
        if ckpt is not None:
            self._load_checkpoint(ckpt, model, optimizer, scheduler, state)
        elif resume:
            log.info(
                "resume: no complete checkpoint under %s; starting from step 0", self.out_dir / CHECKPOINT_DIR
            )
        self._rewrite_metrics(state.history)
        model.train()
        with _StopSignal().installed() as stop:
            try:
                reason = self._loop(model, optimizer, scheduler, state, stop)
            finally:
                if getattr(self, "_bar", None) is not None:
                    self._bar.close()
        self._finish(model, optimizer, scheduler, state, reason)
        return TrainResult(history=state.history, best=state.best, steps=state.step, stopped_reason=reason)

    # -- loop pieces

    def _loop(self, model, optimizer, scheduler, state: _State, stop: _StopSignal) -> str:
        cfg = self.cfg
        if state.stopped == "early_stop":
            return "early_stop"
        if cfg.eval_at_start and self.evaluate is not None and state.last_eval_step < 0 and state.step == 0:
            self._eval(model, state)
        started = time.time() - state.elapsed_s
        window = {"loss": 0.0, "steps": 0, "tokens": 0, "t0": time.time()}
        bar = self._bar = self._progress_bar(state.step)
        while state.step < cfg.max_steps:
            loss, tokens = self._train_step(model, optimizer, scheduler, state.step)
            state.step += 1
            bar.update(1)
            state.elapsed_s = time.time() - started
            window["loss"] += loss
            window["steps"] += 1
            window["tokens"] += tokens
            if state.step % cfg.log_every == 0 or state.step == cfg.max_steps:
                self._log_train(state, window, scheduler)
            early = False
            if self.evaluate is not None and state.step % cfg.eval_every == 0:
                early = self._eval(model, state)
            if state.step % cfg.checkpoint_every == 0:
                self._save_checkpoint(model, optimizer, scheduler, state)
            if early:
                return "early_stop"
            if state.step % min(cfg.log_every, 20) == 0:
                self._fit_schedule(scheduler, state)
            planned = scheduler.lr_lambdas[0].total
            if cfg.time_budget_s and cfg.fit_schedule_to_budget and state.step >= planned < cfg.max_steps:
                log.info("time budget: the lr schedule planned for it ended at step %d", state.step)
                return "time_budget"
            over_budget = cfg.time_budget_s is not None and state.elapsed_s >= cfg.time_budget_s
            interrupted, out_of_time = self._any_rank(stop.requested, over_budget)
            if interrupted:
                return "interrupted"
            if out_of_time and state.step < cfg.max_steps:
                log.info("time budget of %.0f s reached at step %d", cfg.time_budget_s, state.step)
                return "time_budget"
        return "max_steps"

    def _fit_schedule(self, scheduler, state: _State) -> None:
        """With a time budget, shorten the schedule to the steps the remaining time allows at the rate so
        far, so the lr decays to 0 when the budget ends instead of being cut off mid-schedule.

        The planned total is part of the scheduler's state (saved in checkpoints) and is the same on
        every rank (mean over ranks of each rank's estimate).
        """
        cfg = self.cfg
        if not (cfg.fit_schedule_to_budget and cfg.time_budget_s) or cfg.schedule == "constant":
            return
        if state.elapsed_s <= 0:
            return
        rate = state.step / state.elapsed_s  # steps/s, evaluations included
        planned = state.step + rate * max(0.0, cfg.time_budget_s - state.elapsed_s)
        if self.accelerator.num_processes > 1:
            t = torch.tensor([planned], device=self.accelerator.device)
            planned = float(self.accelerator.reduce(t, reduction="mean").item())
        scheduler.lr_lambdas[0].shorten(int(min(cfg.max_steps, max(state.step + 1, planned))))

    def _progress_bar(self, start: int):
        """A tqdm bar on stderr (main process, a terminal, not --quiet); a no-op bar otherwise."""
        return tqdm(
            total=self.cfg.max_steps,
            initial=start,
            unit="step",
            file=sys.stderr,
            leave=False,
            disable=not (self.is_main and progress_enabled()),
        )

    def _train_step(self, model, optimizer, scheduler, step: int) -> tuple[torch.Tensor, int]:
        """One optimizer step over grad_accum micro-batches. Returns (mean loss, tokens seen by this rank)."""
        cfg, acc = self.cfg, self.accelerator
        total = torch.zeros((), device=acc.device)
        tokens = 0
        for k in range(cfg.grad_accum):
            batch = self.get_batch(step * cfg.grad_accum + k, acc.process_index, acc.num_processes)
            if "input_ids" in batch:  # counted on the host copy: no device sync per step
                mask = batch.get("attention_mask")
                tokens += int(mask.sum()) if mask is not None else batch["input_ids"].numel()
            batch = {n: _to(v, acc.device) for n, v in batch.items()}
            with acc.accumulate(model):
                with acc.autocast(), fused_kernels():
                    loss = self.loss_fn(model, batch)
                acc.backward(loss)
                if acc.sync_gradients:
                    if cfg.clip_norm:
                        acc.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if self._average is not None:
                        self._average.update()
            total += loss.detach().float()
        return total / cfg.grad_accum, tokens

    def _any_rank(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag OR-ed over ranks (one all-reduce), so all ranks take the same branch."""
        if self.accelerator.num_processes == 1:
            return tuple(bool(f) for f in flags)
        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.accelerator.device)
        return tuple(bool(v > 0) for v in self.accelerator.reduce(t, reduction="sum").tolist())

    def _log_train(self, state: _State, window: dict, scheduler) -> None:
        acc = self.accelerator
        packed = torch.stack(
            [
                torch.as_tensor(window["loss"], dtype=torch.float32, device=acc.device).reshape(()),
                torch.tensor(float(window["tokens"]), device=acc.device),
            ]
        )
        if acc.num_processes > 1:
            packed = acc.reduce(packed, reduction="sum")
        loss = float(packed[0]) / (window["steps"] * acc.num_processes)
        seconds = max(time.time() - window["t0"], 1e-9)
        if not math.isfinite(loss):
            raise GenomlError(
                f"training loss became {loss} at step {state.step}; lower the learning rate (now {self.cfg.lr}) "
                "or check the input data"
            )
        record = {
            "event": "train",
            "step": state.step,
            "loss": round(loss, 6),
            "lr": scheduler.get_last_lr()[0],
        }
        if packed[1] > 0:
            record["tokens_per_s"] = round(float(packed[1]) / seconds, 1)
        record["elapsed_s"] = round(state.elapsed_s, 2)
        log.info(
            "step %d/%d  loss %.4f  lr %.2e%s",
            state.step,
            self.cfg.max_steps,
            loss,
            record["lr"],
            f"  {record['tokens_per_s']:,.0f} tok/s" if "tokens_per_s" in record else "",
        )
        self._record(state, record)
        window.update(loss=0.0, steps=0, tokens=0, t0=time.time())

    def _eval(self, model, state: _State) -> bool:
        """Run evaluate, record it, track the best weights. Returns True when patience is exhausted."""
        from accelerate.utils import DistributedType, broadcast_object_list  # heavy: accelerate

        acc, cfg = self.accelerator, self.cfg
        sharded = acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
        target = model if sharded else acc.unwrap_model(model)
        if self._average is not None:  # validation, early stopping and the best weights use the average
            target = model = self._average.module
        model.eval()
        with torch.no_grad():
            metrics = dict(self.evaluate(target) or {})
        if self._average is None:
            model.train()
        if acc.num_processes > 1:
            box = [metrics]
            broadcast_object_list(box, from_process=0)
            metrics = box[0]
        state.last_eval_step = state.step
        record = {"event": "eval", "step": state.step, **metrics}
        log.info(
            "eval step %d: %s",
            state.step,
            ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, int | float)),
        )
        self._record(state, record)
        if cfg.select_metric is None:
            return False
        value = metrics.get(cfg.select_metric)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise GenomlError(
                f"evaluate() returned {cfg.select_metric}={value!r}; it must return a finite number"
            )
        best = None if state.best is None else state.best[cfg.select_metric]
        if best is None or (value > best if cfg.greater_is_better else value < best):
            state.best, state.bad_evals = record, 0
            self._snapshot_best(model)
            return False
        state.bad_evals += 1
        return cfg.patience is not None and state.bad_evals >= cfg.patience

    def _finish(self, model, optimizer, scheduler, state: _State, reason: str) -> None:
        """Final eval (unless interrupted), final checkpoint, best weights restored."""
        evaluated = (
            reason != "interrupted" and self.evaluate is not None and state.last_eval_step != state.step
        )
        if evaluated:
            self._eval(model, state)
        if self._average is not None and reason != "interrupted" and state.best is None:
            self._load_model_state(model, self._average.module.state_dict())  # no validation: the average
        if reason == "early_stop":
            state.stopped = reason
        if evaluated or self._saved_step != state.step or reason == "early_stop":
            self._save_checkpoint(model, optimizer, scheduler, state)
        if reason != "interrupted" and self._best_weights is not None and state.best is not None:
            self._load_model_state(model, self._best_state())
            log.info(
                "restored the best weights: step %d, %s %.4g",
                state.best["step"],
                self.cfg.select_metric,
                state.best[self.cfg.select_metric],
            )

    # -- records

    def _record(self, state: _State, record: dict) -> None:
        record = finite(record)
        state.history.append(record)
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.on_log is not None:
                self.on_log(record)

    def _rewrite_metrics(self, history: list[dict]) -> None:
        if self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            text = "".join(json.dumps(r) + "\n" for r in history)
            (self.out_dir / "metrics.jsonl").write_text(text)

    # -- weights

    def _start_average(self, model) -> None:
        from accelerate.utils import DistributedType  # heavy: accelerate

        if self.accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            raise GenomlError(
                "a weight average (EMA) needs the full weights on each rank: use DDP or one process"
            )
        self._average = WeightAverage(self.accelerator.unwrap_model(model), self.cfg.ema_decay)

    def _model_state(self, model) -> dict[str, torch.Tensor]:
        return self.accelerator.get_state_dict(model)  # full state on rank 0, also under FSDP/DeepSpeed

    def _load_model_state(self, model, sd: dict[str, torch.Tensor]) -> None:
        self.accelerator.unwrap_model(model).load_state_dict(sd)

    def _snapshot_best(self, model) -> None:
        sd = self._model_state(model)
        size = sum(t.numel() * t.element_size() for t in sd.values())
        if size < BEST_IN_MEMORY_BYTES:
            self._best_weights = {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}
            return
        path = self.out_dir / CHECKPOINT_DIR / "best-weights.safetensors"
        if self.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_tensors(sd, path.with_suffix(".tmp"))
            os.replace(path.with_suffix(".tmp"), path)
        self.accelerator.wait_for_everyone()
        self._best_weights = path

    def _best_state(self) -> dict[str, torch.Tensor]:
        best = self._best_weights
        return load_tensors(best) if isinstance(best, Path) else best

    # -- checkpoints

    def _save_checkpoint(self, model, optimizer, scheduler, state: _State) -> None:
        """An atomic checkpoint of this step (genoml.checkpoints.write_checkpoint); rank 0 writes."""
        from accelerate.utils import gather_object  # heavy: accelerate

        acc = self.accelerator
        rngs = [rng_state()] if acc.num_processes == 1 else gather_object([rng_state()])
        model_sd = self._model_state(model)
        if self.is_main:
            meta = {**asdict(state), "world_size": acc.num_processes, "config": asdict(self.cfg)}
            best = self._best_state() if self._best_weights is not None else None
            final, rewritten = write_checkpoint(
                self.out_dir / CHECKPOINT_DIR,
                state.step,
                model=model_sd,
                best=best,
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                rngs=rngs,
                meta=meta,
                keep=self.cfg.keep_checkpoints,
                average=None if self._average is None else self._average.state_dict(),
            )
            if rewritten:
                log.debug("checkpoint updated: %s", final)
            else:
                log.info("checkpoint written: %s", final)
        self._saved_step = state.step
        acc.wait_for_everyone()

    def _load_checkpoint(self, ckpt: Path, model, optimizer, scheduler, state: _State) -> None:
        from accelerate.utils import DistributedType  # heavy: accelerate

        acc = self.accelerator
        if acc.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            raise GenomlError(
                f"resume under {acc.distributed_type.value} is not supported yet; resume with DDP "
                f"(torchrun) or a single process from {ckpt}"
            )
        saved = read_checkpoint(ckpt, acc.process_index)
        for f in ("step", "history", "best", "bad_evals", "elapsed_s", "stopped", "last_eval_step"):
            setattr(state, f, saved.meta[f])
        self._load_model_state(model, saved.model)
        if saved.best is not None:
            self._best_weights = saved.best
        if self._average is not None:
            if saved.average is None:
                raise GenomlError(
                    f"resume: {ckpt} was written without a weight average (EMA); resume with it off "
                    "(genoml finetune --ema 0)"
                )
            self._average.load_state_dict(saved.average)
        elif saved.average is not None:
            log.warning("resume: %s holds a weight average (EMA) that this run does not use", ckpt)
        optimizer.load_state_dict(saved.optimizer)
        scheduler.load_state_dict(saved.scheduler)
        if saved.rng is not None:
            set_rng_state(saved.rng)
        else:
            log.warning(
                "resume: checkpoint from %d processes, now %d: rank %d starts a fresh RNG stream",
                saved.meta["world_size"],
                acc.num_processes,
                acc.process_index,
            )
        self._saved_step = state.step
        log.info("resumed from %s (step %d)", ckpt, state.step)
