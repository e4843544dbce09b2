"""The `genoml` command line (Typer): the only module that knows about flags, stdout and exit codes.

Exit codes: 0 ok, 1 internal error, 2 bad input or usage, 3 unsafe model file, 130 interrupted.
Data goes to stdout (or -o), messages and progress to stderr; `-` means stdin/stdout.
"""

from __future__ import annotations

import logging
import pickle
import sys
from typing import Annotated

import click
import typer

from genoml import __version__
from genoml.errors import GenomlError, InputError
from genoml.log import setup_logging
from genoml.presets import PRESETS

log = logging.getLogger("genoml")


# options shared by several commands (one definition, one help text)
DeviceOpt = Annotated[str, typer.Option(help="auto | cpu | cuda (bf16 autocast on GPU).")]
PrecisionOpt = Annotated[
    str, typer.Option(help="auto (bf16 on GPU and bf16-native CPUs, else fp32) | fp32 | bf16 | int8 (CPU).")
]
BatchTokensOpt = Annotated[
    int | None, typer.Option(help="Padded tokens per batch (default 4096 on CPU, 16384 on GPU).")
]
RevisionOpt = Annotated[str | None, typer.Option(help="Hub revision (branch, tag or commit).")]
TrustRemoteCodeOpt = Annotated[
    bool, typer.Option(help="Run Python code shipped with the model repository (only if you trust it).")
]
ThreadsOpt = Annotated[int | None, typer.Option(help="CPU threads for torch.")]

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
    train: Annotated[
        str | None, typer.Argument(help="Training sequences: FASTA, CSV/TSV (sequence,label), or '-'.")
    ] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Run directory to write.")] = "runs/finetune",
    labels: Annotated[str | None, typer.Option(help="TSV/CSV of id<TAB>label joined to FASTA ids.")] = None,
    class_: Annotated[
        list[str] | None, typer.Option("--class", help="NAME=FILE: one FASTA per class (repeat).")
    ] = None,
    bed: Annotated[
        str | None, typer.Option(help="BED intervals (with --genome); label in --label-column.")
    ] = None,
    genome: Annotated[str | None, typer.Option(help="Reference FASTA for --bed (plain or bgzip).")] = None,
    label_column: Annotated[int | None, typer.Option(help="1-based BED column holding the label.")] = None,
    valid: Annotated[
        str | None, typer.Option(help="Validation file (else a stratified split of train).")
    ] = None,
    test: Annotated[str | None, typer.Option(help="Test file (else a stratified split of train).")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="auto (default: train candidates, keep the best on validation), cnn, cnn-shallow, rnn, "
            "kmer-linear, embedded, random:<preset>, a hub id, a model folder, or a genoml run / "
            "multitask folder as the base (its head is replaced)."
        ),
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option(
            help="--model auto: extra candidates, comma list of name[:strategy] "
            "(e.g. embedded:partial:2,runs/mt:full)."
        ),
    ] = None,
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
    strategy: Annotated[str, typer.Option(help="probe | partial:N | lora | full.")] = "full",
    pooling: Annotated[str, typer.Option(help="mean | cls.")] = "mean",
    head: Annotated[str, typer.Option(help="linear | mlp.")] = "linear",
    task: Annotated[str, typer.Option(help="auto | binary | multiclass | multilabel | regression.")] = "auto",
    class_weights: Annotated[bool, typer.Option(help="Weight classes by inverse frequency.")] = False,
    epochs: Annotated[
        int | None, typer.Option(help="Maximum epochs (default: 30 for cnn/rnn trunks, 10 for transformers).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per batch (default: 64 cnn/rnn, 32 transformers).")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default depends on the strategy).")] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            help="Epochs without improvement before stopping (default: 30 cnn/rnn, 3 transformers)."
        ),
    ] = None,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 1,
    max_tokens: Annotated[
        int | None, typer.Option("--window", "--max-tokens", help="Tokens per window.")
    ] = None,
    stride: Annotated[
        int | None, typer.Option(help="Window stride in bases (default: half a window).")
    ] = None,
    aggregate: Annotated[str, typer.Option(help="Combine window logits by mean | max.")] = "mean",
    rc: Annotated[
        str,
        typer.Option(
            help="DNA reverse complements (train on both strands, average both): "
            "auto (decided on validation) | on | off."
        ),
    ] = "auto",
    rc_augment: Annotated[bool, typer.Option(help="DNA: also train on reverse complements.")] = False,
    rc_average: Annotated[
        bool, typer.Option(help="DNA: average forward and reverse-complement predictions.")
    ] = False,
    alphabet: Annotated[str, typer.Option(help="auto | dna | protein.")] = "auto",
    rna: Annotated[bool, typer.Option(help="Map U to T (RNA input).")] = False,
    split_by: Annotated[
        str,
        typer.Option(
            help="random | region (BED: overlapping/nearby intervals together) | chrom (whole "
            "chromosomes held out) | similarity (k-mer MinHash clusters together)."
        ),
    ] = "random",
    positive_class: Annotated[
        str | None,
        typer.Option(help="Binary: the positive label (default: 1/true/yes/pos*, else the minority)."),
    ] = None,
    valid_fraction: Annotated[float, typer.Option(help="Validation share when no --valid.")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Test share when no --test.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed (splits, init, batches).")] = 0,
    time_budget: Annotated[
        float | None,
        typer.Option(help="Minutes of training (--model auto: for all candidates together; default 5)."),
    ] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
    baselines: Annotated[
        bool, typer.Option(help="Also fit kmer-linear and majority baselines for the report.")
    ] = True,
    attention: Annotated[bool, typer.Option(help="Put example attention maps in the report.")] = True,
    adapt_steps: Annotated[
        int, typer.Option(help="Masked-LM steps on the training sequences before fine-tuning.")
    ] = 0,
    force: Annotated[
        bool, typer.Option(help="Replace genoml's own earlier outputs in --out (never other files).")
    ] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
) -> None:
    """Fine-tune an encoder (or train a baseline) on labelled sequences; writes a run directory."""
    from genoml.config import DataConfig, FinetuneConfig
    from genoml.finetune import run_finetune

    if train is None and not class_ and not bed:
        raise InputError("finetune: give a training file, --class NAME=FILE options, or --bed with --genome")
    cfg = FinetuneConfig(
        data=DataConfig(
            train=train,
            labels=labels,
            classes=_classes(class_),
            bed=bed,
            genome=genome,
            label_column=label_column,
            valid=valid,
            test=test,
            alphabet=alphabet,
            rna=rna,
            valid_fraction=valid_fraction,
            test_fraction=test_fraction,
            split_by=split_by,
        ),
        positive_class=positive_class,
        out=out,
        force=force,
        resume=resume,
        model=model,
        revision=revision,
        trust_remote_code=trust_remote_code,
        strategy=strategy,
        pooling=pooling,
        head=head,
        task=task,
        class_weights=class_weights,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        grad_accum=grad_accum,
        max_tokens=max_tokens,
        stride=stride,
        aggregate=aggregate,
        rc_augment=rc_augment,
        rc_average=rc_average,
        seed=seed,
        time_budget_min=time_budget,
        threads=threads,
        baselines=baselines,
        attention=attention,
        adapt_steps=adapt_steps,
        device=device,
        rc=rc,
        candidates=[c.strip() for c in (candidates or "").split(",") if c.strip()],
    )
    if cfg.candidates and not cfg.is_auto():
        raise InputError("--candidates: only with --model auto (or no --model)")
    result = run_finetune(cfg, command=["genoml", *(_ARGV or sys.argv[1:])])
    print(result["out"])
    if result["stopped"] == "interrupted":
        raise typer.Exit(130)


