"""Output files written beside their target and renamed into place only when complete; resumable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO


def partial_path(target: str) -> Path:
    """Where `target` is written until the job completes: a hidden file beside it."""
    path = Path(target)
    return path.with_name(f".{path.name}.partial")


class AtomicFile:
    """Bytes appended to `target`'s partial file, synced on demand, renamed onto `target` by `commit`.

    `resume_at` reopens an existing partial file cut back to that many bytes (what a checkpoint recorded).
    '-' writes straight to stdout: nothing to sync, rename or resume.
    """

    def __init__(self, target: str, resume_at: int | None = None) -> None:
        self.target = target
        self.partial = None if target == "-" else partial_path(target)
        self._stream: BinaryIO
        if self.partial is None:
            self._stream = sys.stdout.buffer
        elif resume_at is None:
            self._stream = open(self.partial, "wb")
        else:
            self._stream = open(self.partial, "r+b")
            self._stream.truncate(resume_at)
            self._stream.seek(resume_at)

    def write(self, text: str) -> None:
        self._stream.write(text.encode("utf-8"))

    def sync(self) -> int:
        """Flush to disk; the number of bytes written so far."""
        self._stream.flush()
        if self.partial is None:
            return 0
        os.fsync(self._stream.fileno())
        return self._stream.tell()

    def commit(self) -> None:
        """Make the complete file visible under its name, whole."""
        self.sync()
        if self.partial is not None:
            self._stream.close()
            os.replace(self.partial, self.target)
            fsync_directory(self.partial.parent)

    def discard(self) -> None:
        """Remove the partial file (a job that failed and cannot be resumed)."""
        if self.partial is not None:
            self._stream.close()
            self.partial.unlink(missing_ok=True)


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Replace `path` by `data` as JSON, whole or not at all, and durably."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(data, stream, ensure_ascii=False, indent=1)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
