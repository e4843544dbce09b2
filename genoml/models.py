"""Encoders and the sequence model: any HF encoder or a from-scratch baseline, plus pooling and a head.

Every model consumes token ids `(B, L)` and an attention mask `(B, L)` and returns logits `(B, C)`.
`SequenceModel` also implements the interpretation protocol (`embed`, `logits_from_embeds`,
`attentions`). Baselines (`cnn`, `rnn`) read one-hot vectors through a frozen embedding, so
they fit the same protocol and the same training loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import re
import socket
from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub import hf_hub_download
from torch import nn

from genoml import archs
from genoml.alphabet import get as get_alphabet
from genoml.config import BASELINE_NETS  # noqa: F401  (re-exported: from-scratch torch baselines)
from genoml.errors import GenomlError, InputError, UnsafeModelError

log = logging.getLogger(__name__)

HUB_HINT = (
    "the Hugging Face Hub could not be reached (offline, firewalled or HF_HUB_OFFLINE=1); "
    "download the model elsewhere and pass its local folder to --model"
)


# ---------------------------------------------------------------- pooling and head


def pooled_width(hidden: int, how: str) -> int:
    """Width of `pool`'s output for an encoder of `hidden` channels."""
    return 2 * hidden if how == "meanmax" else hidden


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """hidden (B, L, H), mask (B, L) -> (B, H), or (B, 2H) for `meanmax`. `mean` skips padding; `cls` takes
    position 0; `meanmax` is [mean, max] over the real tokens (the CNN baselines' pooling: a motif anywhere in
    the sequence shows in the max)."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
    if how != "meanmax":
        return mean
    peak = hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(1)  # (B, H)
    return torch.cat([mean, peak], dim=-1)  # (B, 2H)


def pooling_for(pooling: str, encoder) -> str:
    """--pooling, with "auto" resolved for this encoder: [mean, max] for genoml's ConvLM, whose per-position
    features see a motif locally (random-init ConvLM, GUE mouse/0 and mouse/3, equal budgets: test MCC 42.5 and
    71.0 with meanmax vs 7.7 and 16.2 with the mean; BENCHMARKS.md, Transfer), and the mean for transformers,
    whose attention already mixes the sequence."""
    if pooling != "auto":
        return pooling
    return "meanmax" if getattr(encoder.config, "model_type", None) == "genoml_convlm" else "mean"


def trunk_features(
    encoder: nn.Module,
    embedding: nn.Module | None,
    pooling: str,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """Pooled features (B, F) of a trunk over input_ids (B, L): a transformers encoder (`embedding` None; ids
    path, so the model keeps its own position / token-type handling) pooled over real tokens by `pool`, or a
    one-hot net's own pooled features. The one forward of SequenceModel and genoml.multitask.MultitaskNet."""
    if embedding is None:
        out = encoder(input_ids=input_ids, attention_mask=attention_mask)
        return pool(out.last_hidden_state, attention_mask, pooling)
    return encoder(embedding(input_ids), attention_mask)


class Head(nn.Module):
    """Linear or small MLP head: (B, H) -> (B, C)."""

    def __init__(self, hidden: int, n_out: int, kind: str = "linear", dropout: float = 0.1):
        super().__init__()
        if kind == "mlp":
            self.net = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(hidden, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_out),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------- baselines


