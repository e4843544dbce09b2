"""Masked-LM pretraining from FASTA files: `run_pretrain(PretrainConfig) -> output folder`.

The orchestration of a run, in one process or under torchrun / accelerate launch: rank 0 prepares the
output folder and the corpus cache (`genoml.corpus`); every rank builds the model (`genoml.pretrain_model`)
and trains it on masked-LM batches (`genoml.mlm_batches`, `genoml.mlm`) that are the same for the same seed
on 1 or W processes and after a resume; rank 0 writes (`genoml.pretrain_outputs`) a Hugging Face
masked-LM folder + tokenizer + `genoml.json` + `metrics.jsonl` + `loss.png`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from genoml.config import PretrainConfig, TrainConfig
from genoml.corpus import Corpus, build_corpus_cache
from genoml.device import resolve_device
from genoml.errors import InputError
from genoml.mlm import MaskedLMObjective, evaluate_heldout, frequency_baselines
from genoml.mlm_batches import MaskedBatcher, Prefetcher
from genoml.outputs import discard_outputs, record_outputs
from genoml.pretrain_model import (
    check_window,
    compile_encoder_,
    corpus_bpe,
    first_record_alphabet,
    input_files,
    load_model_and_tokenizer,
    tokens_for_window,
)
from genoml.pretrain_outputs import PretrainSetup, clear_debug, debug_dir, log_setup, save_outputs
from genoml.runs import prepare_run_dir
from genoml.tokenizers import bpe_vocab_size
from genoml.train import Trainer, TrainResult, force_cpu

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the run


def run_pretrain(cfg: PretrainConfig) -> Path:
    """Pretrain (or continue pretraining) a masked LM; returns the output folder.

    Works in one process or under torchrun / accelerate launch: rank 0 prepares the folder and the
    corpus cache, every rank trains, rank 0 writes. The Trainer's stopped reason is in genoml.json
    (`"stopped"`); "interrupted" means a checkpoint was written and `resume=True` continues.
    """
    # heavy: accelerate loads in ~1 s
    from accelerate import PartialState

    cfg.validate()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    files = input_files(cfg.inputs)
    state = PartialState(cpu=force_cpu() or device.type == "cpu")
    torch.manual_seed(cfg.seed)
    bpe = bpe_vocab_size(cfg.tokenizer)
    tokenizer = mlm = None
    if bpe:  # the vocabulary is learned from the corpus, after the cache is built
        alphabet = cfg.alphabet if cfg.alphabet != "auto" else first_record_alphabet(files[0])
    else:
        tokenizer, mlm, alphabet = load_model_and_tokenizer(cfg)
        check_window(cfg, tokenizer, mlm)
    _check_processes(cfg, state.num_processes)
    out = _prepare_out(cfg, state, files)
    try:
        return _pretrain_in(cfg, out, state, files, bpe, alphabet, tokenizer, mlm)
    except BaseException:
        if state.is_main_process:
            _keep_or_discard(cfg, out)
        raise


def _check_processes(cfg: PretrainConfig, processes: int) -> None:
    """Every process needs at least one row of each micro-batch."""
    if cfg.batch_size // cfg.grad_accum < processes:
        raise InputError(
            f"--batch-size {cfg.batch_size} / --grad-accum {cfg.grad_accum} gives fewer sequences per micro-batch "
            f"than the {processes} processes; raise --batch-size or lower --grad-accum"
        )


def _prepare_out(cfg: PretrainConfig, state, files: list[Path]) -> Path:
    """Rank 0 creates the output folder (or checks it for --resume) before the other ranks use it."""
    out = Path(cfg.out)
    with state.main_process_first():
        if state.is_main_process:
            out = prepare_run_dir(cfg.out, force=cfg.force, resume=cfg.resume, inputs=[*files, cfg.model])
            clear_debug(out)
    return out


def _keep_or_discard(cfg: PretrainConfig, out: Path) -> None:
    """After a failure (rank 0): a run with a checkpoint keeps it (and the cache) for --resume; else the
    folder is removed."""
    if cfg.resume or any((out / "checkpoints").glob("step-*[0-9]")):
        record_outputs(out)  # an interrupted run keeps its checkpoint (and cache) for --resume
    else:
        discard_outputs(out)


def _pretrain_in(cfg: PretrainConfig, out: Path, state, files, bpe, alphabet, tokenizer, mlm) -> Path:
    """Corpus, (BPE) model, batches, baselines, training and outputs, once `out` exists.
    `tokenizer`/`mlm` are None with --tokenizer bpe:V (`bpe` = V): they are built from the corpus here."""
    with state.main_process_first():
        data_path, index = build_corpus_cache(files, alphabet, out / "cache")
    corpus = Corpus(data_path, index, window=cfg.window, eval_fraction=cfg.eval_fraction)
    if bpe:
        torch.manual_seed(cfg.seed)  # model init as in the non-BPE path
        tokenizer = corpus_bpe(corpus, bpe, out, cfg, state)
        tokenizer, mlm, _ = load_model_and_tokenizer(cfg, corpus_tokenizer=tokenizer)
        check_window(cfg, tokenizer, mlm)
    max_tokens = tokens_for_window(tokenizer, cfg.window)
    batcher = MaskedBatcher(corpus, tokenizer, max_tokens, cfg, debug_dir(out))
    heldout = batcher.heldout_batches(cfg.eval_windows)
    baselines = frequency_baselines(batcher, heldout) if state.is_main_process else {}
    setup = PretrainSetup(cfg, mlm, tokenizer, corpus, max_tokens, baselines, state.num_processes)
    if state.is_main_process:
        log_setup(setup)
    if cfg.compile:
        compile_encoder_(mlm)
    objective = MaskedLMObjective(mlm)
    t0 = time.time()
    result = _train(cfg, out, objective, batcher, heldout)
    if state.is_main_process:
        save_outputs(out, setup, result, time.time() - t0)
        record_outputs(out)
    state.wait_for_everyone()
    return out


def _train(
    cfg: PretrainConfig, out: Path, objective: MaskedLMObjective, batcher: MaskedBatcher, heldout: list[dict]
) -> TrainResult:
    """The Trainer's loop over the batcher's stream (prefetched unless --prefetch 0), evaluated on `heldout`."""
    device = resolve_device(cfg.device)
    prefetch = (
        Prefetcher(
            batcher.train_batch,
            depth=max(cfg.prefetch, 2 if device.type == "cuda" else 1),
            limit=cfg.max_steps * cfg.grad_accum,
            pin=device.type == "cuda",
            workers=2 if device.type == "cuda" else 1,
        )
        if cfg.prefetch
        else None
    )
    trainer = Trainer(
        objective,
        _train_config(cfg),
        out,
        get_batch=prefetch or batcher.train_batch,
        loss_fn=lambda m, b: m(**b)[0],
        evaluate=lambda m: evaluate_heldout(m, heldout),
    )
    try:
        return trainer.fit(resume=cfg.resume)
    finally:
        if prefetch is not None:
            prefetch.close()
            log.debug("training waited %.2f s for batches", prefetch.wait_s)


def _train_config(cfg: PretrainConfig) -> TrainConfig:
    """The Trainer's settings of a pretraining run (held-out evaluation before the first step too)."""
    return TrainConfig(
        max_steps=cfg.max_steps,
        lr=cfg.lr,
        warmup_ratio=cfg.warmup_ratio,
        grad_accum=cfg.grad_accum,
        seed=cfg.seed,
        eval_every=cfg.eval_every,
        checkpoint_every=cfg.checkpoint_every,
        log_every=cfg.log_every,
        time_budget_s=cfg.time_budget_min * 60 if cfg.time_budget_min else None,
        eval_at_start=True,
        device=cfg.device,
    )
