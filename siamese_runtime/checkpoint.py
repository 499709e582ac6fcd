"""Job checkpoints: a fsync'd JSON sidecar saying how far a job got, and what it was run on.

A checkpoint is untrusted input: a resume reads it as typed, bounded fields (`load`), and the job then
checks it against the files it describes (the input prefix by its sha256 and by reading it again, the
partial output and reject files by the size and sha256 of their committed prefix). Anything that does not
agree is refused with ResumeError naming the file; nothing is ever written from a checkpoint that lies.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import __version__
from .errors import ResumeError
from .io.readers import Position
from .io.safe_output import Prefix, read_private_text, sidecar_path, write_json_atomically

VERSION = 2
HEAD_BYTES = 1 << 20
EMPTY_SHA256 = hashlib.sha256().hexdigest()
# The CPU's vector instruction sets that onnxruntime's and numpy's kernels are chosen by (Linux names).
KERNEL_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "asimd", "sve")


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Counts and positions after the last completed chunk: everything needed to go on from there.

    `input`, `output` and `rejects` are the committed prefixes of the three files: the input read so far,
    the output and reject bytes synced for those rows.
    """

    position: Position = field(default_factory=lambda: Position(0, 0))
    rows: int = 0
    written: int = 0
    bad_rows: int = 0
    encoded: int = 0
    truncated: int = 0
    input: Prefix = field(default_factory=lambda: Prefix(0, EMPTY_SHA256))
    output: Prefix = field(default_factory=lambda: Prefix(0, EMPTY_SHA256))
    rejects: Prefix = field(default_factory=lambda: Prefix(0, EMPTY_SHA256))


@dataclass(frozen=True)
class Saved:
    """A loaded checkpoint: the progress, and whether the job had begun committing its files."""

    progress: Progress
    committing: bool


def fingerprint(input_path: str, options: dict[str, Any]) -> dict[str, Any]:
    """What must not change between a job and its resumption: the input file's identity and the options."""
    stat = os.stat(input_path)
    with open(input_path, "rb") as stream:
        head = hashlib.sha256(stream.read(HEAD_BYTES)).hexdigest()
    return {
        "input": os.path.abspath(input_path), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        "input_head_sha256": head, **options,
    }


def kernels() -> dict[str, Any]:
    """What chooses the kernels that compute a score: onnxruntime's and numpy's versions and the CPU's vector
    instruction sets. Scores are batch-invariant on one machine, not across kinds of CPU: a job resumed on
    another kind could change the last bits of the rows after the resume, so a resume there is refused."""
    import numpy
    import onnxruntime

    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(("flags", "Features"))).split(":", 1)[1].split()
    except (OSError, StopIteration, IndexError):
        flags = []
    return {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "machine": platform.machine(),
            "cpu_flags": sorted(set(flags) & set(KERNEL_FLAGS))}


def software() -> dict[str, str | None]:
    """What reads the input and writes the output: this runtime's, Python's and pyarrow's versions (pyarrow's
    as installed, without importing it; None where it is not). Another version may write other bytes."""
    try:
        pyarrow: str | None = version("pyarrow")
    except PackageNotFoundError:
        pyarrow = None
    return {"siamese_runtime": __version__, "python": platform.python_version(), "pyarrow": pyarrow}


class Checkpoint:
    """The sidecar of one output file: `.NAME.checkpoint.json` beside it."""

    def __init__(self, output: str, fingerprint: dict[str, Any], byte_positions: bool = True) -> None:
        """`byte_positions`: the input's positions are byte offsets (text formats), else row counts (Parquet)."""
        self.path = sidecar_path(output, "checkpoint.json")
        self._temporary = sidecar_path(output, "checkpoint.json.tmp")
        self.fingerprint = fingerprint
        self.byte_positions = byte_positions

    def save(self, progress: Progress, committing: bool = False) -> None:
        write_json_atomically(self.path, self._temporary, {"version": VERSION, "fingerprint": self.fingerprint,
                                          "committing": committing, "progress": asdict(progress)})

    def load(self) -> Saved | None:
        """The saved progress, None if there is no checkpoint; ResumeError if it was made for another job or
        any field is missing, of the wrong type or out of bounds."""
        try:
            text = read_private_text(self.path)
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as error:
            raise self._unreadable(f"not UTF-8: {error.reason}") from None
        try:
            saved = json.loads(text)
        except (json.JSONDecodeError, RecursionError, ValueError) as error:
            raise self._unreadable(f"not JSON: {error}") from None
        if not isinstance(saved, dict) or saved.get("version") != VERSION:
            version = saved.get("version") if isinstance(saved, dict) else None
            raise self._unreadable(f"checkpoint version {version!r}, expected {VERSION}")
        saved_fingerprint = saved.get("fingerprint")
        if not isinstance(saved_fingerprint, dict):
            raise self._unreadable("its fingerprint is not an object")
        changed = sorted(k for k in {*saved_fingerprint, *self.fingerprint}
                         if saved_fingerprint.get(k) != self.fingerprint.get(k))
        if changed:
            raise ResumeError(
                f"cannot resume: the input, the options or the software changed since the checkpoint {self.path} "
                f"({', '.join(changed)}); rerun without --resume to start over"
            )
        if not isinstance(saved.get("committing"), bool):
            raise self._unreadable("'committing' is not true or false")
        try:
            limit = self.fingerprint["input_size"] if self.byte_positions else None
            progress = _progress(saved.get("progress"), limit)
        except ValueError as error:
            raise self._unreadable(str(error)) from None
        return Saved(progress, saved["committing"])

    def remove(self) -> None:
        """The checkpoint gone, with the temporary file of a save that a kill cut short."""
        self.path.unlink(missing_ok=True)
        self._temporary.unlink(missing_ok=True)

    def _unreadable(self, reason: str) -> ResumeError:
        return ResumeError(f"{self.path}: unusable checkpoint: {reason}; rerun without --resume to start over")