def masked_max_mean(h: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and mean of h (B, F, L) over the valid positions of m (B, 1, L) -> two (B, F)."""
    h_max = h.masked_fill(m == 0, -1e4).amax(-1)
    h_mean = (h * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    return h_max, h_mean


class OneHotCNN(nn.Module):
    """A Basset/Basenji-style CNN over one-hot input: a wide convolution, max-pool, then residual
    dilated convolutions (receptive field 255 bp with the defaults); max- and mean-pooled over valid
    positions, plus mean features over `bins` relative-position bins (position-aware for aligned inputs).

    forward(x (B, L, A), mask (B, L)) -> features (B, 2F).

    Padding never reaches a valid position: every layer's output is multiplied by the mask (so padded
    positions hold the zeros a 'same' convolution pads with), and the pool runs on non-negative ReLU
    outputs with ceil mode, so a record's features do not depend on its batch mates (eval mode).
    """

    def __init__(
        self,
        channels: int,
        filters: int = 128,
        kernel: int = 15,
        layers: int = 4,
        pool: int = 4,
        dropout: float = 0.2,
        bins: int = 8,
        bin_channels: int = 32,
    ):
        super().__init__()
        self.pool, self.bins = pool, bins
        self.stem = nn.Sequential(
            nn.Conv1d(channels, filters, kernel, padding="same"), nn.BatchNorm1d(filters), nn.ReLU()
        )
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(filters, filters, 5, padding="same", dilation=2**i),
                nn.BatchNorm1d(filters),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for i in range(layers)
        )
        self.hidden_size = 2 * filters  # max and mean pooled features
        if bins:
            self.bin_proj = nn.Conv1d(filters, bin_channels, 1)
            self.hidden_size += bins * bin_channels  # plus mean features per relative-position bin

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, m = self.trunk(x, mask)
        feats = [*masked_max_mean(h, m)]  # (B, F) each
        if self.bins:
            feats.append(self._binned(self.bin_proj(h), m, self.bins))
        return torch.cat(feats, -1)  # (B, hidden_size)

    def trunk(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stem, pool and residual blocks: x (B, L, A), mask (B, L) -> h (B, F, L'), m (B, 1, L'), h = 0 where m = 0."""
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, L)
        h = self.stem(x.transpose(1, 2) * m) * m  # (B, F, L), >= 0
        if self.pool > 1:
            h = F.max_pool1d(h, self.pool, ceil_mode=True)  # (B, F, ceil(L / pool))
            m = m[:, :, :: self.pool]
        for block in self.blocks:
            h = (h + block(h)) * m  # residual; padded positions back to 0
        return h, m

    @staticmethod
    def _binned(h: torch.Tensor, m: torch.Tensor, bins: int) -> torch.Tensor:
        """Mean of h (B, C, L) over `bins` equal stretches of each record's valid length -> (B, bins * C).

        Bins are relative to the record's own length, so aligned inputs (promoters around a TSS, peaks
        centred on a summit) give position-aware features whatever the padding."""
        valid = m.sum(-1, keepdim=True).clamp(min=1.0)  # (B, 1, 1)
        pos = torch.arange(h.shape[-1], device=h.device, dtype=h.dtype).view(1, 1, -1)  # (1, 1, L)
        which = (pos * bins / valid).floor().clamp(max=bins - 1).long()  # (B, 1, L)
        assign = F.one_hot(which.squeeze(1), bins).to(h.dtype) * m.transpose(1, 2)  # (B, L, bins)
        pooled = torch.bmm(h * m, assign) / assign.sum(1, keepdim=True).clamp(min=1.0)  # (B, C, bins)
        return pooled.flatten(1)


class ShallowCNN(nn.Module):
    """DeepBind-style CNN: `layers` 'same' convolutions (kernel, then 5) at full resolution, max- and
    mean-pooled over valid positions; fewer parameters and no downsampling (small training sets).

    forward(x (B, L, A), mask (B, L)) -> features (B, 2F). Every layer's output is masked, so padding
    never reaches a valid position.
    """

    def __init__(
        self, channels: int, filters: int = 128, kernel: int = 11, layers: int = 3, dropout: float = 0.2
    ):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels if i == 0 else filters, filters, kernel if i == 0 else 5, padding="same"),
                nn.BatchNorm1d(filters),
                nn.ReLU(),
                nn.Dropout(dropout),
            )
            for i in range(layers)
        )
        self.hidden_size = 2 * filters

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, L)
        h = x.transpose(1, 2) * m  # (B, A, L)
        for conv in self.convs:
            h = conv(h) * m  # (B, F, L)
        return torch.cat(masked_max_mean(h, m), -1)  # (B, 2F)


