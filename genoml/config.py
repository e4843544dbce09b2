"""Typed settings of every genoml command and of the training loop: every default and flag help lives here.

One dataclass per command (`FinetuneConfig` + `DataConfig`, `PretrainConfig`,
`MultitaskConfig`, `BenchConfig`, `PredictConfig`) and `TrainConfig` for `genoml.train`. A field's
`metadata["help"]` is its flag's `--help` text; `genoml.cli` reads defaults and help with `default()`
and `helptext()`, so neither is typed twice. `validate()` refuses bad values with `require()`:
`--flag: must be <allowed>, got <value>` (InputError, exit code 2). `FinetuneConfig` is also what
`genoml.json` stores (JSON round trip), so a run can be repeated from its own folder.
This module imports no torch/transformers: `genoml --help` reads it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genoml.errors import InputError
from genoml.outputs import write_atomic
from genoml.presets import MLM_ARCHS, PRESETS

POOLINGS = ("auto", "mean", "cls", "meanmax")  # finetune --pooling; "auto" is resolved per encoder

if TYPE_CHECKING:
    from genoml.io import InputSpec

STRATEGIES = ("probe", "partial", "lora", "full")
TASKS = ("auto", "binary", "multiclass", "multilabel", "regression")
BASELINE_NETS = ("cnn", "cnn-shallow", "cnn-attn", "rnn")  # from-scratch torch baselines over one-hot input
BASELINE_MODELS = (*BASELINE_NETS, "kmer-linear")
# FinetuneConfig fields that `genoml bench` sets itself per run (not allowed in BenchConfig.options)
BENCH_RESERVED = {
    "data",
    "out",
    "force",
    "resume",
    "model",
    "strategy",
    "seed",
    "epochs",
    "time_budget_min",
    "threads",
    "device",
}

# help texts of flags that several commands share
DEVICE_HELP = "auto | cpu | cuda (bf16 autocast on GPU)."
THREADS_HELP = "CPU threads for torch."
REVISION_HELP = "Hub revision (branch, tag or commit)."
TRUST_REMOTE_CODE_HELP = "Run Python code shipped with the model repository (only if you trust it)."
FORCE_HELP = "Replace genoml's own earlier outputs in --out (never other files)."
RC_HELP = (
    "DNA reverse complements (train on both strands, average both): auto (decided on validation) | on | off."
)
RC_AUGMENT_HELP = "DNA: also train on reverse complements."
RC_AVERAGE_HELP = "DNA: average forward and reverse-complement predictions."
ALPHABET_HELP = "auto | dna | protein."


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING) -> Any:
    """A dataclass field whose `metadata["help"]` is the `--help` text of its flag."""
    return field(default=default, default_factory=factory, metadata={"help": help})


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def default(cls: type, name: str) -> Any:
    """The default value of field `name` of dataclass `cls` (a fresh one for list/dict defaults)."""
    f = _field(cls, name)
    if f.default_factory is not MISSING:
        return f.default_factory()
    if f.default is MISSING:
        raise KeyError(f"{cls.__name__}.{name} has no default")
    return f.default


def helptext(cls: type, name: str) -> str:
    """The `--help` text of field `name` of dataclass `cls` (KeyError when it has none)."""
    text = _field(cls, name).metadata.get("help")
    if not text:
        raise KeyError(f"{cls.__name__}.{name} has no help text")
    return text


def require(checks: list[tuple[str, Any, bool, str]]) -> None:
    """Refuse the first failed check `(flag, value, ok, allowed)`: InputError `{flag}: must be {allowed}, got {value!r}`."""
    for flag, value, ok, allowed in checks:
        if not ok:
            raise InputError(f"{flag}: must be {allowed}, got {value!r}")


# ---------------------------------------------------------------- finetune


@dataclass
class DataConfig:
    """Where the labelled sequences come from (see `genoml.io.InputSpec`)."""

    train: str | None = setting(None, "Training sequences: FASTA, CSV/TSV (sequence,label), or '-'.")
    labels: str | None = setting(None, "TSV/CSV of id<TAB>label joined to FASTA ids.")
    classes: list[tuple[str, str]] = setting(help="NAME=FILE: one FASTA per class (repeat).", factory=list)
    bed: str | None = setting(None, "BED intervals (with --genome); label in --label-column.")
    genome: str | None = setting(None, "Reference FASTA for --bed (plain or bgzip).")
    label_column: int | None = setting(None, "1-based BED column holding the label.")
    valid: str | None = setting(None, "Validation file (else a stratified split of train).")
    test: str | None = setting(None, "Test file (else a stratified split of train).")
    alphabet: str = setting("auto", ALPHABET_HELP)
    rna: bool = setting(False, "Map U to T (RNA input).")
    valid_fraction: float = setting(0.1, "Validation share when no --valid.")
    test_fraction: float = setting(0.1, "Test share when no --test.")
    split_by: str = setting(  # see genoml.splits
        "random",
        "random | region (BED: overlapping/nearby intervals together) | chrom (whole "
        "chromosomes held out) | similarity (k-mer MinHash clusters together).",
    )

    def input_spec(self, path: str | None, *, extras: bool = True, alphabet: str | None = None) -> InputSpec:
        """The `genoml.io.InputSpec` that reads `path` with these settings. extras=False leaves out the label
        table, --class files and BED/genome (for --valid/--test files); `alphabet` overrides `self.alphabet`."""
        from genoml.io import InputSpec  # heavy: genoml.io loads the bioformats readers (~0.5 s)

        return InputSpec(
            path=path,
            labels=self.labels if extras else None,
            classes=self.classes if extras else [],
            bed=self.bed if extras else None,
            genome=self.genome if extras else None,
            alphabet=alphabet or self.alphabet,
            rna=self.rna,
            label_column=self.label_column if extras else None,
        )


@dataclass
class FinetuneConfig:
    """All settings of one fine-tuning run (defaults chosen for small CPU runs)."""

    data: DataConfig = field(default_factory=DataConfig)
    out: str = setting("runs/finetune", "Run directory to write.")
    force: bool = setting(False, FORCE_HELP)
    resume: bool = setting(False, "Continue an interrupted run in --out.")
    # None or "auto" = choose among candidates (genoml.auto); "embedded" = the shipped model
    model: str | None = setting(
        None,
        "auto (default: train candidates, keep the best on validation), cnn, cnn-shallow, cnn-attn, rnn, "
        "kmer-linear, embedded, random:<preset>, a hub id, a model folder, or a genoml run / "
        "multitask folder as the base (its head is replaced).",
    )
    revision: str | None = setting(None, REVISION_HELP)
    trust_remote_code: bool = setting(False, TRUST_REMOTE_CODE_HELP)
    strategy: str = setting("full", "probe | partial:N | lora | full.")
    pooling: str = setting(
        "auto",
        "auto (meanmax for genoml's convolutional masked LM, mean for transformers) | mean | cls | meanmax "
        "(mean and max over tokens).",
    )
    head: str = setting("linear", "linear | mlp.")
    task: str = setting("auto", "auto | binary | multiclass | multilabel | regression.")
    standardize: bool = True  # regression targets
    class_weights: bool = setting(False, "Weight classes by inverse frequency.")
    epochs: int | None = setting(  # None = the recipe default for the model family (see recipe_defaults)
        None, "Maximum epochs (default: 30 for cnn/rnn trunks, 10 for transformers)."
    )
    batch_size: int | None = setting(None, "Sequences per batch (default: 64 cnn/rnn, 32 transformers).")
    lr: float | None = setting(None, "Learning rate (default depends on the strategy).")  # see default_lr
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    patience: int | None = setting(
        None, "Epochs without improvement before stopping (default: 30 cnn/rnn, 3 transformers)."
    )
    grad_accum: int = setting(1, "Gradient accumulation steps.")
    clip_norm: float = 1.0
    ema: float | None = setting(
        None,
        "Decay of an exponential moving average of the weights that validation, early stopping and the "
        "saved model then use, e.g. 0.999 (default: off; 0 also means off).",
    )
    max_tokens: int | None = setting(None, "Tokens per window.")  # None = the model's maximum
    stride: int | None = setting(None, "Window stride in bases (default: half a window).")
    aggregate: str = setting("mean", "Combine window logits by mean | max.")
    rc_augment: bool = setting(False, RC_AUGMENT_HELP)
    rc_average: bool = setting(False, RC_AVERAGE_HELP)
    rc: str = setting("auto", RC_HELP)  # auto: decided on validation (genoml.auto.decide_rc); rc_* force on
    candidates: list[str] = setting(
        help="--model auto: extra candidates, comma list of name[:strategy] "
        "(e.g. embedded:partial:2,runs/mt:full).",
        factory=list,
    )
    seed: int = setting(0, "Random seed (splits, init, batches).")
    time_budget_min: float | None = setting(
        None, "Minutes of training (--model auto: for all candidates together; default 5)."
    )
    threads: int | None = setting(None, THREADS_HELP)
    device: str = setting("auto", DEVICE_HELP)  # training, validation and test inference
    threshold: float = 0.5
    positive_class: str | None = setting(  # None: genoml.report.positive_class
        None, "Binary: the positive label (default: 1/true/yes/pos*, else the minority)."
    )
    baselines: bool = setting(True, "Also fit kmer-linear and majority baselines for the report.")
    attention: bool = setting(True, "Put example attention maps in the report.")
    adapt_steps: int = setting(0, "Masked-LM steps on the training sequences before fine-tuning.")
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
        strategy_ok = name in STRATEGIES and not (n and (name != "partial" or not n.isdigit()))
        data = self.data
        require(
            [
                (
                    "--strategy",
                    self.strategy,
                    strategy_ok,
                    "one of probe, partial:N (e.g. partial:2), lora, full",
                ),
                ("--task", self.task, self.task in TASKS, f"one of {', '.join(TASKS)}"),
                ("--pooling", self.pooling, self.pooling in POOLINGS, "auto, mean, cls or meanmax"),
                ("--head", self.head, self.head in ("linear", "mlp"), "linear or mlp"),
                ("--aggregate", self.aggregate, self.aggregate in ("mean", "max"), "mean or max"),
                ("--epochs", self.epochs, self.epochs is None or self.epochs >= 1, "at least 1"),
                (
                    "--batch-size",
                    self.batch_size,
                    self.batch_size is None or self.batch_size >= 1,
                    "at least 1",
                ),
                ("--rc", self.rc, self.rc in ("auto", "on", "off"), "auto, on or off"),
                (
                    "--time-budget",
                    self.time_budget_min,
                    self.time_budget_min is None or self.time_budget_min > 0,
                    "positive minutes",
                ),
                (
                    "--patience",
                    self.patience,
                    self.patience is None or self.patience >= 1,
                    "at least 1 epoch",
                ),
                ("--stride", self.stride, self.stride is None or self.stride >= 1, "at least 1 base"),
                ("--grad-accum", self.grad_accum, self.grad_accum >= 1, "at least 1"),
                ("--ema", self.ema, self.ema is None or 0 <= self.ema < 1, "in [0, 1) (0: off), e.g. 0.999"),
                ("--lr", self.lr, self.lr is None or self.lr > 0, "positive"),
                ("--adapt-steps", self.adapt_steps, self.adapt_steps >= 0, "0 or more"),
                ("--threshold", self.threshold, 0 <= self.threshold <= 1, "in [0, 1]"),
                ("--valid-fraction", data.valid_fraction, 0 <= data.valid_fraction < 0.5, "in [0, 0.5)"),
                ("--test-fraction", data.test_fraction, 0 <= data.test_fraction < 0.5, "in [0, 0.5)"),
                (
                    "--max-tokens",
                    self.max_tokens,
                    self.max_tokens is None or self.max_tokens >= 4,
                    "at least 4",
                ),
            ]
        )

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
# the epochs or the time budget). Transformers keep the shorter schedule that fits a CPU. Weight
# averaging (--ema) is not part of either: it was mixed across GUE tasks (BENCHMARKS.md "Weight averaging").
RECIPES = {
    "convolutional": {"epochs": 30, "batch_size": 64, "patience": 30},
    "transformer": {"epochs": 10, "batch_size": 32, "patience": 3},
}


def recipe_defaults(convolutional: bool) -> dict[str, int]:
    """Default epochs / batch_size / patience of a model family (see RECIPES)."""
    return dict(RECIPES["convolutional" if convolutional else "transformer"])


# ---------------------------------------------------------------- pretrain


@dataclass
class PretrainConfig:
    """Settings of `genoml pretrain` (defaults in one place)."""

    inputs: list[str] = setting(help="FASTA files (plain or gzip; genomes or protein sets).", factory=list)
    out: str = setting("runs/pretrain", "Output folder (HF masked-LM + tokenizer + genoml.json).")
    preset: str = setting("small", " | ".join(PRESETS) + ".")
    arch: str | None = setting(  # None: "bert" for DNA, "esm" (ESM-2 style, rotary) for protein
        None,
        "bert | esm (pre-LayerNorm, rotary positions) | cnn (dilated residual CNN); default bert for DNA, esm "
        "for protein.",
    )
    tokenizer: str | None = setting(  # None: "char" for DNA, "esm" for protein
        None, "kmer:K | nt-kmer:K | char | esm | protbert | bpe:V (default: char / esm)."
    )
    alphabet: str = setting("auto", ALPHABET_HELP)
    window: int = setting(512, "Bases (or residues) per training window.")
    max_steps: int = setting(10_000, "Optimizer steps.")
    batch_size: int = setting(  # sequences per optimizer step, over all processes and accumulation steps
        32, "Global batch (all processes x accumulation)."
    )
    lr: float = setting(5e-4, "Peak learning rate.")
    mask_rate: float = setting(0.15, "Fraction of tokens masked (80/10/10).")
    eval_fraction: float = setting(0.02, "Held-out share of every record.")
    eval_windows: int = setting(256, "Held-out windows evaluated each time.")
    eval_every: int = setting(500, "Steps between held-out evaluations.")
    checkpoint_every: int = setting(500, "Steps between atomic checkpoints.")
    log_every: int = setting(50, "Steps between training-loss / tokens-per-second records.")
    seed: int = setting(0, "Random seed.")
    resume: bool = setting(False, "Continue from the last complete checkpoint in --out.")
    model: str | None = setting(None, "Continue pretraining this HF masked-LM folder or hub id.")
    time_budget_min: float | None = setting(None, "Stop (and save) after this many minutes.")
    grad_accum: int = setting(1, "Gradient accumulation steps.")
    force: bool = setting(False, FORCE_HELP)
    dropout: float = setting(  # the saved config keeps 0.1
        0.1, "Hidden dropout while pretraining a new model."
    )
    warmup_ratio: float = 0.06
    threads: int | None = setting(None, "CPU threads per process.")
    device: str = setting("auto", DEVICE_HELP)
    compile: bool = setting(False, "torch.compile the encoder (fastest on GPU).")
    prefetch: int = setting(  # batches prepared ahead in a background thread (0: on demand)
        2, "Batches prepared ahead in a background thread (0: off)."
    )

    def validate(self) -> None:
        require(
            [
                ("--window", self.window, self.window >= 8, "at least 8"),
                ("--max-steps", self.max_steps, self.max_steps >= 1, "at least 1"),
                ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
                (
                    "--grad-accum",
                    self.grad_accum,
                    self.grad_accum >= 1 and self.batch_size % self.grad_accum == 0,
                    "at least 1 and a divisor of --batch-size",
                ),
                ("--lr", self.lr, self.lr > 0, "positive"),
                ("--mask-rate", self.mask_rate, 0 < self.mask_rate < 1, "in (0, 1)"),
                ("--eval-fraction", self.eval_fraction, 0 < self.eval_fraction < 0.5, "in (0, 0.5)"),
                ("--eval-windows", self.eval_windows, self.eval_windows >= 1, "at least 1"),
                ("--eval-every", self.eval_every, self.eval_every >= 1, "at least 1"),
                ("--checkpoint-every", self.checkpoint_every, self.checkpoint_every >= 1, "at least 1"),
                ("--dropout", self.dropout, 0 <= self.dropout < 1, "in [0, 1)"),
                ("--prefetch", self.prefetch, self.prefetch >= 0, "0 or more"),
                (
                    "--alphabet",
                    self.alphabet,
                    self.alphabet in ("auto", "dna", "protein"),
                    "auto, dna or protein",
                ),
                ("--arch", self.arch, self.arch in (None, *MLM_ARCHS), " or ".join(MLM_ARCHS)),
                (
                    "--time-budget",
                    self.time_budget_min,
                    self.time_budget_min is None or self.time_budget_min > 0,
                    "positive minutes",
                ),
            ]
        )
        # not at module level: genoml.tokenizers (~50 ms) would load on every `genoml --help`
        from genoml.tokenizers import bpe_vocab_size

        if bpe_vocab_size(self.tokenizer) and self.model:
            raise InputError(
                f"--tokenizer {self.tokenizer}: continued pretraining (--model) keeps the model's tokenizer"
            )
        if not self.inputs:
            raise InputError(
                "pretrain: no input FASTA files given; pass one or more FASTA files (gz or plain)"
            )


# ---------------------------------------------------------------- multitask


@dataclass
class MultitaskConfig:
    """Settings of `genoml multitask` (datasets: "NAME=FILE" or FILE; shuffled: unlabelled DNA for the
    self-supervised real-vs-shuffled task; exclude: files of sequences to keep out)."""

    datasets: list[str] = setting(help="Labelled files (CSV/TSV/FASTA), each FILE or NAME=FILE.")
    out: str = setting("runs/multitask", "Output folder (usable as finetune --model).")
    arch: str = setting(
        "cnn", "Trunk: cnn | cnn-shallow | cnn-attn | rnn (from scratch; ignored with --base)."
    )
    base: str | None = setting(
        None,
        "Start from this model's trunk: a genoml run, pretrain or multitask folder, a transformers folder, or "
        "'embedded' (self-supervised, then supervised pretraining).",
    )
    exclude: list[str] = setting(
        help="Target task's dev/test file (repeat): training sequences equal to, containing or inside any of its "
        "sequences (either strand) are removed and counted.",
        factory=list,
    )
    shuffled: list[str] = setting(
        help="Unlabelled DNA (FASTA/CSV/TSV, labels ignored; repeat): its windows beside dinucleotide-shuffled "
        "copies form a self-supervised 'real vs shuffled' task trained with the datasets (or alone).",
        factory=list,
    )
    shuffled_width: int = setting(100, "Window length (bases) cut from --shuffled sequences.")
    time_budget_min: float | None = setting(None, "Stop training after this many minutes.")
    epochs: int = setting(10, "Passes over the summed training sets (at most).")
    batch_size: int = setting(64, "Sequences per batch (one dataset per batch).")
    lr: float | None = setting(
        None,
        "Peak learning rate (default: 2e-3 from scratch; with --base, finetune's full-strategy default).",
    )
    valid_fraction: float = setting(0.05, "Share of each dataset held out for validation.")
    seed: int = setting(0, "Random seed.")
    threads: int | None = setting(None, THREADS_HELP)
    force: bool = setting(False, "Overwrite a non-empty --out.")

    def validate(self) -> None:
        if len(self.datasets) < 1 and not self.shuffled:
            raise InputError(
                "multitask: give at least one labelled dataset (NAME=FILE or FILE) or --shuffled FILE"
            )
        require(
            [
                ("--shuffled-width", self.shuffled_width, self.shuffled_width >= 10, "at least 10"),
                ("--arch", self.arch, self.arch in BASELINE_NETS, f"one of {', '.join(BASELINE_NETS)}"),
                ("--epochs", self.epochs, self.epochs >= 1, "at least 1"),
                ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
                ("--lr", self.lr, self.lr is None or self.lr > 0, "positive"),
                ("--valid-fraction", self.valid_fraction, 0 < self.valid_fraction < 0.5, "in (0, 0.5)"),
                (
                    "--time-budget",
                    self.time_budget_min,
                    self.time_budget_min is None or self.time_budget_min > 0,
                    "positive minutes",
                ),
            ]
        )


# ---------------------------------------------------------------- bench


@dataclass
class BenchConfig:
    """What `genoml bench` compares and how (`options` = extra FinetuneConfig fields, e.g. rc_augment)."""

    train: str = setting(help="Training sequences (CSV/TSV/FASTA).")
    valid: str | None = setting(None, "Validation file.")
    test: str | None = setting(None, "Test file.")
    models: list[str] = setting(
        help="Comma list of name[:strategy], e.g. cnn,kmer-linear,dir:lora.",
        factory=lambda: ["cnn", "kmer-linear"],
    )
    seeds: int = setting(3, "Seeds per model.")
    out: str = setting("runs/bench", "Benchmark folder.")
    time_budget_min: float | None = setting(None, "Minutes of training per model and seed.")
    epochs: int = setting(10, "Maximum epochs per run.")
    force: bool = setting(False, FORCE_HELP)
    reuse: bool = setting(  # keep finished run dirs whose settings match (continue an interrupted bench)
        False, "Keep finished runs with matching settings (continue a bench)."
    )
    threads: int | None = setting(None, THREADS_HELP)
    device: str = setting("auto", DEVICE_HELP)
    options: dict[str, Any] = field(default_factory=dict)
    title: str | None = None

    def validate(self) -> None:
        """The value checks (`genoml.bench.check_bench` adds the device before them and the model names after)."""
        if not self.models:
            raise InputError("--models: give at least one model, e.g. --models cnn,kmer-linear")
        require(
            [
                ("--seeds", self.seeds, self.seeds >= 1, "at least 1"),
                (
                    "--time-budget",
                    self.time_budget_min,
                    self.time_budget_min is None or self.time_budget_min > 0,
                    "positive minutes",
                ),
            ]
        )
        known = {f.name for f in dataclasses.fields(FinetuneConfig)} - BENCH_RESERVED
        bad = sorted(set(self.options) - known)
        if bad:
            raise InputError(
                f"bench options {bad}: not finetune settings; allowed: {', '.join(sorted(known))}"
            )


# `genoml bench` flags passed on to every run as BenchConfig.options (FinetuneConfig fields)
BENCH_OPTION_HELP = {
    "batch_size": "Sequences per batch (finetune default if unset).",
    "lr": "Learning rate (finetune's per-strategy default if unset).",
    "adapt_steps": "Pretrained models: masked-LM steps on the training split first.",
}


# ---------------------------------------------------------------- predict


@dataclass
class PredictConfig:
    """Settings of `genoml predict` (streaming inference over one input)."""

    model: str = setting(help="Run directory from genoml finetune.")
    input: str = setting("-", "FASTA/CSV/TSV file or '-' for stdin.")
    output: str = setting("-", "Output file or '-' for stdout.")
    format: str = setting("tsv", "tsv | csv | jsonl.")
    threshold: float | None = setting(None, "Decision threshold for binary/multilabel.")  # None = the run's
    device: str = setting("auto", DEVICE_HELP)
    precision: str = setting(  # see genoml.device.use_bf16
        "auto", "auto (bf16 on GPU and bf16-native CPUs, else fp32) | fp32 | bf16 | int8 (CPU)."
    )
    batch_tokens: int | None = setting(None, "Padded tokens per batch (default 4096 on CPU, 16384 on GPU).")
    chunk_size: int = setting(4096, "Records read per chunk (memory bound).")
    threads: int | None = setting(None, THREADS_HELP)
    strict: bool = setting(False, "Fail on an empty or invalid record instead of flagging it.")
    alphabet: str | None = None
    rna: bool = setting(False, "Map U to T.")
    labels: str | None = None
    bed: str | None = setting(None, "BED intervals (with --genome) instead of INPUT.")
    genome: str | None = setting(None, "Reference FASTA for --bed.")
    trust_remote_code: bool = setting(  # a run fine-tuned from a model that ships its own code
        False, TRUST_REMOTE_CODE_HELP
    )
    revision: str | None = setting(None, REVISION_HELP)


# ---------------------------------------------------------------- training loop


@dataclass
class TrainConfig:
    """Optimisation settings of `genoml.train.Trainer`. Steps are optimizer steps; one step = `grad_accum`
    micro-batches per rank.

    Global batch = per-rank micro-batch x world size x grad_accum. To keep it fixed whatever the
    number of processes, `get_batch` should split one global micro-batch across ranks (row i goes
    to rank i % world_size, as genoml.pretrain and genoml.finetune do): the optimizer then sees the
    same examples per step on 1 or N processes.
    """

    max_steps: int
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    grad_accum: int = 1
    clip_norm: float = 1.0
    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50
    patience: int | None = None  # evals without improvement of select_metric before early stop
    time_budget_s: float | None = None  # wall time over the whole run, resumes included
    select_metric: str | None = None  # evaluate() key used for early stopping and best weights
    greater_is_better: bool = True
    keep_checkpoints: int = 1
    eval_at_start: bool = False  # also evaluate the untrained model (step 0), e.g. for a loss curve
    schedule: str = "linear"  # linear | cosine | constant (after warmup)
    mixed_precision: str | None = None  # None = bf16 on CUDA, "no" on CPU
    device: str | None = None  # None/"auto": CUDA when available; "cpu" keeps training on the CPU; "cuda"
    find_unused_parameters: bool = False  # DDP: set when some trainable parameters get no gradient
    fit_schedule_to_budget: bool = True  # with a time budget, decay the lr to 0 when the budget is spent
    ema_decay: float | None = None  # a moving average of the weights (WeightAverage) is evaluated and kept

    def validate(self) -> None:
        schedules = ("linear", "cosine", "constant")
        require(
            [
                (f"training setting {name}", getattr(self, name), ok, allowed)
                for name, ok, allowed in [
                    ("max_steps", self.max_steps >= 1, "at least 1"),
                    ("lr", self.lr > 0, "positive"),
                    ("grad_accum", self.grad_accum >= 1, "at least 1"),
                    ("eval_every", self.eval_every >= 1, "at least 1"),
                    ("checkpoint_every", self.checkpoint_every >= 1, "at least 1"),
                    ("log_every", self.log_every >= 1, "at least 1"),
                    ("keep_checkpoints", self.keep_checkpoints >= 1, "at least 1"),
                    ("warmup_ratio", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
                    ("schedule", self.schedule in schedules, "linear, cosine or constant"),
                    ("ema_decay", self.ema_decay is None or 0 < self.ema_decay < 1, "in (0, 1)"),
                ]
            ]
        )
        if self.patience is not None and self.select_metric is None:
            raise InputError(
                "training setting patience needs select_metric (the metric early stopping watches)"
            )


# ---------------------------------------------------------------- JSON


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
