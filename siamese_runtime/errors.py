"""Exceptions raised by the runtime; the CLI turns them into messages and exit codes."""

from __future__ import annotations

import os


class SiameseRuntimeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class UsageError(SiameseRuntimeError):
    """Options that cannot work together, refused before any work (CLI exit code 2)."""


class UnsafeOutputError(UsageError):
    """An output path the job refuses to write: the input, another output of the job, a directory, a link."""


class OutputLockedError(SiameseRuntimeError):
    """Another job holds the output; retrying later may succeed (CLI exit code 75)."""


class InputError(SiameseRuntimeError):
    """An input file that cannot be read as pairs; the message names the file."""


class ResumeError(SiameseRuntimeError):
    """`--resume` is refused: the checkpoint is missing, unreadable, or made for another job."""


class MissingExtraError(SiameseRuntimeError):
    """An optional dependency is not installed; the message names the extra that installs it."""


class ModelLoadError(SiameseRuntimeError):
    """A model folder or one of its files cannot be used; the message names the file."""


class ModelOutputError(SiameseRuntimeError):
    """A model that loaded computed what no score can come from (numbers that are not finite); the message names
    its file and the sentence."""


class OutputChangedError(SiameseRuntimeError):
    """Another program replaced or removed a file a job was writing; nothing of the job is published."""


class ProviderUnavailableError(SiameseRuntimeError):
    """An execution provider was requested explicitly but cannot run here."""


class UnknownProviderError(ProviderUnavailableError, UsageError):
    """A provider request that names no provider (`--provider cuda:x`): a usage error (CLI exit code 2)."""


class BadRowError(InputError):
    """An input row cannot be scored; the message names the file, line (or the row's id) and reason."""

    def __init__(self, source: str, line: int | str, reason: str) -> None:
        super().__init__(f"{source}:{line}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, int | str, str]]:  # picklable: Ray raises it across processes
        return type(self), (self.source, self.line, self.reason)


def os_error_text(error: OSError) -> str:
    """'FILE: reason' ('FILE -> OTHER: reason' for a rename); the reason alone where the error names no file."""
    reason = error.strerror or str(error)
    names = " -> ".join(os.fsdecode(name) if isinstance(name, bytes) else str(name)
                        for name in (error.filename, error.filename2) if name is not None)
    return f"{names}: {reason}" if names else reason