class ConvAttention(nn.Module):
    """A convolutional stem (the `cnn` stem, max-pool and residual dilated blocks) followed by transformer
    layers over the pooled positions (motif co-occurrence and spacing, as in hybrid CNN-attention TF
    models), pooled like `cnn`: max, mean and relative-position bins over valid positions.

    forward(x (B, L, A), mask (B, L)) -> features (B, hidden_size). Padded positions are masked out of the
    attention keys and zeroed after every layer, so a record's features do not depend on its batch mates.
    Positions enter as fixed sinusoids over the pooled positions (any length).
    """

    def __init__(
        self,
        channels: int,
        filters: int = 128,
        kernel: int = 15,
        conv_layers: int = 2,
        attn_layers: int = 2,
        heads: int = 4,
        pool: int = 4,
        dropout: float = 0.2,
        bins: int = 8,
        bin_channels: int = 32,
    ):
        super().__init__()
        self.conv = OneHotCNN(channels, filters, kernel, conv_layers, pool, dropout, bins=0)  # stem + blocks
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                filters, heads, 2 * filters, dropout=0.1, batch_first=True, norm_first=True
            )
            for _ in range(attn_layers)
        )
        self.norm = nn.LayerNorm(filters)
        self.bins = bins
        self.hidden_size = 2 * filters
        if bins:
            self.bin_proj = nn.Conv1d(filters, bin_channels, 1)
            self.hidden_size += bins * bin_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, m = self.conv.trunk(x, mask)  # (B, F, L'), (B, 1, L')
        t = h.transpose(1, 2) + _sinusoids(h.shape[-1], h.shape[1], h)  # (B, L', F)
        pad = m.squeeze(1) == 0  # (B, L') True where padded
        keep = m.transpose(1, 2)  # (B, L', 1)
        for layer in self.layers:
            t = layer(t, src_key_padding_mask=pad) * keep
        h = self.norm(t).transpose(1, 2) * m  # (B, F, L')
        feats = [*masked_max_mean(h, m)]
        if self.bins:
            feats.append(self.conv._binned(self.bin_proj(h), m, self.bins))
        return torch.cat(feats, -1)  # (B, hidden_size)


def _sinusoids(length: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """Fixed sinusoidal position codes (1, length, width) in like's dtype and device."""
    pos = torch.arange(length, device=like.device, dtype=torch.float32).unsqueeze(1)  # (L, 1)
    freq = torch.exp(torch.arange(0, width, 2, device=like.device) * (-math.log(1e4) / width))  # (W/2,)
    code = torch.zeros(length, width, device=like.device)
    code[:, 0::2] = torch.sin(pos * freq)
    code[:, 1::2] = torch.cos(pos * freq)
    return code.unsqueeze(0).to(like.dtype)


class OneHotRNN(nn.Module):
    """Bidirectional GRU over one-hot input: forward(x (B, L, A), mask (B, L)) -> (B, 2 * hidden)."""

    def __init__(self, channels: int, hidden: int = 128, layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.conv = nn.Conv1d(channels, hidden, 7, padding="same")
        self.rnn = nn.GRU(hidden, hidden, layers, batch_first=True, bidirectional=True, dropout=dropout)
        self.hidden_size = 2 * hidden

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv((x * mask.unsqueeze(-1)).transpose(1, 2))).transpose(1, 2)  # (B, L, H)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=h.shape[1]
        )  # (B, L, 2H)
        return pool(out, mask, "mean")


def one_hot_embedding(vocab: list[str], alphabet: str) -> nn.Embedding:
    """A frozen embedding mapping token ids to one-hot letters (N and specials -> uniform or zero)."""
    letters = get_alphabet(alphabet).letters
    weight = torch.zeros(len(vocab), len(letters))
    for i, tok in enumerate(vocab):
        if tok in letters:
            weight[i, letters.index(tok)] = 1.0
        elif tok in ("N", "X"):
            weight[i] = 1.0 / len(letters)
    emb = nn.Embedding(len(vocab), len(letters))
    emb.weight.data.copy_(weight)
    emb.weight.requires_grad_(False)
    return emb


# ---------------------------------------------------------------- the sequence model


