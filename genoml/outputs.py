"""Output-path safety: genoml never deletes or overwrites what it did not write.

* An output folder genoml creates gets a marker file `.genoml` (JSON) that lists the entries that were
  already there (`foreign`, kept forever) and, once the command ends, the entries genoml wrote (`files`).
* `--force` only empties a folder genoml recognises as its own (`genoml.json` or `.genoml`), and only
  removes genoml's entries in it; it refuses the working directory (or a folder holding it), a folder
  that holds an input file, and any folder of other files (exit 2).
* An output path that is also an input path (after resolving symlinks) is refused.
* A command that fails removes what it wrote (and the folder, if it created it), nothing else.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from genoml import __version__
from genoml.errors import InputError

MARKER = ".genoml"
META = "genoml.json"

# what genoml writes at the top level of its output folders (used when the marker lists no files, e.g. a run
# written by an older genoml or killed before it recorded them)
GENOML_PATTERNS = (
    META,
    MARKER,
    ".incomplete",
    "*.json",
    "report.md",
    "README.md",
    "bench.md",
    "*.png",
    "*.svg",
    "*.safetensors",
    "predictions_*.tsv",
    "tracks.*.tsv",
    "tracks.*.bedgraph",
    "*.npz",
    "vocab.txt",
    "merges.txt",
    "*.model",
    "kmer_linear.*",
    "PROVENANCE.txt",
    "checkpoints",
    "attention",
    "motifs",
    "cache",
    "debug",
    "adapted",
    "adapt_corpus.fa",
    "split",
    "plots",
    "candidates",
    "bpe-tokenizer",
    "bpe-tokenizer.tmp",
    ".*.tmp",
    "*.tmp",
)

TRANSIENT = (
    ".incomplete",
    ".*.tmp",
    "*.tmp",
    "bpe-tokenizer.tmp",
)  # genoml's temporary files, always its own

_STATE: dict[str, dict] = {}  # resolved output folder -> {"created": bool, "before": set of names}


def _resolve(path: str | Path) -> Path:
    return Path(os.path.abspath(os.path.realpath(os.path.expanduser(str(path)))))


def input_paths(paths: Iterable[str | Path | None]) -> list[Path]:
    """Resolved paths of the inputs that exist on disk (stdin '-', None and hub ids are skipped)."""
    out = []
    for p in paths:
        if p is None or str(p) in ("", "-"):
            continue
        if Path(p).exists():
            out.append(_resolve(p))
    return out


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def read_marker(folder: Path) -> dict | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_genoml_folder(folder: Path) -> bool:
    """genoml's own output folder: a run (genoml.json), any folder it made (.genoml), or an older bench."""
    return (folder / META).is_file() or (folder / MARKER).is_file() or (folder / "bench.json").is_file()


def genoml_entries(folder: Path) -> list[Path]:
    """The top-level entries of a genoml output folder that genoml wrote (never the foreign ones)."""
    marker = read_marker(folder) or {}
    foreign = set(marker.get("foreign") or [])
    listed = set(marker.get("files") or [])
    mine = []
    for entry in sorted(folder.iterdir()):
        name = entry.name
        if name in foreign:
            continue
        if name in listed or name == MARKER or any(fnmatch.fnmatch(name, p) for p in TRANSIENT):
            mine.append(entry)
        elif listed:
            continue  # the marker lists what genoml wrote: anything else is the user's
        elif any(fnmatch.fnmatch(name, p) for p in GENOML_PATTERNS):
            mine.append(entry)
        elif entry.is_dir() and not entry.is_symlink() and _holds_runs(entry):
            mine.append(entry)  # a bench's per-model folder of seed runs
    return mine


def _holds_runs(folder: Path) -> bool:
    try:
        subs = [p for p in folder.iterdir()]
    except OSError:
        return False
    return bool(subs) and all(p.is_dir() and is_genoml_folder(p) for p in subs)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _check_writable(folder: Path, flag: str) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"{flag} {folder}: the folder is not writable (permission denied); choose another {flag}"
        )


def check_deletable(out: Path, *, flag: str, inputs: Iterable[str | Path | None] = ()) -> None:
    """Refuse to empty `out` unless it is genoml's own output folder, holding no input and not the cwd."""
    real = _resolve(out)
    cwd = _resolve(Path.cwd())
    if _within(cwd, real):
        what = "the working directory" if real == cwd else "a folder that holds the working directory"
        raise InputError(
            f"{flag} {out}: is {what}; --force never deletes it. Choose a new folder, e.g. {flag} runs/x"
        )
    for p in input_paths(inputs):
        if _within(p, real):
            raise InputError(
                f"{flag} {out}: holds the input {p}; --force never deletes inputs. Choose a new folder"
            )
    if not is_genoml_folder(out):
        n = sum(1 for _ in out.iterdir())
        raise InputError(
            f"{flag} {out}: not a genoml output folder (no {META} or {MARKER}) and holds {n} other file(s); "
            f"--force only replaces genoml's own outputs. Choose a new or empty folder"
        )
    _check_writable(out, flag)


