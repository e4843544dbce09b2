"""The `genoml` command line (Typer): the only module that knows about flags, stdout and exit codes.

Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 3 unsafe model file, 130 interrupted.
Data goes to stdout (or -o), messages and progress to stderr; `-` means stdin/stdout.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import os
import pickle
import signal
import sys
from typing import Annotated, Any

import click
import typer

from genoml import __version__
from genoml.checks import check_threads, check_time_budget
from genoml.config import (
    BENCH_OPTION_HELP,
    DEVICE_HELP,
    REVISION_HELP,
    TRUST_REMOTE_CODE_HELP,
    BenchConfig,
    DataConfig,
    FinetuneConfig,
    MultitaskConfig,
    PredictConfig,
    PretrainConfig,
    default,
    helptext,
    require,
)
from genoml.errors import GenomlError, InputError
from genoml.log import setup_logging
from genoml.presets import MLM_ARCHS

log = logging.getLogger("genoml")


# options shared by several commands (one definition, one help text from genoml.config)
DeviceOpt = Annotated[str, typer.Option(help=DEVICE_HELP)]
PrecisionOpt = Annotated[str, typer.Option(help=helptext(PredictConfig, "precision"))]
BatchTokensOpt = Annotated[int | None, typer.Option(help=helptext(PredictConfig, "batch_tokens"))]
RevisionOpt = Annotated[str | None, typer.Option(help=REVISION_HELP)]
TrustRemoteCodeOpt = Annotated[bool, typer.Option(help=TRUST_REMOTE_CODE_HELP)]


def _option(cls: type, name: str, *decls: str, **kw: Any) -> Any:
    """A typer.Option with the help text of config field `cls.name` (the parameter's default: `default(cls, name)`)."""
    return typer.Option(*decls, help=helptext(cls, name), **kw)


def _argument(cls: type, name: str) -> Any:
    """A typer.Argument whose help is the help text of config field `cls.name`."""
    return typer.Argument(help=helptext(cls, name))


app = typer.Typer(
    name="genoml",
    help="Transfer learning on DNA and protein sequences: pretrain, fine-tune, predict, interpret.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"genoml {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only warnings and errors on stderr.")] = False,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True, help="More detail on stderr.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(-1 if quiet else min(verbose, 1))


def _classes(values: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--class {v!r}: expected NAME=FILE, e.g. --class promoter=prom.fa")
        out.append((name, path))
    return out


# ---------------------------------------------------------------- finetune


@app.command()
def finetune(
    train: Annotated[str | None, _argument(DataConfig, "train")] = None,
    out: Annotated[str, _option(FinetuneConfig, "out", "--out", "-o")] = default(FinetuneConfig, "out"),
    labels: Annotated[str | None, _option(DataConfig, "labels")] = None,
    class_: Annotated[list[str] | None, _option(DataConfig, "classes", "--class")] = None,
    bed: Annotated[str | None, _option(DataConfig, "bed")] = None,
    genome: Annotated[str | None, _option(DataConfig, "genome")] = None,
    label_column: Annotated[int | None, _option(DataConfig, "label_column")] = None,
    valid: Annotated[str | None, _option(DataConfig, "valid")] = None,
    test: Annotated[str | None, _option(DataConfig, "test")] = None,
    model: Annotated[str | None, _option(FinetuneConfig, "model")] = None,
    candidates: Annotated[str | None, _option(FinetuneConfig, "candidates")] = None,
    revision: Annotated[str | None, _option(FinetuneConfig, "revision")] = None,
    trust_remote_code: Annotated[bool, _option(FinetuneConfig, "trust_remote_code")] = False,
    strategy: Annotated[str, _option(FinetuneConfig, "strategy")] = default(FinetuneConfig, "strategy"),
    pooling: Annotated[str, _option(FinetuneConfig, "pooling")] = default(FinetuneConfig, "pooling"),
    head: Annotated[str, _option(FinetuneConfig, "head")] = default(FinetuneConfig, "head"),
    task: Annotated[str, _option(FinetuneConfig, "task")] = default(FinetuneConfig, "task"),
    class_weights: Annotated[bool, _option(FinetuneConfig, "class_weights")] = False,
    epochs: Annotated[int | None, _option(FinetuneConfig, "epochs")] = None,
    batch_size: Annotated[int | None, _option(FinetuneConfig, "batch_size")] = None,
    lr: Annotated[float | None, _option(FinetuneConfig, "lr")] = None,
    patience: Annotated[int | None, _option(FinetuneConfig, "patience")] = None,
    grad_accum: Annotated[int, _option(FinetuneConfig, "grad_accum")] = default(FinetuneConfig, "grad_accum"),
    ema: Annotated[float | None, _option(FinetuneConfig, "ema")] = None,
    max_tokens: Annotated[
        int | None, _option(FinetuneConfig, "max_tokens", "--window", "--max-tokens")
    ] = None,
    stride: Annotated[int | None, _option(FinetuneConfig, "stride")] = None,
    aggregate: Annotated[str, _option(FinetuneConfig, "aggregate")] = default(FinetuneConfig, "aggregate"),
    rc: Annotated[str, _option(FinetuneConfig, "rc")] = default(FinetuneConfig, "rc"),
    rc_augment: Annotated[bool, _option(FinetuneConfig, "rc_augment")] = False,
    rc_average: Annotated[bool, _option(FinetuneConfig, "rc_average")] = False,
    alphabet: Annotated[str, _option(DataConfig, "alphabet")] = default(DataConfig, "alphabet"),
    rna: Annotated[bool, _option(DataConfig, "rna")] = False,
    split_by: Annotated[str, _option(DataConfig, "split_by")] = default(DataConfig, "split_by"),
    positive_class: Annotated[str | None, _option(FinetuneConfig, "positive_class")] = None,
    valid_fraction: Annotated[float, _option(DataConfig, "valid_fraction")] = default(
        DataConfig, "valid_fraction"
    ),
    test_fraction: Annotated[float, _option(DataConfig, "test_fraction")] = default(
        DataConfig, "test_fraction"
    ),
    seed: Annotated[int, _option(FinetuneConfig, "seed")] = default(FinetuneConfig, "seed"),
    time_budget: Annotated[float | None, _option(FinetuneConfig, "time_budget_min")] = None,
    threads: Annotated[int | None, _option(FinetuneConfig, "threads")] = None,
    device: Annotated[str, _option(FinetuneConfig, "device")] = default(FinetuneConfig, "device"),
    baselines: Annotated[bool, _option(FinetuneConfig, "baselines")] = True,
    attention: Annotated[bool, _option(FinetuneConfig, "attention")] = True,
    adapt_steps: Annotated[int, _option(FinetuneConfig, "adapt_steps")] = default(
        FinetuneConfig, "adapt_steps"
    ),
    force: Annotated[bool, _option(FinetuneConfig, "force")] = False,
    resume: Annotated[bool, _option(FinetuneConfig, "resume")] = False,
) -> None:
    """Fine-tune an encoder (or train a baseline) on labelled sequences; writes a run directory."""
    # first statement, so that only the parameters are local yet; each is named as its config field
    flags = dict(locals())
    from genoml.finetune import run_finetune  # heavy: imports torch

    if train is None and not class_ and not bed:
        raise InputError("finetune: give a training file, --class NAME=FILE options, or --bed with --genome")
    cfg = _finetune_config(flags)
    if cfg.candidates and not cfg.is_auto():
        raise InputError("--candidates: only with --model auto (or no --model)")
    result = run_finetune(cfg, command=["genoml", *(_ARGV or sys.argv[1:])])
    print(result["out"])
    if result["stopped"] == "interrupted":
        raise typer.Exit(130)


def _finetune_config(flags: dict[str, Any]) -> FinetuneConfig:
    """The FinetuneConfig of `genoml finetune`'s flags: each flag is its config field (DataConfig's go to
    `data`) but --class (NAME=FILE pairs), --candidates (a comma list) and --time-budget (time_budget_min)."""
    flags = dict(flags)
    classes = _classes(flags.pop("class_"))
    candidates = [c.strip() for c in (flags.pop("candidates") or "").split(",") if c.strip()]
    flags["time_budget_min"] = flags.pop("time_budget")
    data = {f.name: flags.pop(f.name) for f in dataclasses.fields(DataConfig) if f.name in flags}
    return FinetuneConfig(data=DataConfig(classes=classes, **data), candidates=candidates, **flags)


@app.command()
def pretrain(
    inputs: Annotated[list[str], _argument(PretrainConfig, "inputs")],
    out: Annotated[str, _option(PretrainConfig, "out", "--out", "-o")] = default(PretrainConfig, "out"),
    preset: Annotated[str, _option(PretrainConfig, "preset")] = default(PretrainConfig, "preset"),
    arch: Annotated[str | None, _option(PretrainConfig, "arch")] = None,
    dropout: Annotated[float, _option(PretrainConfig, "dropout")] = default(PretrainConfig, "dropout"),
    tokenizer: Annotated[str | None, _option(PretrainConfig, "tokenizer")] = None,
    alphabet: Annotated[str, _option(PretrainConfig, "alphabet")] = default(PretrainConfig, "alphabet"),
    window: Annotated[int, _option(PretrainConfig, "window")] = default(PretrainConfig, "window"),
    max_steps: Annotated[int, _option(PretrainConfig, "max_steps")] = default(PretrainConfig, "max_steps"),
    batch_size: Annotated[int, _option(PretrainConfig, "batch_size")] = default(PretrainConfig, "batch_size"),
    lr: Annotated[float, _option(PretrainConfig, "lr")] = default(PretrainConfig, "lr"),
    mask_rate: Annotated[float, _option(PretrainConfig, "mask_rate")] = default(PretrainConfig, "mask_rate"),
    eval_fraction: Annotated[float, _option(PretrainConfig, "eval_fraction")] = default(
        PretrainConfig, "eval_fraction"
    ),
    eval_every: Annotated[int, _option(PretrainConfig, "eval_every")] = default(PretrainConfig, "eval_every"),
    eval_windows: Annotated[int, _option(PretrainConfig, "eval_windows")] = default(
        PretrainConfig, "eval_windows"
    ),
    log_every: Annotated[int, _option(PretrainConfig, "log_every")] = default(PretrainConfig, "log_every"),
    checkpoint_every: Annotated[int, _option(PretrainConfig, "checkpoint_every")] = default(
        PretrainConfig, "checkpoint_every"
    ),
    grad_accum: Annotated[int, _option(PretrainConfig, "grad_accum")] = default(PretrainConfig, "grad_accum"),
    model: Annotated[str | None, _option(PretrainConfig, "model")] = None,
    time_budget: Annotated[float | None, _option(PretrainConfig, "time_budget_min")] = None,
    seed: Annotated[int, _option(PretrainConfig, "seed")] = default(PretrainConfig, "seed"),
    threads: Annotated[int | None, _option(PretrainConfig, "threads")] = None,
    device: Annotated[str, _option(PretrainConfig, "device")] = default(PretrainConfig, "device"),
    compile: Annotated[bool, _option(PretrainConfig, "compile", "--compile")] = False,
    prefetch: Annotated[int, _option(PretrainConfig, "prefetch")] = default(PretrainConfig, "prefetch"),
    resume: Annotated[bool, _option(PretrainConfig, "resume")] = False,
    force: Annotated[bool, _option(PretrainConfig, "force")] = False,
) -> None:
    """Masked-LM pretraining from FASTA (single process, torchrun or accelerate launch)."""
    flags = dict(locals())  # first statement: the parameters only (see finetune)
    from genoml.pretrain import run_pretrain  # heavy: imports torch

    check_threads(threads)
    check_time_budget(time_budget)
    if arch is not None and arch not in MLM_ARCHS:
        raise InputError(
            f"--arch: '{arch}' is not a masked-LM architecture here; use {', '.join(MLM_ARCHS)} (for a supervised "
            "convolutional trunk, pretrain it on labelled data with genoml multitask)"
        )
    require([("--dropout", dropout, 0 <= dropout < 1, "in [0, 1)")])
    flags["time_budget_min"] = flags.pop("time_budget")
    print(run_pretrain(PretrainConfig(**{**flags, "inputs": list(inputs)})))


@app.command()
def multitask(
    datasets: Annotated[list[str] | None, _argument(MultitaskConfig, "datasets")] = None,
    out: Annotated[str, _option(MultitaskConfig, "out", "--out", "-o")] = default(MultitaskConfig, "out"),
    arch: Annotated[str, _option(MultitaskConfig, "arch")] = default(MultitaskConfig, "arch"),
    base: Annotated[str | None, _option(MultitaskConfig, "base")] = None,
    exclude: Annotated[list[str] | None, _option(MultitaskConfig, "exclude")] = None,
    shuffled: Annotated[list[str] | None, _option(MultitaskConfig, "shuffled")] = None,
    shuffled_width: Annotated[int, _option(MultitaskConfig, "shuffled_width")] = default(
        MultitaskConfig, "shuffled_width"
    ),
    epochs: Annotated[int, _option(MultitaskConfig, "epochs")] = default(MultitaskConfig, "epochs"),
    batch_size: Annotated[int, _option(MultitaskConfig, "batch_size")] = default(
        MultitaskConfig, "batch_size"
    ),
    lr: Annotated[float | None, _option(MultitaskConfig, "lr")] = None,
    valid_fraction: Annotated[float, _option(MultitaskConfig, "valid_fraction")] = default(
        MultitaskConfig, "valid_fraction"
    ),
    time_budget: Annotated[float | None, _option(MultitaskConfig, "time_budget_min")] = None,
    seed: Annotated[int, _option(MultitaskConfig, "seed")] = default(MultitaskConfig, "seed"),
    threads: Annotated[int | None, _option(MultitaskConfig, "threads")] = None,
    force: Annotated[bool, _option(MultitaskConfig, "force")] = False,
) -> None:
    """Supervised (and real-vs-shuffled self-supervised) pretraining: one trunk, one head per dataset (a base for
    finetune --model)."""
    flags = dict(locals())  # first statement: the parameters only (see finetune)
    from genoml.multitask import run_multitask  # heavy: imports torch

    flags["time_budget_min"] = flags.pop("time_budget")
    cfg = MultitaskConfig(
        **{
            **flags,
            "datasets": list(datasets or []),
            "exclude": list(exclude or []),
            "shuffled": list(shuffled or []),
        }
    )
    print(run_multitask(cfg, command=["genoml", *(_ARGV or sys.argv[1:])])["out"])


def _spec(path: str | None, *, labels: str | None = None, bed: str | None = None, genome: str | None = None):
    """The InputSpec of a command's INPUT argument, or of --bed (with --genome) when it is given."""
    from genoml.io import InputSpec  # heavy: genoml.io loads the bioformats readers (~0.5 s)

    return InputSpec(path=None if bed else path, labels=labels, bed=bed, genome=genome)


@app.command()
def predict(
    input: Annotated[str, _argument(PredictConfig, "input")] = default(PredictConfig, "input"),
    model: Annotated[str, _option(PredictConfig, "model", "--model", "-m")] = ...,
    output: Annotated[str, _option(PredictConfig, "output", "--output", "-o")] = default(
        PredictConfig, "output"
    ),
    format: Annotated[str, _option(PredictConfig, "format", "--format")] = default(PredictConfig, "format"),
    threshold: Annotated[float | None, _option(PredictConfig, "threshold")] = None,
    device: Annotated[str, _option(PredictConfig, "device")] = default(PredictConfig, "device"),
    precision: Annotated[str, _option(PredictConfig, "precision")] = default(PredictConfig, "precision"),
    batch_tokens: Annotated[int | None, _option(PredictConfig, "batch_tokens")] = None,
    chunk_size: Annotated[int, _option(PredictConfig, "chunk_size")] = default(PredictConfig, "chunk_size"),
    threads: Annotated[int | None, _option(PredictConfig, "threads")] = None,
    strict: Annotated[bool, _option(PredictConfig, "strict")] = False,
    bed: Annotated[str | None, _option(PredictConfig, "bed")] = None,
    genome: Annotated[str | None, _option(PredictConfig, "genome")] = None,
    rna: Annotated[bool, _option(PredictConfig, "rna")] = False,
    revision: Annotated[str | None, _option(PredictConfig, "revision")] = None,
    trust_remote_code: Annotated[bool, _option(PredictConfig, "trust_remote_code")] = False,
) -> None:
    """Streaming inference: one output row per input record, in input order."""
    flags = dict(locals())  # first statement: the parameters only (see finetune)
    check_threads(threads)
    from genoml.predict import run_predict  # heavy: imports torch

    run_predict(PredictConfig(**flags))


@app.command()
def evaluate(
    input: Annotated[str, typer.Argument(help="Labelled sequences (CSV/TSV, FASTA with label=, or '-').")],
    model: Annotated[str, typer.Option("--model", "-m", help="Run directory from genoml finetune.")] = ...,
    out: Annotated[str, typer.Option("--out", help="Folder for metrics.json and report.md.")] = ...,
    labels: Annotated[str | None, typer.Option(help="TSV/CSV of id<TAB>label for FASTA input.")] = None,
    threshold: Annotated[float | None, typer.Option(help="Decision threshold for binary/multilabel.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an earlier genoml evaluate --out.")] = False,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_tokens: BatchTokensOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Metrics and report of a trained run on labelled sequences."""
    from genoml.evaluate import run_evaluate  # heavy: imports torch (so does every command below)

    if threshold is not None and not 0 <= threshold <= 1:
        raise InputError(f"--threshold {threshold}: a probability threshold must be in [0, 1]")
    run_evaluate(
        model,
        _spec(input, labels=labels),
        out,
        threshold=threshold,
        force=force,
        device=device,
        precision=precision,
        batch_tokens=batch_tokens,
        trust_remote_code=trust_remote_code,
        revision=revision,
    )
    print(out)


@app.command()
def embed(
    input: Annotated[str, typer.Argument(help="FASTA/CSV/TSV file or '-'.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Run directory, model folder or hub id.")] = ...,
    output: Annotated[str, typer.Option("--output", "-o", help="Output .npz (ids, embeddings).")] = ...,
    layer: Annotated[int, typer.Option(help="Hidden-state layer (-1 = last, 0 = embeddings).")] = -1,
    pooling: Annotated[
        str,
        typer.Option(
            help="auto | mean | cls | meanmax (auto: as finetune pools this encoder; meanmax doubles the size)."
        ),
    ] = "auto",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_tokens: BatchTokensOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Per-sequence embeddings (npz with ids) from a run or a pretrained model."""
    from genoml.embed import run_embed  # heavy: torch

    run_embed(
        model,
        _spec(input),
        output,
        layer=layer,
        pooling=pooling,
        device=device,
        precision=precision,
        batch_tokens=batch_tokens,
        revision=revision,
        trust_remote_code=trust_remote_code,
    )


@app.command()
def attention(
    input: Annotated[str | None, typer.Argument(help="FASTA/CSV/TSV file or '-' (not with --bed).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Run directory from genoml finetune.")] = ...,
    out: Annotated[str, typer.Option("--out", help="Output folder (npz, PNG, TSV, bedGraph).")] = ...,
    ids: Annotated[
        str | None, typer.Option(help="Comma-separated record ids to explain (default: first 10).")
    ] = None,
    layer: Annotated[str, typer.Option(help="Layer index (-1 = last) or 'all' (mean over layers).")] = "-1",
    head: Annotated[str, typer.Option(help="Head index or 'all' (mean over heads).")] = "all",
    method: Annotated[
        str, typer.Option(help="Comma list of attention, rollout, grad-input, integrated-gradients.")
    ] = "attention,grad-input",
    limit: Annotated[
        int, typer.Option(help="Explain at most this many records when --ids is not given.")
    ] = 10,
    bed: Annotated[
        str | None, typer.Option(help="BED intervals (with --genome): tracks also as bedGraph.")
    ] = None,
    genome: Annotated[str | None, typer.Option(help="Reference FASTA for --bed.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an earlier genoml attention --out.")] = False,
    device: DeviceOpt = "auto",
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Attention maps, per-base attribution tracks and heatmaps for chosen sequences."""
    from genoml.attention import run_attention  # heavy: torch

    if input is None and not bed:
        raise InputError("attention: give an input file (or '-' for stdin), or --bed with --genome")
    if input is not None and bed:
        raise InputError(f"attention: give either the input {input} or --bed {bed}, not both")
    run_attention(
        model,
        _spec(input, bed=bed, genome=genome),
        out,
        ids=ids.split(",") if ids else None,
        layer=layer,
        head=head,
        methods=[m.strip() for m in method.split(",") if m.strip()],
        limit=limit,
        force=force,
        device=device,
        trust_remote_code=trust_remote_code,
        revision=revision,
    )
    print(out)


@app.command("models")
def models_() -> None:
    """List the published architectures genoml loads natively (no remote code), their tokenizers and checks."""
    from genoml.archs import ARCHS  # heavy: torch

    rows = [("name", "architecture", "detected by", "tokenizer", "verified")]
    rows += [
        (a.name, a.title, a.detected_by, a.tokenizer, a.verified) for a in ARCHS.values() if a.available()
    ]
    for row in rows:
        print("\t".join(row))


@app.command()
def bench(
    train: Annotated[str, _argument(BenchConfig, "train")],
    valid: Annotated[str | None, _option(BenchConfig, "valid")] = None,
    test: Annotated[str | None, _option(BenchConfig, "test")] = None,
    models: Annotated[str, _option(BenchConfig, "models")] = ",".join(default(BenchConfig, "models")),
    seeds: Annotated[int, _option(BenchConfig, "seeds")] = default(BenchConfig, "seeds"),
    out: Annotated[str, _option(BenchConfig, "out", "--out")] = default(BenchConfig, "out"),
    time_budget: Annotated[float | None, _option(BenchConfig, "time_budget_min")] = None,
    epochs: Annotated[int, _option(BenchConfig, "epochs")] = default(BenchConfig, "epochs"),
    force: Annotated[bool, _option(BenchConfig, "force")] = False,
    reuse: Annotated[bool, _option(BenchConfig, "reuse")] = False,
    threads: Annotated[int | None, _option(BenchConfig, "threads")] = None,
    device: Annotated[str, _option(BenchConfig, "device")] = default(BenchConfig, "device"),
    rc: Annotated[str, _option(FinetuneConfig, "rc")] = default(FinetuneConfig, "rc"),
    rc_augment: Annotated[bool, _option(FinetuneConfig, "rc_augment")] = False,
    rc_average: Annotated[bool, _option(FinetuneConfig, "rc_average")] = False,
    batch_size: Annotated[int | None, typer.Option(help=BENCH_OPTION_HELP["batch_size"])] = None,
    lr: Annotated[float | None, typer.Option(help=BENCH_OPTION_HELP["lr"])] = None,
    adapt_steps: Annotated[int, typer.Option(help=BENCH_OPTION_HELP["adapt_steps"])] = default(
        FinetuneConfig, "adapt_steps"
    ),
) -> None:
    """Compare models on the same splits, seeds and budget (bench.json, bench.md, bench.png)."""
    from genoml.bench import run_bench  # heavy: imports torch

    check_threads(threads)
    check_time_budget(time_budget)
    require([("--rc", rc, rc in ("auto", "on", "off"), "auto, on or off")])
    options = {"rc_augment": rc_augment, "rc_average": rc_average, "rc": rc if rc != "auto" else None}
    options.update({k: v for k, v in (("batch_size", batch_size), ("lr", lr)) if v is not None})
    require([("--adapt-steps", adapt_steps, adapt_steps >= 0, "0 or more")])
    options["adapt_steps"] = adapt_steps
    cfg = BenchConfig(
        train=train,
        valid=valid,
        test=test,
        models=[m.strip() for m in models.split(",") if m.strip()],
        seeds=seeds,
        out=out,
        time_budget_min=time_budget,
        epochs=epochs,
        force=force,
        reuse=reuse,
        threads=threads,
        device=device,
        options={k: v for k, v in options.items() if v},
    )
    result = run_bench(cfg)
    print(result.get("table", out) if isinstance(result, dict) else out)


# ---------------------------------------------------------------- entry point


# typer >= 0.24 ships its own copy of click: catch both its and click's exception classes
_EXIT = tuple({click.exceptions.Exit, getattr(typer, "Exit", click.exceptions.Exit)})
_ABORT = tuple({click.exceptions.Abort, getattr(typer, "Abort", click.exceptions.Abort)})
_USAGE = tuple({click.ClickException, getattr(typer, "TyperException", click.ClickException)})
_ARGV: list[
    str
] = []  # the arguments main() was given (recorded as a run's command, also when called in-process)


def _os_message(e: OSError) -> str:

    name = f"{e.filename}: " if e.filename else ""
    hint = {
        errno.EACCES: "permission denied; choose a folder you can write to (or fix its permissions)",
        errno.EPERM: "operation not permitted; choose another folder",
        errno.EROFS: "read-only file system; write the output elsewhere",
        errno.ENOSPC: "no space left on the device; free space or write elsewhere",
        errno.EISDIR: "is a directory; give a file name",
        errno.ENOENT: "no such file or directory",
    }.get(e.errno, e.strerror or str(e))
    return f"{name}{hint}"


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (e.g. `| head`): stop quietly, as Unix tools do."""

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (temporary files, checkpoints) runs."""


_SIGTERM: list[bool] = [False]  # set when SIGTERM arrived (typer may report it as a plain 130)


def _on_sigterm(signum, frame) -> None:
    _SIGTERM[0] = True
    raise Terminated()


def _without_bool_metavars(command):
    """--help shows `--flag/--no-flag` for switches, not a `<bool>` value placeholder."""
    for sub in [command, *getattr(command, "commands", {}).values()]:
        for param in sub.params:
            if getattr(param, "is_flag", False) or getattr(
                param, "is_bool_flag", False
            ):  # typer's own click copy
                param.metavar = ""
        sub.get_help_option = _blank_metavar(sub.get_help_option)  # --help is made anew for each context
    return command


def _blank_metavar(make_option):
    def wrapped(ctx):
        option = make_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return wrapped


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (callable from tests)."""
    import threading

    previous = None
    _SIGTERM[0] = False
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    setup_logging(0)
    command = _without_bool_metavars(typer.main.get_command(app))
    _ARGV[:] = argv if argv is not None else sys.argv[1:]
    try:
        rv = command.main(args=list(_ARGV), prog_name="genoml", standalone_mode=False)
    except GenomlError as e:
        log.error("error: %s", e)
        return e.exit_code
    except _EXIT as e:
        return e.exit_code
    except _ABORT as e:  # click turns KeyboardInterrupt (and our SIGTERM) into Abort
        if _SIGTERM[0] or isinstance(e.__cause__ or e.__context__, Terminated):
            log.error("terminated (SIGTERM); partial outputs removed")
            return 143
        return 130
    except _USAGE as e:  # unknown option, missing option, bad value: exit code 2 with click's message
        e.show(file=sys.stderr)
        return 2
    except Terminated:
        log.error("terminated (SIGTERM); partial outputs removed")
        return 143
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except (
        pickle.UnpicklingError
    ):  # torch.load(weights_only=True) refused a pickle (e.g. a checkpoint's *.pt)
        log.error(
            "error: refused to load a pickle file that holds more than plain weights: loading it could run "
            "code. Delete the file (for a checkpoint: its step-* folder) or recreate it in a trusted place"
        )
        return 3
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except SystemExit as e:  # typer's click turns EPIPE (`genoml predict ... | head`) into sys.exit(1)
        if isinstance(e.__context__, BrokenPipeError):
            return _quiet_broken_pipe()
        raise
    except OSError as e:  # a file that cannot be read or written (permission, read-only, disk full)
        log.error("error: %s", _os_message(e))
        return 2
    except Exception as e:  # noqa: BLE001 - never a traceback: one line, the traceback with -v
        if type(e).__name__ == "SafetensorError" or "safetensors" in type(e).__module__:
            log.error(
                "error: a weights file is corrupt or not safetensors (%s); re-create or re-download it",
                str(e).splitlines()[0][:200] if str(e) else type(e).__name__,
            )
            return 2
        log.debug("traceback", exc_info=True)
        log.error(
            "internal error: %s: %s (please report it; -v shows the traceback)",
            type(e).__name__,
            str(e).splitlines()[0][:300] if str(e) else "",
        )
        return 1
    if rv == 130 and _SIGTERM[0]:
        log.error("terminated (SIGTERM); partial outputs removed")
        return 143
    if rv == 130:
        log.error("interrupted")
    return rv if isinstance(rv, int) else 0