class SequenceModel(nn.Module):
    """encoder + pooling + head. forward(input_ids (B, L), attention_mask (B, L)) -> logits (B, C).

    `arch` is "hf" (a transformers encoder) or a baseline net ("cnn", "cnn-shallow", "rnn"). The head is named `classifier`
    so PEFT keeps it trainable.
    """

    def __init__(
        self, arch, encoder, n_out, *, tokenizer, labels, task, pooling="mean", head="linear", embedding=None
    ):
        super().__init__()
        self.arch = arch
        self.encoder = encoder
        self.embedding = embedding  # one-hot embedding for baselines, None for HF encoders
        self.pooling = pooling
        # width of `features` (B, F): the pooled encoder states, or the net's own pooled features
        self.feature_width = (
            pooled_width(encoder.config.hidden_size, pooling) if arch == "hf" else encoder.hidden_size
        )
        self.classifier = Head(self.feature_width, n_out, head)
        self.tokenizer = tokenizer
        self.labels = labels
        self.task = task

    # -- features
    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled sequence features (B, H)."""
        return self.features_from_embeds(self.embed(input_ids), attention_mask)

    def features_from_embeds(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.arch == "hf":
            out = self.encoder(inputs_embeds=embeds, attention_mask=attention_mask)
            return pool(out.last_hidden_state, attention_mask, self.pooling)  # (B, H)
        return self.encoder(embeds, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(
            trunk_features(self.encoder, self.embedding, self.pooling, input_ids, attention_mask)
        )

    # -- interpretation protocol
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings (B, L, E): word embeddings of the encoder, or one-hot for baselines."""
        if self.arch == "hf":
            return self.encoder.get_input_embeddings()(input_ids)
        return self.embedding(input_ids)

    def logits_from_embeds(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features_from_embeds(inputs_embeds, attention_mask))

    def attentions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Per-layer attention probabilities (B, heads, L, L), computed with eager attention."""
        if self.arch != "hf":
            raise InputError(
                f"--method attention: the '{self.arch}' baseline has no attention; use grad-input"
            )
        prev = getattr(self.encoder.config, "_attn_implementation", None)
        try:
            self.encoder.set_attn_implementation("eager")
        except (AttributeError, ValueError):
            pass
        try:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        finally:
            if prev:
                try:
                    self.encoder.set_attn_implementation(prev)
                except (AttributeError, ValueError):
                    pass
        if not out.attentions or out.attentions[0] is None:
            raise GenomlError("the encoder returned no attention maps; it may not support output_attentions")
        return tuple(out.attentions)


_NETS = {"cnn": OneHotCNN, "cnn-shallow": ShallowCNN, "cnn-attn": ConvAttention, "rnn": OneHotRNN}


def build_baseline(name: str, tokenizer, n_out: int, *, labels, task, head="linear") -> SequenceModel:
    """`cnn` or `rnn` from scratch over one-hot input of the tokenizer's letters (char / esm)."""
    if name not in BASELINE_NETS:
        raise InputError(f"--model {name}: not a baseline network; use one of {', '.join(BASELINE_NETS)}")
    emb = one_hot_embedding(tokenizer.vocab, tokenizer.alphabet)
    channels = emb.weight.shape[1]
    body = _NETS[name](channels)
    return SequenceModel(
        name, body, n_out, tokenizer=tokenizer, labels=labels, task=task, head=head, embedding=emb
    )


# ---------------------------------------------------------------- loading encoders


SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")  # what transformers loads first


def check_safe_weights(folder: Path) -> None:
    """Refuse pickle weights that are not plain tensors: unless the folder has the safetensors weights
    transformers loads first, every *.bin/*.pt/*.pth must load with torch.load(weights_only=True)."""
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return  # another *.safetensors (e.g. a head) does not stop transformers from reading a *.bin
    for p in list(folder.glob("*.bin")) + list(folder.glob("*.pt")) + list(folder.glob("*.pth")):
        try:
            torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure of the safe unpickler means "unsafe"
            raise _unsafe(p, e) from None


