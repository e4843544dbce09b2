"""Any genoml model as the base of another task: drop the old head, attach a new one.

A *base* is a folder written by genoml: a `genoml finetune` run (any architecture) or a
`genoml multitask` folder (one trunk, one head per source task). Transformer runs are plain
transformers folders and load through `load_hf_encoder`; this module handles the convolutional and
recurrent trunks (`cnn`, `cnn-shallow`, `cnn-attn`, `rnn`), whose `model.safetensors` holds `encoder.*` and
`embedding.*` (the trunk) beside `classifier.*` or `heads.*` (heads, dropped here). This is the
head-adapter pattern (enformer-pytorch's `HeadAdapterWrapper`): trunk features (B, H) -> new head (B, C).

Strategies for these trunks (`--strategy`):
- `probe`: the whole trunk frozen (BatchNorm statistics too); only the new head trains;
- `partial:N`: the last N blocks (and the position-bin projection of `cnn`) train, the rest is frozen;
- `full`: everything trains (the trunk is only an initialisation).

Blocks, in input-to-output order: `cnn` = stem, residual block 1..4; `cnn-shallow` = conv 1..3;
`cnn-attn` = stem, residual block 1..2, transformer layer 1..2;
`rnn` = input convolution, GRU layer 1, GRU layer 2 (both directions).
"""

from __future__ import annotations

import logging
import types
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from genoml.config import BASELINE_NETS
from genoml.errors import InputError
from genoml.models import ConvAttention, OneHotCNN, OneHotRNN, ShallowCNN, build_baseline
from genoml.runs import RunMeta
from genoml.tokenizers import load_tokenizer

log = logging.getLogger(__name__)


def base_meta(name: str | None) -> RunMeta | None:
    """genoml.json of a local genoml folder whose model is a convolutional/recurrent trunk, else None.

    Raises InputError for a genoml folder that has no trunk to transfer (a kmer-linear run)."""
    if not name:
        return None
    folder = Path(name).expanduser()
    meta = RunMeta.peek(folder) if folder.is_dir() else None
    if meta is None:
        return None
    arch = meta.arch
    if arch == "kmer-linear":
        raise InputError(
            f"--model {name}: a kmer-linear run has no trunk to transfer; use a cnn, cnn-shallow, "
            "rnn or transformer run (or a genoml multitask folder)"
        )
    if arch in BASELINE_NETS:
        if not (folder / "model.safetensors").is_file():
            raise InputError(f"--model {name}: no model.safetensors in this genoml {arch} folder")
        return meta
    return None


def is_convolutional(name: str | None) -> bool:
    """True for the from-scratch nets and for genoml folders holding such a trunk (their recipe applies)."""
    return name in BASELINE_NETS or base_meta(name) is not None


def build_from_base(
    name: str, alphabet: str, n_out: int, *, labels: list[str], task: str, head: str = "linear"
):
    """A SequenceModel with the trunk of genoml folder `name` and a fresh head of `n_out` outputs.

    -> (model, tokenizer). The input alphabet must match the trunk's."""
    meta = base_meta(name)
    if meta is None:
        raise InputError(f"--model {name}: not a genoml folder with a cnn, cnn-shallow or rnn trunk")
    if meta.alphabet and meta.alphabet != alphabet:
        raise InputError(f"--model {name}: a {meta.alphabet} trunk, but the input sequences are {alphabet}")
    tok = load_tokenizer(Path(name))
    model = build_baseline(meta.arch, tok, n_out, labels=labels, task=task, head=head)
    state = load_file(str(Path(name) / "model.safetensors"))
    trunk = {k: v for k, v in state.items() if k.startswith(("encoder.", "embedding."))}
    missing, unexpected = model.load_state_dict(trunk, strict=False)
    missing = [k for k in missing if not k.startswith("classifier.")]
    if missing or unexpected:
        raise InputError(
            f"--model {name}: its {meta.arch} trunk does not fit this genoml's {meta.arch} "
            f"architecture (missing {missing[:3]}, unexpected {unexpected[:3]}); re-create it with "
            "this version"
        )
    log.info("base %s: %s trunk (%s) with a new %d-output head", name, meta.arch, meta.kind, n_out)
    model.from_base = str(name)
    return model, tok


def trunk_blocks(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """The trunk's blocks from input to output, each as its parameter list (see the module docstring)."""
    if isinstance(encoder, OneHotCNN):
        return [list(encoder.stem.parameters())] + [list(b.parameters()) for b in encoder.blocks]
    if isinstance(encoder, ShallowCNN):
        return [list(c.parameters()) for c in encoder.convs]
    if isinstance(encoder, ConvAttention):
        return [list(m.parameters()) for m in _block_modules(encoder)]
    if isinstance(encoder, OneHotRNN):
        gru = encoder.rnn
        per_layer = [
            [p for n, p in gru.named_parameters() if n.replace("_reverse", "").endswith(f"_l{i}")]
            for i in range(gru.num_layers)
        ]
        return [list(encoder.conv.parameters()), *per_layer]
    raise InputError(f"--strategy: no block structure known for {type(encoder).__name__}")


def _pin_eval(module: nn.Module) -> None:
    """Keep a frozen module in eval mode (BatchNorm running statistics and dropout) whatever model.train() says."""
    module.eval()
    module.train = types.MethodType(lambda self, mode=True: nn.Module.train(self, False), module)


def apply_trunk_strategy_(model, strategy: str, partial_layers: int = 2) -> None:
    """Freeze a transferred convolutional/recurrent trunk for `probe` / `partial:N`; `full` leaves it alone.

    Frozen blocks are pinned to eval mode, so their BatchNorm statistics stay those of the base."""
    if strategy == "full":
        return
    if strategy == "lora":
        raise InputError(
            f"--strategy lora: LoRA adapts transformer attention; the {model.arch} trunk takes "
            "probe, partial:N or full"
        )
    enc = model.encoder
    blocks = trunk_blocks(enc)
    if strategy == "partial" and not 1 <= partial_layers <= len(blocks):
        raise InputError(
            f"--strategy partial:{partial_layers}: the {model.arch} trunk has {len(blocks)} blocks; "
            f"use partial:1 .. partial:{len(blocks)}"
        )
    for p in enc.parameters():
        p.requires_grad_(False)
    trainable = blocks[len(blocks) - partial_layers :] if strategy == "partial" else []
    for block in trainable:
        for p in block:
            p.requires_grad_(True)
    if strategy == "partial":  # what sits after the last block: position-bin projection, final norm
        after = [enc.bin_proj] if getattr(enc, "bins", 0) else []
        after += [enc.norm] if isinstance(enc, ConvAttention) else []
        for p in (p for m in after for p in m.parameters()):
            p.requires_grad_(True)
    live_modules = _block_modules(enc)[len(blocks) - len(trainable) :] if trainable else []
    live = {id(m) for mod in live_modules for m in mod.modules()}
    for sub in enc.modules():
        if isinstance(sub, nn.BatchNorm1d | nn.Dropout) and id(sub) not in live:
            _pin_eval(sub)


def _block_modules(enc: nn.Module) -> list[nn.Module]:
    if isinstance(enc, OneHotCNN):
        return [enc.stem, *enc.blocks]
    if isinstance(enc, ShallowCNN):
        return list(enc.convs)
    if isinstance(enc, ConvAttention):
        return [enc.conv.stem, *enc.conv.blocks, *enc.layers]
    if isinstance(enc, OneHotRNN):
        return [enc.conv] + [enc.rnn] * enc.rnn.num_layers
    return []
