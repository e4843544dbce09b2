"""What a pretraining run logs and writes to its output folder.

Rank 0 only: `log_setup(setup)` logs the model, corpus and baselines before training;
`save_outputs(out, setup, result, wall_s)` writes a Hugging Face masked-LM folder + tokenizer +
`genoml.json` + `loss.png` (the Trainer wrote `metrics.jsonl`) and removes the corpus cache unless the
run was interrupted. With GENOML_DEBUG_SAMPLES=1 each rank logs the rows it drew to out/debug/.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from genoml.config import PretrainConfig
from genoml.corpus import Corpus
from genoml.mlm import baseline_warning
from genoml.presets import parameter_count
from genoml.runs import RunMeta

if TYPE_CHECKING:
    from genoml.train import TrainResult

log = logging.getLogger(__name__)

DEBUG_SAMPLES_ENV = "GENOML_DEBUG_SAMPLES"  # set to 1: each rank logs the rows it drew to out/debug/


@dataclass
class PretrainSetup:
    """What a run trains: its settings, masked LM, tokenizer, corpus, tokens per window, held-out baselines
    (empty off rank 0) and number of processes."""

    cfg: PretrainConfig
    mlm: nn.Module
    tokenizer: Any
    corpus: Corpus
    max_tokens: int
    baselines: dict
    processes: int


def debug_dir(out: Path) -> Path | None:
    """out/debug when GENOML_DEBUG_SAMPLES is set, else None."""
    return out / "debug" if os.environ.get(DEBUG_SAMPLES_ENV) else None


def clear_debug(out: Path) -> None:
    """Start out/debug empty when GENOML_DEBUG_SAMPLES is set."""
    if os.environ.get(DEBUG_SAMPLES_ENV):
        shutil.rmtree(out / "debug", ignore_errors=True)
        (out / "debug").mkdir(parents=True)


def log_setup(setup: PretrainSetup) -> None:
    """Log the model, tokenizer, window, processes, corpus split and held-out baselines of a run."""
    cfg, corpus, baselines = setup.cfg, setup.corpus, setup.baselines
    log.info(
        "model: %s, %.2fM parameters; tokenizer %s; window %d -> %d tokens; %d process(es), batch %d",
        cfg.model or f"{setup.mlm.config.model_type} {cfg.preset}",
        parameter_count(setup.mlm) / 1e6,
        setup.tokenizer.spec,
        cfg.window,
        setup.max_tokens,
        setup.processes,
        cfg.batch_size,
    )
    log.info(
        "corpus: %d records; training %s residues, held out %s (%d segments)",
        len(corpus.ids),
        f"{corpus.train.bases:,}",
        f"{corpus.heldout.bases:,}",
        len(corpus.heldout),
    )
    if baselines:
        log.info(
            "held-out baselines: most frequent token %.4f, %d-token context %.4f",
            baselines["unigram_acc"],
            baselines["context_size"],
            baselines["context_acc"],
        )


def save_outputs(out: Path, setup: PretrainSetup, result: TrainResult, wall_s: float) -> None:
    """Write the model, tokenizer, genoml.json and loss.png to `out`; drop the cache of a finished run."""
    _save_model(out, setup)
    last_eval = next((r for r in reversed(result.history) if r["event"] == "eval"), {})
    meta = pretrain_meta(setup, result, last_eval, wall_s)
    warning = baseline_warning(last_eval.get("masked_acc"), setup.baselines)
    if warning:
        meta.extra["warning"] = warning
        log.warning("%s", warning)
    meta.write(out)
    plot_losses(result.history, out / "loss.png", setup.baselines)
    if result.stopped_reason != "interrupted":
        shutil.rmtree(out / "cache", ignore_errors=True)
    log.info(
        "pretrained model written to %s (%s after %d steps; held-out masked accuracy %s)",
        out,
        result.stopped_reason,
        result.steps,
        f"{last_eval.get('masked_acc', float('nan')):.4f}",
    )


def _save_model(out: Path, setup: PretrainSetup) -> None:
    """The masked LM (safetensors, finetune's dropout) and its tokenizer, as transformers loads them."""
    mlm = setup.mlm
    if getattr(mlm.config, "hidden_dropout_prob", None) is not None and not setup.cfg.model:
        mlm.config.hidden_dropout_prob = 0.1  # finetune default, whatever was used while pretraining
    mlm.save_pretrained(out, safe_serialization=True)
    setup.tokenizer.save_pretrained(out)


def pretrain_meta(setup: PretrainSetup, result: TrainResult, last_eval: dict, wall_s: float) -> RunMeta:
    """The genoml.json of a pretrained model: what it is, how it was trained, on what, and how well."""
    cfg, mlm, tokenizer, corpus = setup.cfg, setup.mlm, setup.tokenizer, setup.corpus
    record = {
        "window": cfg.window,
        "preset": None if cfg.model else cfg.preset,
        "base_model": cfg.model,
        "parameters": sum(p.numel() for p in mlm.parameters()),
        "steps": result.steps,
        "batch_size": cfg.batch_size,
        "windows_seen": result.steps * cfg.batch_size,
        "stopped": result.stopped_reason,
        "wall_s": round(wall_s, 1),  # this invocation, from model set-up to the end of training
        "train_s": next((r["elapsed_s"] for r in reversed(result.history) if "elapsed_s" in r), None),
        "processes": setup.processes,
        "corpus": corpus.index["files"],
        "heldout": {
            "fraction": cfg.eval_fraction,
            "windows": cfg.eval_windows,
            "segments": len(corpus.heldout),
            "residues": corpus.heldout.bases,
            "train_residues": corpus.train.bases,
            "rule": "tail of each record with fraction*length >= window; shorter records whole, by sequence hash",
            **{k: last_eval.get(k) for k in ("loss", "perplexity", "masked_acc", "masked_tokens")},
            "baselines": setup.baselines,
        },
        "masking": {
            "rate": cfg.mask_rate,
            "span": 1 if not tokenizer.spec.startswith("kmer:") else tokenizer.k,
            "replace": "training 80% mask / 10% random / 10% unchanged; held-out 100% mask",
        },
    }
    return RunMeta(
        kind="pretrained",
        arch=mlm.config.model_type,
        alphabet=corpus.alphabet,
        tokenizer=cfg.tokenizer if tokenizer.spec == "hf" and cfg.tokenizer else tokenizer.spec,
        max_tokens=setup.max_tokens,
        config=dataclasses.asdict(cfg),
        extra=record,
    )


def plot_losses(history: list[dict], path: Path, baselines: dict | None = None) -> None:
    """Training and held-out loss against steps, held-out masked accuracy on a second axis."""
    # heavy: matplotlib loads in ~0.5 s and only rank 0 plots
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in history if r["event"] == "train" and r.get("loss") is not None]
    evals = [r for r in history if r["event"] == "eval" and r.get("loss") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss", color="tab:blue", lw=1)
    if evals:
        ax.plot(
            [r["step"] for r in evals],
            [r["loss"] for r in evals],
            "o-",
            label="held-out loss",
            color="tab:orange",
            ms=3,
        )
    ax.set_xlabel("step")
    ax.set_ylabel("masked-LM loss (nats)")
    if evals and "masked_acc" in evals[0]:
        _plot_accuracy(ax, evals, baselines)
    elif train:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_accuracy(ax, evals: list[dict], baselines: dict | None) -> None:
    """Held-out masked accuracy and the baselines on a second y axis of `ax`; one legend for both axes."""
    ax2 = ax.twinx()
    ax2.plot(
        [r["step"] for r in evals],
        [r["masked_acc"] for r in evals],
        "s--",
        color="tab:green",
        ms=3,
        label="held-out masked accuracy",
    )
    labels = {"unigram_acc": "most-frequent-token baseline", "context_acc": "k-mer context baseline"}
    for key, style in (("unigram_acc", ":"), ("context_acc", "-.")):
        if baselines and key in baselines:
            ax2.axhline(baselines[key], color="grey", ls=style, lw=1, label=labels[key])
    ax2.set_ylabel("masked accuracy")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