def _unsafe(path, e: Exception) -> UnsafeModelError:
    reason = re.sub(r"\x1b\[[0-9;]*m", "", str(e).splitlines()[0] if str(e) else "")[
        :160
    ]  # torch bolds words
    return UnsafeModelError(
        f"{path}: refused to load: the file is a pickle that is not plain weights ({type(e).__name__}: "
        f"{reason}); loading it could run code. Convert it to safetensors from a trusted environment."
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """False at once when HF_HUB_OFFLINE is set or huggingface.co does not answer a TCP connect in `timeout` s
    (avoids the hub client's long retry loop on a closed network)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host.split(":")[0], 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def looks_local(spec: str) -> bool:
    """A --model value meant as a path (not a hub id 'org/name'): absolute, ./ ../ ~, or several path parts."""
    s = str(spec)
    return s.startswith(("/", ".", "~")) or s.count("/") > 1 or "\\" in s or s.endswith("/")


def read_model_config(spec: str, *, revision: str | None = None) -> dict:
    """config.json of a local folder or hub id as a dict (InputError when missing or malformed)."""
    local = Path(spec).expanduser()
    if local.is_dir():
        path = local / "config.json"
        if not path.is_file():
            raise InputError(f"--model {spec}: not a Hugging Face model folder (no config.json in {local})")
    else:
        try:
            path = Path(hf_hub_download(spec, "config.json", revision=revision))
        except Exception as e:  # noqa: BLE001 - any hub failure (offline, 404, bad id) means no usable config
            raise InputError(
                f"--model {spec}: no config.json from the hub ({type(e).__name__}); {HUB_HINT}"
            ) from None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e}); restore the model's config.json") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a JSON object of model settings")
    return raw


def model_type_from_architectures(raw: dict) -> str | None:
    """The transformers model_type of a config's `architectures` class names (e.g. BertForMaskedLM -> bert)."""
    from transformers.models.auto import modeling_auto  # heavy: transformers loads in seconds

    by_class: dict[str, str] = {}
    for attr in dir(modeling_auto):
        table = getattr(modeling_auto, attr)
        if attr.endswith("_MAPPING_NAMES") and isinstance(table, dict):
            for model_type, names in table.items():
                for name in names if isinstance(names, (list, tuple)) else [names]:
                    by_class.setdefault(str(name), model_type)
    for name in raw.get("architectures") or []:
        if str(name) in by_class:
            return by_class[str(name)]
    return None


def _quiet_transformers():
    """Silence transformers' load report while genoml checks the loaded tensors itself."""
    from transformers.utils import logging as hf_logging  # heavy: transformers loads in seconds

    @contextlib.contextmanager
    def quiet():
        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()

    return quiet()


def load_hf_encoder(spec: str, *, revision: str | None = None, trust_remote_code: bool = False):
    """The encoder of a local folder or hub id, never silently wrong.

    A published architecture genoml implements (`genoml.archs.detect`) loads natively, with or without
    --trust-remote-code; other configs go through AutoModel (SDPA attention where supported). `model_type` is
    inferred from `architectures` when missing; a config with `auto_map` genoml does not know needs
    --trust-remote-code. After loading, every checkpoint tensor must be used and every model tensor loaded
    (known heads aside), else InputError naming the tensors. Any load failure is an InputError, not a traceback.
    """
    # heavy: transformers loads in seconds
    from transformers import AutoConfig, AutoModel
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    local = Path(spec).expanduser()
    if local.is_dir():
        check_safe_weights(local)
    elif looks_local(spec):
        raise InputError(
            f"--model {spec}: not a local folder (no such directory); give the path of a model folder "
            "or a genoml run directory"
        )
    elif trust_remote_code and not revision:
        # no pin needed when genoml implements the architecture: then no remote code runs at all
        raw = read_model_config(spec) if hub_reachable() else None
        if raw is None or not archs.detect(raw):
            raise InputError(
                f"--trust-remote-code with hub id '{spec}': pin the code you trust with --revision <commit sha>"
            )
    elif not hub_reachable():
        raise InputError(f"--model {spec}: not a local folder, and {HUB_HINT}")
    where = str(local) if local.is_dir() else spec
    raw = read_model_config(where, revision=revision)
    native = archs.detect(raw)
    try:
        with _quiet_transformers():
            if native:
                log.info("--model %s: loading natively as %s (no remote code)", spec, native)
                model = archs.load_native(native, where, config=raw, revision=revision, where=spec)
                if getattr(model.config, "alibi_starting_size", None) is not None and local.is_dir():
                    model.genoml_max_tokens = _tokenizer_max_length(local)
                return model
            return _load_auto(
                spec, where, raw, revision, trust_remote_code, AutoConfig, AutoModel, CONFIG_MAPPING
            )
    except GenomlError:
        raise
    except pickle.UnpicklingError as e:  # a hub download with pickle weights that are not plain tensors
        raise _unsafe(f"--model {spec}", e) from None
    except OSError as e:
        raise InputError(
            f"--model {spec}: could not load weights: {str(e).splitlines()[0] if str(e) else e!r}"
        ) from None
    except Exception as e:  # noqa: BLE001 - remote code and transformers raise anything; report, never a traceback
        first = str(e).splitlines()[0] if str(e) else ""
        raise InputError(
            f"--model {spec}: loading failed with {type(e).__name__}: {first[:300]}; "
            "if the model ships its own code it may not support this transformers version "
            "(see `genoml models` for the architectures genoml loads natively)"
        ) from None


def _tokenizer_max_length(folder: Path) -> int | None:
    """model_max_length of the folder's tokenizer_config.json when set to a usable size (not the 1e30 default)."""
    try:
        n = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("model_max_length")
    except (OSError, ValueError, AttributeError):
        return None
    return int(n) if isinstance(n, int) and 0 < n <= 1_000_000 else None


def _load_auto(spec, where, raw, revision, trust_remote_code, AutoConfig, AutoModel, CONFIG_MAPPING):
    auto_map = raw.get("auto_map")
    if auto_map and not trust_remote_code:
        names = ", ".join(
            sorted({str(v) for v in (auto_map.values() if isinstance(auto_map, dict) else auto_map)})
        )
        raise InputError(
            f"--model {spec}: config.json asks for modeling code shipped with the model (auto_map: {names}), "
            "an architecture genoml does not implement natively (`genoml models` lists those it does); "
            "pass --trust-remote-code (and --revision <commit> for a hub id) to run that code, only if you trust it"
        )
    kw = dict(revision=revision, trust_remote_code=trust_remote_code)
    model_type = raw.get("model_type")
    if not model_type and not auto_map:
        model_type = model_type_from_architectures(raw)
        if model_type is None:
            raise InputError(
                f"--model {spec}: config.json has no model_type and its architectures "
                f"{raw.get('architectures') or '(none)'} name no transformers model; add e.g. "
                '"model_type": "bert" to config.json'
            )
        log.info("--model %s: config.json has no model_type; %s from architectures", spec, model_type)
        config = CONFIG_MAPPING[model_type].from_dict({k: v for k, v in raw.items() if k != "model_type"})
    else:
        try:
            config = AutoConfig.from_pretrained(where, **kw)
        except ValueError as e:
            raise InputError(f"--model {spec}: {str(e).splitlines()[0]}") from None
    if getattr(config, "attention_probs_dropout_prob", 0) and hasattr(config, "attention_probs_dropout_prob"):
        config.attention_probs_dropout_prob = 0.0  # keeps the fused SDPA path
    try:
        model, info = AutoModel.from_pretrained(
            where, config=config, attn_implementation="sdpa", output_loading_info=True, **kw
        )
    except (ValueError, ImportError):
        model, info = AutoModel.from_pretrained(where, config=config, output_loading_info=True, **kw)
    archs.check_loading(info, where=spec, arch=f"{type(model).__name__} (model_type {config.model_type})")
    # AutoModel drops a masked-LM folder's LM head (check_loading treats it as a known head); the pooler is unused
    return model


def hidden_layers(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's stack of transformer blocks (BERT/RoBERTa/ESM: encoder.layer; generic: largest ModuleList)."""
    inner = getattr(encoder, "encoder", None)
    if inner is not None and isinstance(getattr(inner, "layer", None), nn.ModuleList):
        return inner.layer
    lists = [m for m in encoder.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise GenomlError(
            f"cannot find the transformer layers of {type(encoder).__name__} for partial freezing"
        )
    return max(lists, key=len)


ALIBI_MAX_TOKENS = 2048  # ALiBi has no position table: a default window, not a limit of the model


def max_positions(encoder: nn.Module) -> int:
    """Longest token sequence the encoder accepts (RoBERTa reserves padding_idx + 1 positions).

    HyenaDNA: `max_seq_len`; ALiBi models (DNABERT-2): no position table, so the tokenizer's model_max_length when
    load_hf_encoder found a sensible one (`encoder.genoml_max_tokens`), else ALIBI_MAX_TOKENS."""
    cfg = encoder.config
    if getattr(encoder, "genoml_max_tokens", None):
        return int(encoder.genoml_max_tokens)
    if getattr(cfg, "alibi_starting_size", None) is not None:
        return ALIBI_MAX_TOKENS
    if getattr(cfg, "max_seq_len", None):
        return int(cfg.max_seq_len)
    n = getattr(cfg, "max_position_embeddings", None) or 512
    if cfg.model_type in ("roberta", "xlm-roberta", "camembert"):
        n -= (cfg.pad_token_id or 1) + 1
    return int(n)