@app.command()
def pretrain(
    inputs: Annotated[
        list[str], typer.Argument(help="FASTA files (plain or gzip; genomes or protein sets).")
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output folder (HF masked-LM + tokenizer + genoml.json).")
    ] = "runs/pretrain",
    preset: Annotated[str, typer.Option(help=" | ".join(PRESETS) + ".")] = "small",
    arch: Annotated[
        str | None,
        typer.Option(
            help="bert | esm (pre-LayerNorm, rotary positions); default bert for DNA, esm for protein."
        ),
    ] = None,
    dropout: Annotated[float, typer.Option(help="Hidden dropout while pretraining a new model.")] = 0.1,
    tokenizer: Annotated[
        str | None,
        typer.Option(help="kmer:K | nt-kmer:K | char | esm | protbert | bpe:V (default: char / esm)."),
    ] = None,
    alphabet: Annotated[str, typer.Option(help="auto | dna | protein.")] = "auto",
    window: Annotated[int, typer.Option(help="Bases (or residues) per training window.")] = 512,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 10_000,
    batch_size: Annotated[int, typer.Option(help="Global batch (all processes x accumulation).")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-4,
    mask_rate: Annotated[float, typer.Option(help="Fraction of tokens masked (80/10/10).")] = 0.15,
    eval_fraction: Annotated[float, typer.Option(help="Held-out share of every record.")] = 0.02,
    eval_every: Annotated[int, typer.Option(help="Steps between held-out evaluations.")] = 500,
    eval_windows: Annotated[int, typer.Option(help="Held-out windows evaluated each time.")] = 256,
    log_every: Annotated[
        int, typer.Option(help="Steps between training-loss / tokens-per-second records.")
    ] = 50,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between atomic checkpoints.")] = 500,
    grad_accum: Annotated[int, typer.Option(help="Gradient accumulation steps.")] = 1,
    model: Annotated[
        str | None, typer.Option(help="Continue pretraining this HF masked-LM folder or hub id.")
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Stop (and save) after this many minutes.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: Annotated[int | None, typer.Option(help="CPU threads per process.")] = None,
    device: DeviceOpt = "auto",
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the encoder (fastest on GPU).")
    ] = False,
    prefetch: Annotated[
        int, typer.Option(help="Batches prepared ahead in a background thread (0: off).")
    ] = 2,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last complete checkpoint in --out.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Replace genoml's own earlier outputs in --out (never other files).")
    ] = False,
) -> None:
    """Masked-LM pretraining from FASTA (single process, torchrun or accelerate launch)."""
    from genoml.checks import check_threads, check_time_budget
    from genoml.pretrain import PretrainConfig, run_pretrain

    check_threads(threads)
    check_time_budget(time_budget)
    if arch is not None and arch not in ("bert", "esm"):
        raise InputError(
            f"--arch: '{arch}' is not a masked-LM architecture here; use bert or esm (for a "
            "convolutional trunk, pretrain it on labelled data with genoml multitask)"
        )
    if not 0 <= dropout < 1:
        raise InputError(f"--dropout: must be in [0, 1), got {dropout}")
    cfg = PretrainConfig(
        inputs=list(inputs),
        out=out,
        preset=preset,
        arch=arch,
        dropout=dropout,
        tokenizer=tokenizer,
        alphabet=alphabet,
        window=window,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        mask_rate=mask_rate,
        eval_fraction=eval_fraction,
        eval_every=eval_every,
        checkpoint_every=checkpoint_every,
        grad_accum=grad_accum,
        model=model,
        time_budget_min=time_budget,
        seed=seed,
        threads=threads,
        resume=resume,
        force=force,
        device=device,
        compile=compile,
        prefetch=prefetch,
        eval_windows=eval_windows,
        log_every=log_every,
    )
    path = run_pretrain(cfg)
    print(path)


