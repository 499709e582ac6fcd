"""Headerless TSV pair files (`sentence1<TAB>sentence2[<TAB>label]`): validated reading, atomic writing."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from .errors import BadRowError
from .tokenizer import normalize

ALLOWED_COLUMNS = (2, 3)


@dataclass(frozen=True)
class PairRow:
    """One input row: its line number and its columns, the first two being the sentences."""

    line: int
    columns: list[str]


def read_pair_rows(path: str) -> Iterator[PairRow]:
    """Rows of a TSV pair file ('-' reads stdin); a malformed row raises BadRowError with file:line:reason."""
    with _open_binary(path) as stream:
        expected: int | None = None
        for line_number, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BadRowError(path, line_number, f"invalid UTF-8 at byte {error.start}") from None
            columns = text.rstrip("\r\n").split("\t")
            if len(columns) not in ALLOWED_COLUMNS:
                raise BadRowError(
                    path, line_number, f"expected sentence1<TAB>sentence2[<TAB>label], found {len(columns)} columns"
                )
            if expected is None:
                expected = len(columns)
            elif len(columns) != expected:
                raise BadRowError(path, line_number, f"{len(columns)} columns where line 1 has {expected}")
            for position in (0, 1):
                if not normalize(columns[position]):
                    raise BadRowError(path, line_number, f"sentence{position + 1} is empty")
            yield PairRow(line_number, columns)


@contextmanager
def _open_binary(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as stream:
        yield stream


@contextmanager
def atomic_text_output(path: str) -> Iterator[TextIO]:
    """Write to a temporary file beside `path` and rename it into place only on success ('-' is stdout)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent or ".")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