def prepare_output_dir(
    path: str | Path,
    *,
    flag: str = "--out",
    inputs: Iterable[str | Path | None] = (),
    force: bool = False,
    resume: bool = False,
    kind: str = "run",
) -> Path:
    """Create (or safely reuse) an output folder; see the module docstring for the rules."""
    inputs = list(inputs)
    out = Path(path)
    real = _resolve(out)
    for p in input_paths(inputs):
        if p == real:
            raise InputError(f"{flag} {out}: is also an input; choose another {flag}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{flag} {out}: exists and is not a directory")
    created = not out.exists()
    if out.is_dir() and any(out.iterdir()):
        if not (force or resume):
            raise InputError(
                f"{flag} {out}: directory is not empty; pass --force to overwrite"
                + (" or --resume to continue" if kind == "run" else "")
            )
        if resume and not force:
            if not is_genoml_folder(out):
                raise InputError(
                    f"{flag} {out}: not a genoml output folder (no {META} or {MARKER}); nothing to "
                    "resume there. Choose a new or empty folder"
                )
            _check_writable(out, flag)
        else:
            check_deletable(out, flag=flag, inputs=inputs)
            try:
                for entry in genoml_entries(out):
                    _remove(entry)
            except OSError as e:
                raise InputError(
                    f"{flag} {out}: could not remove an earlier output ({e.strerror}: {e.filename})"
                ) from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(
            f"{flag} {out}: cannot create the folder ({e.strerror}); choose another {flag}"
        ) from None
    _check_writable(out, flag)
    before = {e.name for e in out.iterdir()}
    marker = read_marker(out)
    if marker is not None:  # --resume (a --force removed the marker with genoml's other files)
        listed = set(marker.get("files") or [])
        old_foreign = set(marker.get("foreign") or [])
        foreign = sorted(
            n
            for n in before - {MARKER}
            if n in old_foreign
            or (n not in listed and not any(fnmatch.fnmatch(n, p) for p in GENOML_PATTERNS))
        )
    elif (out / META).is_file() or (out / "bench.json").is_file():  # written by an older genoml: its names
        foreign = sorted(n for n in before if not any(fnmatch.fnmatch(n, p) for p in GENOML_PATTERNS))
    else:
        foreign = sorted(before - {MARKER})
    write_marker(out, {"kind": kind, "foreign": foreign, "files": (marker or {}).get("files", [])})
    _STATE[str(real)] = {"created": created or not before - {MARKER}, "before": before | {MARKER}}
    return out


def write_marker(folder: Path, data: dict) -> None:
    write_atomic(folder / MARKER, json.dumps({"genoml": __version__, **data}, indent=1) + "\n")


def record_outputs(folder: str | Path) -> None:
    """List in the marker the entries genoml wrote into `folder` (never fails the command)."""
    folder = Path(folder)
    try:
        marker = read_marker(folder)
        if marker is None:
            return
        foreign = set(marker.get("foreign") or [])
        files = sorted({e.name for e in folder.iterdir()} - foreign - {MARKER})
        write_marker(folder, {**{k: v for k, v in marker.items() if k != "genoml"}, "files": files})
        _fix_modes([folder / n for n in files])
    except OSError:
        pass


def _fix_modes(entries: list[Path]) -> None:
    """safetensors and tempfile.mkstemp create 0600 files: give genoml's files the mode the umask allows."""
    mode = umask_mode()
    for entry in entries:
        for p in [entry, *(entry.rglob("*") if entry.is_dir() and not entry.is_symlink() else [])]:
            try:
                if p.is_file() and not p.is_symlink() and p.stat().st_mode & 0o777 == 0o600 and mode != 0o600:
                    os.chmod(p, mode)
            except OSError:
                pass


def discard_outputs(folder: str | Path) -> None:
    """After a failure: remove what this command wrote into `folder` (and the folder if it created it)."""
    folder = Path(folder)
    state = _STATE.pop(str(_resolve(folder)), None)
    if state is None or not folder.is_dir():
        return
    if state["created"]:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in folder.iterdir():
        if entry.name not in state["before"]:
            try:
                _remove(entry)
            except OSError:
                pass


def check_output_file(output: str, *, flag: str = "-o", inputs: Iterable[str | Path | None] = ()) -> None:
    """An output file: not a directory, not an input, in an existing writable folder ('-' = stdout is fine)."""
    if output == "-":
        return
    out = Path(output)
    real = _resolve(out)
    for p in input_paths(inputs):
        if p == real:
            raise InputError(
                f"{flag} {output}: is also an input; writing it would destroy the input. "
                f"Choose another {flag}"
            )
    if out.is_dir():
        raise InputError(
            f"{flag} {output}: is a directory; give a file name, e.g. {flag} {out / 'predictions.tsv'}"
        )
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{flag} {output}: output folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"{flag} {output}: not writable (permission denied); choose another {flag}")


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """The one atomic writer: yields a handle on a temporary file beside `path` ("w" text, "wb" bytes), renamed
    onto `path` when the block ends and removed when it raises, so `path` is either complete or untouched.
    The file gets the mode open() would give (0o666 less the umask)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666 & ~umask, like open()
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` through `atomic_file`."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """The one file hash (sha256 hex) of inputs and outputs recorded in genoml.json."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def umask_mode(base: int = 0o666) -> int:
    """`base` with the process umask applied (what open() would give a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def chmod_like_open(path: str | Path) -> None:
    """Give a file made by tempfile.mkstemp (0600) the mode open() would have given it."""
    try:
        os.chmod(path, umask_mode())
    except OSError:
        pass
