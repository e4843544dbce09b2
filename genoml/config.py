"""Typed run configuration: every default of finetune/predict lives here, with a JSON round trip.

`FinetuneConfig` is what `genoml finetune` builds from its flags and what `genoml.json` stores,
so a run can be repeated from its own folder.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genoml.errors import InputError

STRATEGIES = ("probe", "partial", "lora", "full")
TASKS = ("auto", "binary", "multiclass", "multilabel", "regression")
BASELINE_NETS = ("cnn", "cnn-shallow", "rnn")  # from-scratch torch baselines over one-hot input
BASELINE_MODELS = (*BASELINE_NETS, "kmer-linear")


@dataclass
class DataConfig:
    """Where the labelled sequences come from (see `genoml.io.InputSpec`)."""

    train: str | None = None
    labels: str | None = None
    classes: list[tuple[str, str]] = field(default_factory=list)
    bed: str | None = None
    genome: str | None = None
    label_column: int | None = None
    valid: str | None = None
    test: str | None = None
    alphabet: str = "auto"
    rna: bool = False
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    split_by: str = "random"  # random | region | chrom | similarity (genoml.splits)


@dataclass
class FinetuneConfig:
    """All settings of one fine-tuning run (defaults chosen for small CPU runs)."""

    data: DataConfig = field(default_factory=DataConfig)
    out: str = "runs/finetune"
    force: bool = False
    resume: bool = False
    model: str | None = (
        None  # None or "auto" = choose among candidates (genoml.auto); "embedded" = the shipped model
    )
    revision: str | None = None
    trust_remote_code: bool = False
    strategy: str = "full"  # probe | partial:N | lora | full
    pooling: str = "mean"  # mean | cls
    head: str = "linear"  # linear | mlp
    task: str = "auto"
    standardize: bool = True  # regression targets
    class_weights: bool = False
    epochs: int | None = None  # None = the recipe default for the model family (see recipe_defaults)
    batch_size: int | None = None
    lr: float | None = None  # None = a default per strategy (see default_lr)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    patience: int | None = None
    grad_accum: int = 1
    clip_norm: float = 1.0
    max_tokens: int | None = None  # None = the model's maximum
    stride: int | None = None  # window stride in bases; None = half a window
    aggregate: str = "mean"  # mean | max over windows
    rc_augment: bool = False
    rc_average: bool = False
    rc: str = (
        "auto"  # DNA: auto (decided on validation, genoml.auto.decide_rc) | on | off; the rc_* flags force on
    )
    candidates: list[str] = field(default_factory=list)  # --model auto: extra candidates name[:strategy]
    seed: int = 0
    time_budget_min: float | None = None
    threads: int | None = None
    device: str = "auto"  # auto | cpu | cuda (training, validation and test inference)
    threshold: float = 0.5
    positive_class: str | None = (
        None  # binary: the label scored as positive (None: genoml.report.positive_class)
    )
    baselines: bool = True
    attention: bool = True
    adapt_steps: int = 0
    lora_rank: int = 8

    def is_auto(self) -> bool:
        """True when the run chooses its model among candidates (`--model auto`, or no --model)."""
        return self.model in (None, "auto")

    def with_recipe_defaults(self, convolutional: bool) -> FinetuneConfig:
        """A copy with unset epochs/batch_size/patience filled from `recipe_defaults`."""
        rec = recipe_defaults(convolutional)
        return dataclasses.replace(self, **{k: v for k, v in rec.items() if getattr(self, k) is None})

    def strategy_name(self) -> str:
        return self.strategy.split(":", 1)[0]

    def partial_layers(self) -> int:
        """N of `partial:N` (default 2)."""
        name, _, n = self.strategy.partition(":")
        if name != "partial":
            return 0
        return int(n) if n else 2

    def default_lr(self, hidden_size: int | None = None, arch: str | None = None) -> float:
        """--lr, else a default per strategy. For `partial`/`full` the default is 1e-4 / 2e-4 at hidden size
        768 (BERT-base) and grows as 768 / hidden (muP-style width scaling, capped at 1e-3), so that
        small encoders such as genoml's embedded models (hidden 128-256) are not trained at a BERT-base lr."""
        if self.lr is not None:
            return self.lr
        if self.model in BASELINE_NETS:
            return 2e-3
        if arch in BASELINE_NETS:  # a convolutional/recurrent trunk transferred from another genoml run
            return {"probe": 2e-3, "partial": 1e-3}.get(self.strategy_name(), 1e-3)
        name = self.strategy_name()
        base = {"probe": 2e-3, "partial": 2e-4, "lora": 1e-3, "full": 1e-4}[name]
        if name in ("partial", "full") and hidden_size:
            base = min(1e-3, base * max(1.0, 768 / hidden_size))
        return base

    def validate(self) -> None:
        """Refuse bad flag values with a message naming the flag."""
        name, _, n = self.strategy.partition(":")
        if name not in STRATEGIES or (n and (name != "partial" or not n.isdigit())):
            raise InputError(
                f"--strategy: '{self.strategy}' is not a strategy; use one of probe, partial:N (e.g. partial:2), lora, full"
            )
        if self.task not in TASKS:
            raise InputError(f"--task: '{self.task}' is not a task; use one of {', '.join(TASKS)}")
        if self.pooling not in ("mean", "cls"):
            raise InputError(f"--pooling: '{self.pooling}' is not supported; use mean or cls")
        if self.head not in ("linear", "mlp"):
            raise InputError(f"--head: '{self.head}' is not supported; use linear or mlp")
        if self.aggregate not in ("mean", "max"):
            raise InputError(f"--aggregate: '{self.aggregate}' is not supported; use mean or max")
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if value is not None and value < 1:
                raise InputError(f"{flag}: must be at least 1, got {value}")
        if self.rc not in ("auto", "on", "off"):
            raise InputError(f"--rc: '{self.rc}' is not supported; use auto, on or off")
        if self.time_budget_min is not None and not self.time_budget_min > 0:
            raise InputError(f"--time-budget: must be positive minutes, got {self.time_budget_min}")
        if self.patience is not None and self.patience < 1:
            raise InputError(f"--patience: must be at least 1 epoch, got {self.patience}")
        if self.stride is not None and self.stride < 1:
            raise InputError(f"--stride: must be at least 1 base, got {self.stride}")
        if self.grad_accum < 1:
            raise InputError(f"--grad-accum: must be at least 1, got {self.grad_accum}")
        if self.lr is not None and not self.lr > 0:
            raise InputError(f"--lr: must be positive, got {self.lr}")
        if self.adapt_steps < 0:
            raise InputError(f"--adapt-steps: must be 0 or more, got {self.adapt_steps}")
        if not 0 <= self.threshold <= 1:
            raise InputError(f"--threshold: must be in [0, 1], got {self.threshold}")
        if not 0 <= self.data.valid_fraction < 0.5 or not 0 <= self.data.test_fraction < 0.5:
            raise InputError("--valid-fraction/--test-fraction: must be in [0, 0.5)")
        if self.max_tokens is not None and self.max_tokens < 4:
            raise InputError(f"--max-tokens: must be at least 4, got {self.max_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        d = dict(d)
        data = DataConfig(**{**d.pop("data", {})})
        data.classes = [tuple(c) for c in data.classes]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(data=data, **{k: v for k, v in d.items() if k in known})


# The best recipe measured so far (BENCHMARKS.md, GUE section): from-scratch and transferred
# convolutional/recurrent nets train 30 epochs of batch 64 and keep the best validation epoch
# (patience = epochs: a noisy validation epoch never stops them; the lr decays linearly to 0 over
# the epochs or the time budget). Transformers keep the shorter schedule that fits a CPU.
RECIPES = {
    "convolutional": {"epochs": 30, "batch_size": 64, "patience": 30},
    "transformer": {"epochs": 10, "batch_size": 32, "patience": 3},
}


def recipe_defaults(convolutional: bool) -> dict[str, int]:
    """Default epochs / batch_size / patience of a model family (see RECIPES)."""
    return dict(RECIPES["convolutional" if convolutional else "transformer"])


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    tmp.replace(path)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
