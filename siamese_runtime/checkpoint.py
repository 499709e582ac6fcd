"""Job checkpoints: a fsync'd JSON sidecar saying how far a job got, and what it was run on."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ResumeError
from .io.readers import Position
from .io.safe_output import read_private_text, sidecar_path, write_json_atomically

VERSION = 1
HEAD_BYTES = 1 << 20


@dataclass(kw_only=True)
class Progress:
    """Counts and positions after the last completed chunk: everything needed to go on from there."""

    position: Position = field(default_factory=lambda: Position(0, 0))
    rows: int = 0
    written: int = 0
    bad_rows: int = 0
    encoded: int = 0
    truncated: int = 0
    output_bytes: int = 0
    reject_bytes: int = 0


def fingerprint(input_path: str, options: dict[str, Any]) -> dict[str, Any]:
    """What must not change between a job and its resumption: the input file's identity and the options."""
    stat = os.stat(input_path)
    with open(input_path, "rb") as stream:
        head = hashlib.sha256(stream.read(HEAD_BYTES)).hexdigest()
    return {
        "input": os.path.abspath(input_path), "input_size": stat.st_size, "input_mtime_ns": stat.st_mtime_ns,
        "input_head_sha256": head, **options,
    }


class Checkpoint:
    """The sidecar of one output file: `.NAME.checkpoint.json` beside it."""

    def __init__(self, output: str, fingerprint: dict[str, Any]) -> None:
        self.path = sidecar_path(output, "checkpoint.json")
        self.fingerprint = fingerprint

    def save(self, progress: Progress) -> None:
        data = asdict(progress)
        write_json_atomically(self.path, {"version": VERSION, "fingerprint": self.fingerprint, "progress": data})

    def load(self) -> Progress | None:
        """The saved progress, None if there is no checkpoint; an error if it was made for another job."""
        try:
            saved = json.loads(read_private_text(self.path))
            fingerprint, progress = saved["fingerprint"], saved["progress"]
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise ResumeError(f"{self.path}: unreadable checkpoint ({error!r}); rerun without --resume") from None
        if saved.get("version") != VERSION:
            raise ResumeError(f"{self.path}: checkpoint version {saved.get('version')!r}, expected {VERSION}")
        changed = sorted(k for k in {*fingerprint, *self.fingerprint} if fingerprint.get(k) != self.fingerprint.get(k))
        if changed:
            raise ResumeError(
                f"cannot resume: the input or the options changed since the checkpoint ({', '.join(changed)}); "
                "rerun without --resume to start over"
            )
        try:
            return Progress(**{**progress, "position": Position(**progress["position"])})
        except TypeError as error:
            raise ResumeError(f"{self.path}: unreadable checkpoint ({error}); rerun without --resume") from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
