"""The one device rule of genoml: tensors go to the device of the model that consumes them.

- `resolve_device("auto" | "cpu" | "cuda", flag="--device")` turns a command-line choice into a
  `torch.device` (auto = cuda when available); asking for cuda without a GPU is an InputError naming
  the flag (exit 2).
- `model_device(model)` is where a model's inputs must go: the device of its first parameter (or
  buffer), read at call time, never a stored default (Accelerate may have moved the model since).
- `to_device(batch, device)` moves every tensor of a dict/tuple/list (non-blocking from pinned memory).
- `autocast(device, precision)` is the mixed-precision context of inference: bf16 on CUDA; on CPU fp32
  unless bf16 is asked for (`precision="bf16"`), see `cpu_bf16_supported`.
- `check_inputs_on_model_device(model)` installs a forward pre-hook that raises when a tensor input is
  on another device than the model's parameters (used by tests; cheap enough to leave on).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from genoml.errors import InputError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
CPU_BATCH_TOKENS = 4096  # padded tokens per inference batch on CPU (cache-sized; larger is slower there)
CUDA_BATCH_TOKENS = 16384


def resolve_device(name: str | torch.device | None = "auto", *, flag: str = "--device") -> torch.device:
    """ "auto" | "cpu" | "cuda" | "cuda:N" -> torch.device. InputError (exit 2) for cuda without a GPU."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise InputError(f"{flag} {name}: use auto, cpu or cuda")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{flag} {name}: no CUDA device is available; use {flag} cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise InputError(f"{flag} {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device(name)


def resolve_precision(name: str | None, *, flag: str = "--precision") -> str:
    name = (name or "auto").strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"{flag} {name}: use auto, fp32, bf16 or int8")
    return name


def default_batch_tokens(device: torch.device, batch_tokens: int | None = None) -> int:
    """--batch-tokens, or the device's default when not given (None/0)."""
    if batch_tokens:
        return int(batch_tokens)
    return CUDA_BATCH_TOKENS if device.type == "cuda" else CPU_BATCH_TOKENS


def model_device(model: torch.nn.Module | None) -> torch.device:
    """The device a model's inputs must be on: that of its first parameter (else buffer; cpu when it has none)."""
    if model is None:
        return torch.device("cpu")
    for tensors in (model.parameters(), model.buffers()):
        t = next(iter(tensors), None)
        if t is not None:
            return t.device
    return torch.device("cpu")


def to_device(obj: Any, device: torch.device) -> Any:
    """Every tensor in obj (tensor, dict, list, tuple) moved to `device`; other values unchanged.
    Pinned CPU tensors are copied without blocking the host (CUDA)."""
    if torch.is_tensor(obj):
        if obj.device == device:
            return obj
        return obj.to(device, non_blocking=obj.is_pinned() if device.type == "cuda" else False)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


@functools.cache
def cpu_bf16_supported() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX-512 BF16 / AMX): oneDNN then has a fast bf16 path.
    Without it bf16 is emulated and slower than fp32."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", ...
    except Exception:  # noqa: BLE001 - older torch
        cap = ""
    flags = ""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        pass
    native = any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))
    return bool(torch.backends.mkldnn.is_available() and native and "AVX512" in cap.upper())


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    """bf16 autocast? auto: on CUDA yes; on CPU only where bf16 is native (`cpu_bf16_supported`: the
    prediction change was measured negligible, BENCHMARKS.md), else fp32 (emulated bf16 is slower).
    "bf16" forces it, "fp32"/"int8" never."""
    if precision in ("fp32", "int8"):
        return False
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return precision == "bf16" or cpu_bf16_supported()


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """--precision int8 (CPU inference only): a copy of `model` whose nn.Linear layers run dynamically
    quantized int8 matmuls (weights int8 per tensor, activations quantized per batch). Opt-in: it changes
    predictions slightly (measured in BENCHMARKS.md)."""
    if model_device(model).type != "cpu":
        raise InputError("--precision int8: dynamic int8 quantization runs on the CPU only; use --device cpu")
    try:
        from torch.ao.quantization import quantize_dynamic  # optional: not in every torch build
    except ImportError:
        raise InputError("--precision int8: this torch build has no dynamic quantization; use fp32") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast context for `device` (see use_bf16); a no-op context otherwise."""
    if device.type in ("cuda", "cpu") and use_bf16(device, precision):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class DeviceMismatchError(RuntimeError):
    pass


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)


def check_inputs_on_model_device(model: torch.nn.Module):
    """Forward pre-hook on `model`: raise DeviceMismatchError when a tensor argument is not on the device of
    the model's parameters. Returns the hook handle (`.remove()` it)."""

    def hook(module, args, kwargs):
        want = model_device(module)
        for t in _tensors((args, kwargs)):
            if t.device.type != want.type:
                raise DeviceMismatchError(
                    f"{type(module).__name__} got an input of shape {tuple(t.shape)} on {t.device}, "
                    f"its parameters are on {want}"
                )

    return model.register_forward_pre_hook(hook, with_kwargs=True)


def set_threads(threads: int | None) -> None:
    """torch intra-op threads (None: leave torch's default, one per physical core)."""
    if threads:
        torch.set_num_threads(int(threads))


@contextlib.contextmanager
def fused_kernels() -> Iterator[None]:
    """Run transformers models with fused kernels where their Python code spells an op out element by element.

    ESM's `gelu(x) = x * 0.5 * (1 + erf(x / sqrt(2)))` launches five elementwise kernels forward (and more
    backward); `torch.nn.functional.gelu` (exact erf form, not the tanh approximation) computes the same
    function in one. Measured on CPU it was as costly as all the int8 matmuls of a small ESM. Outputs agree to
    float rounding (the change of predictions is measured in BENCHMARKS.md). Set GENOML_FUSED_KERNELS=0 to run
    the models' own code. Not thread-safe against another thread running an ESM model outside this context.
    """
    if os.environ.get("GENOML_FUSED_KERNELS", "1") == "0":
        yield
        return
    try:
        from transformers.models.esm import modeling_esm  # heavy: transformers loads in seconds
    except ImportError:  # pragma: no cover - transformers without ESM
        yield
        return
    old = modeling_esm.gelu
    modeling_esm.gelu = _exact_gelu
    try:
        yield
    finally:
        modeling_esm.gelu = old


def _exact_gelu(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.gelu(x)