@app.command()
def multitask(
    datasets: Annotated[
        list[str], typer.Argument(help="Labelled files (CSV/TSV/FASTA), each FILE or NAME=FILE.")
    ],
    out: Annotated[
        str, typer.Option("--out", "-o", help="Output folder (usable as finetune --model).")
    ] = "runs/multitask",
    arch: Annotated[str, typer.Option(help="Trunk: cnn | cnn-shallow | rnn.")] = "cnn",
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help="Target task's dev/test file (repeat): training sequences equal to, containing or inside any of its "
            "sequences (either strand) are removed and counted."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the summed training sets (at most).")] = 10,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch (one dataset per batch).")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-3,
    valid_fraction: Annotated[
        float, typer.Option(help="Share of each dataset held out for validation.")
    ] = 0.05,
    time_budget: Annotated[float | None, typer.Option(help="Stop training after this many minutes.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    threads: ThreadsOpt = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty --out.")] = False,
) -> None:
    """Supervised pretraining: one trunk, one head per labelled dataset (a base for finetune --model)."""
    from genoml.multitask import MultitaskConfig, run_multitask

    cfg = MultitaskConfig(
        datasets=list(datasets),
        out=out,
        arch=arch,
        exclude=list(exclude or []),
        time_budget_min=time_budget,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        valid_fraction=valid_fraction,
        seed=seed,
        threads=threads,
        force=force,
    )
    print(run_multitask(cfg, command=["genoml", *(_ARGV or sys.argv[1:])])["out"])


def _spec(
    path, *, labels=None, bed=None, genome=None, label_column=None, alphabet="auto", rna=False, lenient=False
):
    from genoml.io import InputSpec

    spec = InputSpec(
        path=None if bed else path,
        labels=labels,
        bed=bed,
        genome=genome,
        alphabet=alphabet,
        rna=rna,
        lenient=lenient,
    )
    if label_column is not None and hasattr(spec, "label_column"):
        spec.label_column = label_column
    return spec


