"""Reading pair files as records with line numbers and resume positions; header detection for TSV/CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from typing import TYPE_CHECKING, BinaryIO

from ..errors import SiameseRuntimeError
from .formats import pyarrow_parquet

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

PEEK_ROWS = 20
KNOWN_COLUMNS = frozenset(
    "id label sentence1 sentence2 text_a text_b text1 text2 question1 question2 query candidate s1 s2 left right".split()
)


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading resumes: a byte offset (a row count for Parquet) and the last line read."""

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class Record:
    """One input row: its first line, the position after it, its values in column order.

    `source` is the row's JSON object (JSONL only); `problem` says why the row cannot be parsed.
    """

    line: int
    end: Position
    values: list[object]
    source: dict | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Table:
    """An opened input: column names (header names, or column1, column2, ...) and its records."""

    columns: list[str]
    header: bool
    records: Iterator[Record]


@contextmanager
def open_table(
    path: str, fmt: str, header: bool | None = None, start: Position | None = None,
    filesystem: FileSystem | None = None,
) -> Iterator[Table]:
    """Open `path` ('-': stdin) as a Table; `header` None detects it; `start` resumes after a position.

    With a pyarrow `filesystem`, `path` is read from it (S3, GCS, HDFS, ...) instead of the local disk.
    """
    if fmt == "parquet":
        yield _parquet_table(path, start, filesystem)
        return
    parse = {"tsv": _tsv_records, "csv": _csv_records, "jsonl": _jsonl_records}[fmt]
    with _open_binary(path, filesystem) as stream:
        records = parse(stream, Position(0, 0))
        head = list(islice(records, PEEK_ROWS))
        if fmt == "jsonl":
            first = next((r for r in head if r.source is not None), None)
            columns, has_header = (list(first.source) if first else []), True
        else:
            rows = [r.values for r in head]
            has_header = looks_like_header(rows) if header is None else header
            width = len(rows[0]) if rows else 0
            columns = [str(v) for v in rows[0]] if has_header and rows else [f"column{i + 1}" for i in range(width)]
        if start is not None:
            stream.seek(start.offset)
            records = parse(stream, start)
        else:
            records = chain(head[1:] if has_header and fmt != "jsonl" else head, records)
        if fmt == "jsonl":
            records = (_aligned(r, columns) for r in records)
        else:
            records = (_width_checked(r, len(columns)) for r in records)
        yield Table(columns, has_header, records)


def looks_like_header(rows: list[list[object]]) -> bool:
    """True when the first row names columns: distinct non-empty cells that are all known column names,
    or a column that is numeric in the following rows (a label) but not in the first."""
    if not rows:
        return False
    first, rest = [str(v).strip() for v in rows[0]], [r for r in rows[1:] if len(r) == len(rows[0])]
    if not all(first) or len(set(first)) != len(first):
        return False
    if all(cell.lower() in KNOWN_COLUMNS for cell in first):
        return True
    return bool(rest) and any(
        not _is_number(cell) and all(_is_number(str(row[i])) for row in rest) for i, cell in enumerate(first)
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@contextmanager
def _open_binary(path: str, filesystem: FileSystem | None) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    if filesystem is not None:
        with io.BufferedReader(filesystem.open_input_stream(path)) as stream:  # type: ignore[arg-type]
            yield stream  # type: ignore[misc]
        return
    with open(path, "rb") as stream:
        yield stream


def _decoded_lines(stream: BinaryIO, start: Position) -> Iterator[tuple[int, Position, str, str | None]]:
    """(line number, position after it, text without the line ending, invalid-UTF-8 problem or None)."""
    offset, line = start.offset, start.line
    for raw in stream:
        offset, line = offset + len(raw), line + 1
        try:
            text, problem = raw.decode("utf-8"), None
        except UnicodeDecodeError as error:
            text, problem = raw.decode("utf-8", errors="replace"), f"invalid UTF-8 at byte {error.start}"
        yield line, Position(offset, line), text.rstrip("\r\n"), problem


def _tsv_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    for line, end, text, problem in _decoded_lines(stream, start):
        yield Record(line, end, text.split("\t"), problem=problem)


def _csv_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    state = {"end": start, "problem": None}

    def lines() -> Iterator[str]:
        for _, end, text, problem in _decoded_lines(stream, start):
            state["end"], state["problem"] = end, state["problem"] or problem
            yield text + "\n"

    reader = csv.reader(lines())
    first_line = start.line + 1
    try:
        for values in reader:
            end, problem = state["end"], state["problem"]
            yield Record(first_line, end, values, problem=problem)  # type: ignore[arg-type]
            state["problem"], first_line = None, end.line + 1  # type: ignore[union-attr]
    except csv.Error as error:
        raise SiameseRuntimeError(f"line {first_line}: unreadable CSV: {error}") from None


def _jsonl_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    for line, end, text, problem in _decoded_lines(stream, start):
        source = None
        if problem is None:
            try:
                source = json.loads(text)
            except json.JSONDecodeError as error:
                problem = f"invalid JSON: {error.msg} at column {error.colno}"
            if problem is None and not isinstance(source, dict):
                source, problem = None, f"expected a JSON object, found {type(source).__name__}"
        yield Record(line, end, [], source, problem)


def _aligned(record: Record, columns: list[str]) -> Record:
    if record.source is None:
        return record
    return dataclasses.replace(record, values=[record.source.get(name) for name in columns])


def _width_checked(record: Record, width: int) -> Record:
    if record.problem is None and len(record.values) != width:
        return dataclasses.replace(record, problem=f"found {len(record.values)} columns, expected {width}")
    return record


def _parquet_table(path: str, start: Position | None, filesystem: FileSystem | None) -> Table:
    if path == "-":
        raise SiameseRuntimeError("Parquet cannot be read from stdin; give a file path")
    parquet_file = pyarrow_parquet().ParquetFile(filesystem.open_input_file(path) if filesystem else path)
    columns = list(parquet_file.schema_arrow.names)
    skip = start.offset if start is not None else 0

    def records() -> Iterator[Record]:
        row = 0
        for batch in parquet_file.iter_batches(batch_size=8192):
            first = min(max(skip - row, 0), batch.num_rows)
            for number, values in enumerate(batch.slice(first).to_pylist(), start=row + first + 1):
                yield Record(number, Position(number, number), [values[name] for name in columns])
            row += batch.num_rows

    return Table(columns, True, records())
