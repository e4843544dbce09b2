"""Hostile model files: a pickle that would run code is refused (exit 3) and never runs; weights load only
via safetensors or torch.load(weights_only=True); trust_remote_code needs the flag, and a pinned
--revision for hub ids; an unreachable hub fails fast with a hint to pass a local folder.
"""

from __future__ import annotations

import ast
import json
import shutil
import time
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

from genoml.cli import main
from tests.tiny import planted_motif_rows, tiny_bert_folder, write_csv

GENOML = Path(__file__).resolve().parents[1] / "genoml"
FAST = ["--epochs", "1", "--no-baselines", "--no-attention", "--threads", "1"]


class CreatesMarker:
    """Unpickling this object calls open(marker, "w"): proof that the pickle ran code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("security")
    return {
        "dir": d,
        "bert": tiny_bert_folder(d / "bert"),
        "train": write_csv(d / "train.csv", planted_motif_rows(60, seed=31)),
    }


def hostile_folder(base: dict, tmp_path: Path, variant: str) -> tuple[Path, Path]:
    """A copy of the tiny BERT whose weights are a malicious pytorch_model.bin. Returns (folder, marker)."""
    folder = tmp_path / "model"
    shutil.copytree(base["bert"], folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "PWNED"
    torch.save(
        {"bert.embeddings.word_embeddings.weight": CreatesMarker(marker)}, folder / "pytorch_model.bin"
    )
    if variant == "beside-other-safetensors":  # an unrelated *.safetensors must not make the folder "safe"
        save_file({"x": torch.zeros(1)}, str(folder / "adapter.safetensors"))
    if variant == "run-dir":  # a genoml run directory whose encoder weights were swapped
        save_file({"net.1.weight": torch.zeros(2, 32)}, str(folder / "head.safetensors"))  # a valid head
        (folder / "genoml.json").write_text(
            json.dumps(
                {
                    "arch": "hf",
                    "labels": {"task": "binary", "names": ["0", "1"], "mean": 0.0, "std": 1.0},
                    "alphabet": "dna",
                    "max_tokens": 64,
                }
            )
        )
    return folder, marker


@pytest.mark.parametrize(
    ("command", "variant"),
    [
        ("finetune", "bin-only"),
        ("finetune", "beside-other-safetensors"),
        ("embed", "bin-only"),
        ("embed", "beside-other-safetensors"),
        ("predict", "run-dir"),
    ],
)
def test_malicious_pickle_is_refused_and_never_runs(command, variant, base, tmp_path, capsys):
    folder, marker = hostile_folder(base, tmp_path, variant)
    out = tmp_path / "out"
    argv = {
        "finetune": ["finetune", str(base["train"]), "--model", str(folder), "--out", str(out), *FAST],
        "embed": ["embed", str(base["train"]), "--model", str(folder), "-o", f"{out}.npz"],
        "predict": ["predict", "--model", str(folder), str(base["train"]), "-o", f"{out}.tsv"],
    }[command]
    rc = main(["-q", *argv])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "pytorch_model.bin: refused to load" in err and "could run code" in err
    assert not marker.exists()
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_refused_even_if_the_folder_check_is_bypassed(base, tmp_path, capsys, monkeypatch):
    """Second line of defence: transformers itself unpickles with weights_only=True; genoml maps that to exit 3."""
    folder, marker = hostile_folder(base, tmp_path, "bin-only")
    monkeypatch.setattr("genoml.models.check_safe_weights", lambda folder: None)
    rc = main(["-q", "embed", str(base["train"]), "--model", str(folder), "-o", str(tmp_path / "e.npz")])
    assert rc == 3 and "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_malicious_checkpoint_is_refused_on_resume(base, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["finetune", str(base["train"]), "--model", "cnn", "--out", str(out), *FAST[2:]]
    assert main(["-q", *args, "--epochs", "1"]) == 0
    marker = tmp_path / "PWNED"
    ckpt = next((out / "checkpoints").glob("step-*"))
    torch.save({"state": CreatesMarker(marker), "param_groups": []}, ckpt / "optimizer.pt")
    capsys.readouterr()
    assert main(["-q", *args, "--epochs", "2", "--resume"]) == 3
    assert "refused to load a pickle" in capsys.readouterr().err
    assert not marker.exists()


def test_plain_pytorch_bin_weights_still_load(base, tmp_path, capsys):
    """Refusing code is not refusing pickles: a plain state-dict pytorch_model.bin loads (weights_only=True)."""
    folder = tmp_path / "model"
    shutil.copytree(base["bert"], folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    assert (
        main(["-q", "embed", str(base["train"]), "--model", str(folder), "-o", str(tmp_path / "e.npz")]) == 0
    )


def torch_load_calls() -> list[tuple[str, int, bool]]:
    """(file, line, weights_only=True?) for every torch.load(...) in genoml/, plus any pickle/joblib load."""
    found = []
    for path in sorted(GENOML.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = getattr(node.func.value, "id", "")
            name = f"{owner}.{node.func.attr}"
            if name in ("pickle.load", "pickle.loads", "joblib.load", "dill.load", "cloudpickle.load"):
                found.append((path.name, node.lineno, False))
            if name == "torch.load" or (
                name == "np.load" and any(k.arg == "allow_pickle" for k in node.keywords)
            ):
                safe = any(
                    k.arg == "weights_only" and getattr(k.value, "value", None) is True for k in node.keywords
                )
                found.append((path.name, node.lineno, safe and name == "torch.load"))
    return found


def test_every_torch_load_is_weights_only():
    calls = torch_load_calls()
    assert calls, "expected the checkpoint and model-check loads to be found"
    assert all(safe for *_, safe in calls), [c for c in calls if not c[2]]


def test_the_source_scan_catches_an_unsafe_load(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text("import torch, pickle\ntorch.load('x')\npickle.loads(b'')\n")
    monkeypatch.setattr(f"{__name__}.GENOML", tmp_path)
    assert torch_load_calls() == [("bad.py", 2, False), ("bad.py", 3, False)]


# --------------------------------------------------------------------------- remote code and the hub


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, dict]]:
    """Every from_pretrained call of AutoConfig / AutoModel / AutoTokenizer with its keyword arguments."""
    calls: list[tuple[str, dict]] = []
    for cls in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        original = cls.from_pretrained

        def spy(*args, _original=original, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    return calls


def test_trust_remote_code_is_off_without_the_flag(base, tmp_path, recorded):
    run = tmp_path / "run"
    assert (
        main(["-q", "finetune", str(base["train"]), "--model", str(base["bert"]), "--out", str(run), *FAST])
        == 0
    )
    assert (
        main(["-q", "predict", "--model", str(run), str(base["train"]), "-o", str(tmp_path / "p.tsv")]) == 0
    )
    assert (
        main(["-q", "embed", str(base["train"]), "--model", str(base["bert"]), "-o", str(tmp_path / "e.npz")])
        == 0
    )
    names = {name for name, _ in recorded}
    assert {"AutoConfig", "AutoModel"} <= names, names
    assert all(not kw.get("trust_remote_code") for _, kw in recorded), recorded


def test_trust_remote_code_flag_reaches_transformers(base, tmp_path, recorded):
    """The spy sees the flag when it is given (so the test above is not vacuous)."""
    run = tmp_path / "run"
    assert (
        main(
            [
                "-q",
                "finetune",
                str(base["train"]),
                "--model",
                str(base["bert"]),
                "--out",
                str(run),
                "--trust-remote-code",
                *FAST,
            ]
        )
        == 0
    )
    assert any(kw.get("trust_remote_code") is True for name, kw in recorded if name == "AutoModel")


def test_remote_code_from_the_hub_needs_a_pinned_revision(base, tmp_path, capsys, recorded):
    out = tmp_path / "run"
    rc = main(
        [
            "-q",
            "finetune",
            str(base["train"]),
            "--model",
            "someorg/dna-model",
            "--trust-remote-code",
            "--out",
            str(out),
            *FAST,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "--trust-remote-code with hub id 'someorg/dna-model'" in err and "--revision" in err
    assert not recorded  # refused before transformers is asked for anything
    assert not out.exists()


@pytest.mark.parametrize("command", ["finetune", "embed"])
def test_hub_id_offline_fails_fast_with_a_hint(command, base, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out"
    argv = (
        [
            "finetune",
            str(base["train"]),
            "--model",
            "someorg/dna-model",
            "--revision",
            "abc123",
            "--out",
            str(out),
            *FAST,
        ]
        if command == "finetune"
        else ["embed", str(base["train"]), "--model", "someorg/dna-model", "-o", f"{out}.npz"]
    )
    t0 = time.monotonic()
    rc = main(["-q", *argv])
    seconds = time.monotonic() - t0
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "--model someorg/dna-model" in err and "local folder" in err
    assert seconds < 10
    assert list(tmp_path.iterdir()) == []
