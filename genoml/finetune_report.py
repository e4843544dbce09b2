"""What a fine-tuning run reports besides its own metrics: baselines, the summary line, report and model card.

`baseline_metrics(job, alphabet, predictions)` trains a k-mer linear model and a majority-class prior on the
run's train split and scores them on its test (else valid) split, paired with the model's scores;
`write_reports` writes report.md (with attention maps and motifs under --attention) and the model card
through `genoml.report`. Optional sections never fail the run: they log why they are missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from genoml.attention import attention_free
from genoml.errors import GenomlError
from genoml.finetune_train import Job
from genoml.inference import logits_to_scores
from genoml.interpret import explain, explain_sequence
from genoml.io import Record
from genoml.kmer_linear import KmerLinear
from genoml.metrics import compute_metrics, headline_fn, headline_metric, paired_bootstrap
from genoml.motifs import find_motifs, write_motifs
from genoml.runs import RunMeta

log = logging.getLogger(__name__)

SETTINGS = (
    "arch",
    "source_model",
    "strategy",
    "tokenizer",
    "max_tokens",
    "pooling",
    "head",
    "seed",
    "alphabet",
)


# ---------------------------------------------------------------- baselines


def baseline_metrics(job: Job, alphabet: str, predictions: dict) -> dict:
    """kmer-linear and majority-class metrics on the test (or valid) split, trained in this run,
    each with a paired bootstrap of (model - baseline) on the headline metric."""
    split = "test" if "test" in job.splits else "valid" if "valid" in job.splits else None
    if split is None:
        return {}
    out = {"split": split}
    kmer = _kmer_baseline(job, alphabet, split)
    if kmer is not None:
        out["kmer-linear"] = kmer
    if job.labels.task in ("binary", "multiclass"):
        out["majority"] = _majority_baseline(job, split)
    if split in predictions:
        fn = headline_fn(job.labels.task, job.cfg.threshold)
        y_model = predictions[split]["y_true"]
        for name in ("kmer-linear", "majority"):
            if name in out and "_scores" in out[name]:
                out[name]["vs_model"] = paired_bootstrap(
                    fn, y_model, predictions[split]["probs"], out[name].pop("_scores")
                )
    return out


def _kmer_baseline(job: Job, alphabet: str, split: str) -> dict | None:
    """Metrics (+ "_scores" (N, C)) of a k-mer linear model trained on the train split; None if it cannot."""
    task = job.labels.task
    try:
        km = KmerLinear(
            "regression" if task == "regression" else "classification", alphabet, seed=job.cfg.seed
        )
        if task == "multilabel":
            raise GenomlError("kmer-linear baseline does not do multilabel")
        km.fit(job.splits["train"].seqs, job.targets["train"].numpy())
        scores = logits_to_scores(
            torch.as_tensor(km.logits(job.splits[split].seqs), dtype=torch.float32), job.labels
        )
        metrics = compute_metrics(task, job.true_labels(split), scores, job.labels.names, job.cfg.threshold)
    except GenomlError as e:
        log.info("kmer-linear baseline skipped: %s", e)
        return None
    metrics["_scores"] = scores
    return metrics


def _majority_baseline(job: Job, split: str) -> dict:
    """Metrics (+ "_scores" (N, C)) of predicting the training class frequencies for every record."""
    y_train = job.targets["train"].numpy()
    y = job.targets[split].numpy()
    prior = np.bincount(y_train, minlength=job.labels.n_out) / len(y_train)
    metrics = compute_metrics(
        job.labels.task, y, np.tile(prior, (len(y), 1)), job.labels.names, job.cfg.threshold
    )
    metrics["_scores"] = np.tile(prior, (len(y), 1))
    return metrics


def summary(metrics: dict, task: str) -> str:
    """The headline metric of valid and test, for the last log line."""
    h = headline_metric(task)
    parts = [
        f"{n} {h}={metrics[n].get(h):.4f}"
        for n in ("valid", "test")
        if n in metrics and metrics[n].get(h) is not None
    ]
    return ", ".join(parts) or "no evaluation split"


# ---------------------------------------------------------------- report and model card


def write_reports(
    job: Job, out: Path, meta: RunMeta, metrics: dict, history, predictions, model, with_baselines
) -> None:
    """report.md and the model card of the run in `out`, from its genoml.json `meta` and metrics."""
    from genoml.report import write_model_card, write_report  # heavy: matplotlib

    settings = _settings(job, meta)
    stopped = metrics.get("stopped")
    evaluated = {k: v for k, v in metrics.items() if k in ("valid", "test")}
    write_report(
        out,
        metrics=evaluated,
        history=history,
        settings=settings,
        predictions=predictions,
        baselines=metrics.get("baselines") if with_baselines else None,
        extra_sections=_extra_sections(job, model, out),
        stopped=stopped,
    )
    write_model_card(
        out,
        settings=settings,
        metrics=evaluated,
        source_model=str(meta.source_model),
        licence=licence_of(meta.source_model),
        data_description=", ".join(
            f"{n}: {d['source']} ({d['n']} sequences)" for n, d in meta.extra["data"].items()
        ),
        stopped=stopped,
    )


def _settings(job: Job, meta: RunMeta) -> dict:
    settings = {k: getattr(meta, k) for k in SETTINGS}
    settings["task"] = job.labels.task
    settings["labels"] = ", ".join(job.labels.names)
    if job.positive:
        settings["positive_class"] = f"{job.positive[0]} ({job.positive[1]}; ROC/PR, precision, recall, F1)"
    return settings


def _extra_sections(job: Job, model, out: Path) -> list[tuple[str, str]]:
    """--attention: attention maps (transformers) and motifs (binary DNA tasks) as (title, markdown)."""
    extra = []
    if job.cfg.attention and model is not None and job.labels.task != "regression":
        if model.arch == "hf" and not attention_free(model.encoder):  # ConvLM, HyenaDNA: motifs only
            extra += attention_section(job, model, out)
        if job.labels.task == "binary" and job.alphabet == "dna":
            extra += motif_section(job, model, out)
    return extra


def licence_of(source: str) -> str:
    """The licence paragraph of a model folder's README.md, else a pointer to the source's model card."""
    readme = Path(str(source)) / "README.md"
    if readme.is_file():
        lines = readme.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if line.lower().lstrip("-* ").startswith(("licence", "license")):
                paragraph = [line]  # the whole paragraph: a licence sentence may wrap onto the next lines
                for nxt in lines[i + 1 :]:
                    if not nxt.strip() or nxt.lstrip().startswith(("#", "-", "*", "|", "```")):
                        break
                    paragraph.append(nxt.strip())
                text = " ".join(paragraph)
                return text.split(":", 1)[-1].strip() or text
    return "inherited from the source model (see its model card)"


def attention_section(job: Job, model, out: Path) -> list[tuple[str, str]]:
    """A few example attention maps of test positives for the report (never fails the run)."""
    split = job.splits.get("test") or job.splits.get("valid")
    if split is None:
        return []
    records = [Record(id=i, seq=s, label=lab) for i, s, lab in zip(split.ids, split.seqs, split.labels)][:3]
    try:
        summary = explain(model, records, out / "attention", methods=("attention",))
    except Exception as e:  # noqa: BLE001 - the report is optional; say why it is missing
        log.warning("attention maps skipped: %s", e)
        return []
    pngs = sorted((out / "attention").glob("**/*.png"))[:3]
    body = "\n".join(f"![{p.stem}]({p.relative_to(out)})" for p in pngs) or str(summary)[:500]
    return [("Attention maps (examples)", body)]


def motif_section(job: Job, model, out: Path, n: int = 200) -> list[tuple[str, str]]:
    """Motifs enriched in the high-attribution windows of positive test sequences vs negatives (logos)."""
    split = job.splits.get("test") or job.splits.get("valid")
    if split is None:
        return []
    positive = job.labels.names[1]
    pos = [s for s, lab in zip(split.seqs, split.labels) if lab == positive][:n]
    neg = [s for s, lab in zip(split.seqs, split.labels) if lab != positive][:n]
    try:
        tracks = [
            explain_sequence(model, s, methods=("grad-input",), target=1, keep_maps=False).tracks[
                "grad-input"
            ]
            for s in pos
        ]
        motifs = find_motifs(pos, tracks, neg, max_motifs=3)
        summary = write_motifs(motifs, out / "motifs")
    except Exception as e:  # noqa: BLE001 - the report is optional; say why it is missing
        log.warning("motif discovery skipped: %s", e)
        return []
    if not motifs:
        return [
            (
                "Motifs",
                f"No motif enriched in positive ({positive}) high-attribution windows vs negatives "
                f"(q < 0.05) among {len(pos)} positives / {len(neg)} negatives.",
            )
        ]
    rows = ["| consensus | hits | p | q | logo |", "|---|---|---|---|---|"]
    rows += [
        f"| `{m['consensus']}` | {m['n_hits']} | {m['pvalue']:.2g} | {m['qvalue']:.2g} | "
        f"![logo](motifs/{m['logo']}) |"
        for m in summary["motifs"]
    ]
    body = (
        f"Grad×input tracks of {len(pos)} positive ({positive}) sequences; enrichment vs {len(neg)} negatives "
        "(hypergeometric test, Benjamini–Hochberg). Full list: `motifs/motifs.json`, `motifs/motifs.meme`.\n\n"
    )
    return [("Motifs", body + "\n".join(rows))]