def _progress(data: object, input_size: int | None) -> Progress:
    """Progress from its JSON object, every field typed and bounded; ValueError says which is not.
    `input_size`: the input's size in bytes where positions are byte offsets, else None (Parquet rows)."""
    values = _fields(data, "progress", [f.name for f in fields(Progress)])
    position = _fields(values["position"], "progress.position", ["offset", "line"])
    counts = {name: _count(values[name], f"progress.{name}") for name in
              ("rows", "written", "bad_rows", "encoded", "truncated")}
    offset, line = (_count(position[name], f"progress.position.{name}") for name in ("offset", "line"))
    prefixes = {name: _prefix(values[name], f"progress.{name}") for name in ("input", "output", "rejects")}
    read = offset if input_size is not None else 0  # the input bytes hashed so far
    bounds = [
        (input_size is None or offset <= input_size, f"the input position {offset} is past the input's end"),
        (prefixes["input"].size == read, "the input prefix does not end at the input position"),
        (line <= offset and counts["rows"] <= line, "more rows or lines than the input position allows"),
        (counts["written"] <= counts["rows"] and counts["bad_rows"] <= counts["rows"], "more rows out than in"),
        (counts["written"] + counts["bad_rows"] >= counts["rows"], "rows neither written nor rejected"),
        (counts["truncated"] <= counts["encoded"] <= 2 * counts["rows"], "more sentences encoded than read"),
    ]
    if failed := [reason for holds, reason in bounds if not holds]:
        raise ValueError(failed[0])
    return Progress(position=Position(offset, line), rows=counts["rows"], written=counts["written"],
                    bad_rows=counts["bad_rows"], encoded=counts["encoded"], truncated=counts["truncated"],
                    input=prefixes["input"], output=prefixes["output"], rejects=prefixes["rejects"])


def _fields(data: object, name: str, names: list[str]) -> dict[str, Any]:
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        raise ValueError(f"{name} must be an object of exactly {', '.join(names)}")
    return data


def _count(value: object, name: str) -> int:
    if type(value) is not int or value < 0:  # bool is an int subclass: refused too
        raise ValueError(f"{name} must be a non-negative integer, found {json.dumps(value)[:40]}")
    return value


def _prefix(value: object, name: str) -> Prefix:
    prefix = _fields(value, name, ["size", "sha256"])
    digest = prefix["sha256"]
    if not isinstance(digest, str) or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise ValueError(f"{name}.sha256 must be 64 hex digits")
    return Prefix(_count(prefix["size"], f"{name}.size"), digest)


class InputPrefix:
    """The sha256 of a job's input up to its position, advanced as the job reads on (a second reader of
    the same file: the checkpoint records what was read, and a resume checks the input still holds it)."""

    def __init__(self, path: str, start: Prefix) -> None:
        self._stream = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._digest = hashlib.sha256()
        self._size = 0
        self.advance(start.size)
        if self._digest.hexdigest() != start.sha256:
            self.close()
            raise ResumeError(f"cannot resume: the first {start.size} bytes of {path} are not those the job read; "
                              "rerun without --resume to start over")

    def advance(self, offset: int) -> Prefix:
        """The prefix up to `offset`, hashing the bytes read since the last call."""
        while self._size < offset:
            block = self._stream.read(min(offset - self._size, 1 << 20))
            if not block:
                raise ResumeError(f"{self._stream.name} ends at byte {self._size}, before {offset}")
            self._digest.update(block)
            self._size += len(block)
        return Prefix(self._size, self._digest.hexdigest())

    def close(self) -> None:
        self._stream.close()