@app.command()
def predict(
    input: Annotated[str, typer.Argument(help="FASTA/CSV/TSV file or '-' for stdin.")] = "-",
    model: Annotated[str, typer.Option("--model", "-m", help="Run directory from genoml finetune.")] = ...,
    output: Annotated[str, typer.Option("--output", "-o", help="Output file or '-' for stdout.")] = "-",
    format: Annotated[str, typer.Option("--format", help="tsv | csv | jsonl.")] = "tsv",
    threshold: Annotated[float | None, typer.Option(help="Decision threshold for binary/multilabel.")] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_tokens: BatchTokensOpt = None,
    chunk_size: Annotated[int, typer.Option(help="Records read per chunk (memory bound).")] = 4096,
    threads: ThreadsOpt = None,
    strict: Annotated[
        bool, typer.Option(help="Fail on an empty or invalid record instead of flagging it.")
    ] = False,
    bed: Annotated[str | None, typer.Option(help="BED intervals (with --genome) instead of INPUT.")] = None,
    genome: Annotated[str | None, typer.Option(help="Reference FASTA for --bed.")] = None,
    rna: Annotated[bool, typer.Option(help="Map U to T.")] = False,
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Streaming inference: one output row per input record, in input order."""
    from genoml.checks import check_threads
    from genoml.predict import PredictConfig, run_predict

    check_threads(threads)

    run_predict(
        PredictConfig(
            model=model,
            input=input,
            output=output,
            format=format,
            threshold=threshold,
            device=device,
            precision=precision,
            batch_tokens=batch_tokens,
            chunk_size=chunk_size,
            threads=threads,
            strict=strict,
            bed=bed,
            genome=genome,
            rna=rna,
            trust_remote_code=trust_remote_code,
            revision=revision,
        )
    )


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
    from genoml.evaluate import run_evaluate

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
    pooling: Annotated[str, typer.Option(help="mean | cls.")] = "mean",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    batch_tokens: BatchTokensOpt = None,
    revision: RevisionOpt = None,
    trust_remote_code: TrustRemoteCodeOpt = False,
) -> None:
    """Per-sequence embeddings (npz with ids) from a run or a pretrained model."""
    from genoml.embed import run_embed

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
    from genoml.attention import run_attention

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
    from genoml.archs import ARCHS

    rows = [("name", "architecture", "detected by", "tokenizer", "verified")]
    rows += [
        (a.name, a.title, a.detected_by, a.tokenizer, a.verified) for a in ARCHS.values() if a.available()
    ]
    for row in rows:
        print("\t".join(row))


@app.command()
def bench(
    train: Annotated[str, typer.Argument(help="Training sequences (CSV/TSV/FASTA).")],
    valid: Annotated[str | None, typer.Option(help="Validation file.")] = None,
    test: Annotated[str | None, typer.Option(help="Test file.")] = None,
    models: Annotated[
        str, typer.Option(help="Comma list of name[:strategy], e.g. cnn,kmer-linear,dir:lora.")
    ] = "cnn,kmer-linear",
    seeds: Annotated[int, typer.Option(help="Seeds per model.")] = 3,
    out: Annotated[str, typer.Option("--out", help="Benchmark folder.")] = "runs/bench",
    time_budget: Annotated[float | None, typer.Option(help="Minutes of training per model and seed.")] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs per run.")] = 10,
    force: Annotated[
        bool, typer.Option(help="Replace genoml's own earlier outputs in --out (never other files).")
    ] = False,
    reuse: Annotated[
        bool, typer.Option(help="Keep finished runs with matching settings (continue a bench).")
    ] = False,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "auto",
    rc: Annotated[
        str,
        typer.Option(
            help="DNA reverse complements (train on both strands, average both): "
            "auto (decided on validation) | on | off."
        ),
    ] = "auto",
    rc_augment: Annotated[bool, typer.Option(help="DNA: also train on reverse complements.")] = False,
    rc_average: Annotated[
        bool, typer.Option(help="DNA: average forward and reverse-complement predictions.")
    ] = False,
    batch_size: Annotated[
        int | None, typer.Option(help="Sequences per batch (finetune default if unset).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (finetune's per-strategy default if unset).")
    ] = None,
    adapt_steps: Annotated[
        int, typer.Option(help="Pretrained models: masked-LM steps on the training split first.")
    ] = 0,
) -> None:
    """Compare models on the same splits, seeds and budget (bench.json, bench.md, bench.png)."""
    from genoml.bench import BenchConfig, run_bench
    from genoml.checks import check_threads, check_time_budget

    check_threads(threads)
    check_time_budget(time_budget)

    if rc not in ("auto", "on", "off"):
        raise InputError(f"--rc: '{rc}' is not supported; use auto, on or off")
    options = {"rc_augment": rc_augment, "rc_average": rc_average, "rc": rc if rc != "auto" else None}
    options.update({k: v for k, v in (("batch_size", batch_size), ("lr", lr)) if v is not None})
    if adapt_steps < 0:
        raise InputError(f"--adapt-steps: must be 0 or more, got {adapt_steps}")
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
    import errno

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
    import os

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
    import signal
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
