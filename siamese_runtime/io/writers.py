"""Scored rows to text: TSV, CSV and JSONL lines (input columns, optional label, score last); Parquet tables."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
import os
from typing import Any

from ..errors import SiameseRuntimeError
from .formats import pyarrow_parquet
from .sinks import AtomicFile, partial_path

SCORE = "score"
PREDICTED = "predicted"


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """An output row: the input's values (and JSON object, for JSONL), label and score; None for a null row."""

    values: list[object]
    source: dict | None
    predicted: bool | None
    score: float | None


def added_columns(predict: bool) -> list[str]:
    return [PREDICTED, SCORE] if predict else [SCORE]


def kept_columns(columns: Sequence[str], predict: bool) -> list[int]:
    """Indices of the input columns an output keeps: all but those the scores replace (a rescored file)."""
    added = added_columns(predict)
    return [i for i, name in enumerate(columns) if name not in added]


class TextRows:
    """Formats scored rows as TSV, CSV or JSONL text."""

    def __init__(self, fmt: str, columns: Sequence[str], header: bool, predict: bool) -> None:
        self.fmt, self.columns, self.header, self.predict = fmt, list(columns), header, predict
        self.kept = kept_columns(columns, predict)
        self.names = [*(columns[i] for i in self.kept), *added_columns(predict)]

    def header_text(self) -> str:
        """The header line, or '' where none is written (JSONL, or a headerless input)."""
        return self._lines([self.names]) if self.header and self.fmt != "jsonl" else ""

    def format(self, rows: Sequence[ScoredRow]) -> str:
        if self.fmt == "jsonl":
            return "".join(json.dumps(self._object(row), ensure_ascii=False) + "\n" for row in rows)
        return self._lines([self._cells(row) for row in rows])

    def _cells(self, row: ScoredRow) -> list[str]:
        cells = [text_cell(row.values[i]) for i in self.kept]
        if self.predict:
            cells.append("" if row.predicted is None else str(int(row.predicted)))
        cells.append("" if row.score is None else f"{row.score:.9g}")
        return cells

    def _object(self, row: ScoredRow) -> dict[str, Any]:
        record = dict(row.source) if row.source is not None else dict(zip(self.columns, row.values))
        for name in added_columns(self.predict):
            record.pop(name, None)
        if self.predict:
            record[PREDICTED] = row.predicted
        record[SCORE] = None if row.score is None else float(f"{row.score:.9g}")
        return record

    def _lines(self, rows: list[list[str]]) -> str:
        if self.fmt == "tsv":  # unquoted, like the input: a tab or line break inside a value becomes a space
            return "".join("\t".join(_one_line(c) for c in cells) + "\n" for cells in rows)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()


def text_cell(value: object) -> str:
    """A value as output text: strings as they are, other JSON values (numbers, lists, ...) as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


class TextSink:
    """Scored rows as TSV, CSV or JSONL text in an AtomicFile; resumable from a synced byte count."""

    def __init__(self, target: str, rows: TextRows, resume_at: int | None = None) -> None:
        self.rows = rows
        self.file = AtomicFile(target, resume_at)
        if resume_at is None:
            self.file.write(rows.header_text())

    def write(self, rows: Sequence[ScoredRow]) -> None:
        self.file.write(self.rows.format(rows))

    def sync(self) -> int:
        return self.file.sync()

    def commit(self) -> None:
        self.file.commit()

    def discard(self) -> None:
        self.file.discard()


class ParquetSink:
    """Scored rows to a Parquet file, one row group per write: input columns as text, label, score.

    A Parquet file is only readable once closed, so it is renamed into place whole but cannot resume.
    """

    def __init__(self, target: str, columns: Sequence[str], predict: bool) -> None:
        if target == "-":
            raise SiameseRuntimeError("Parquet cannot be written to stdout; give a file path")
        parquet = pyarrow_parquet()
        import pyarrow

        self._pyarrow = pyarrow
        self.target, self.partial = target, partial_path(target)
        self.columns, self.predict = list(columns), predict
        self.kept = kept_columns(columns, predict)
        fields = [pyarrow.field(columns[i], pyarrow.string()) for i in self.kept]
        fields += [pyarrow.field(PREDICTED, pyarrow.bool_())] if predict else []
        self.schema = pyarrow.schema([*fields, pyarrow.field(SCORE, pyarrow.float32())])
        self._writer = parquet.ParquetWriter(self.partial, self.schema)

    def write(self, rows: Sequence[ScoredRow]) -> None:
        data: dict[str, list[object]] = {
            self.columns[i]: [None if row.values[i] is None else text_cell(row.values[i]) for row in rows]
            for i in self.kept
        }
        if self.predict:
            data[PREDICTED] = [row.predicted for row in rows]
        data[SCORE] = [row.score for row in rows]
        self._writer.write_table(self._pyarrow.table(data, schema=self.schema))

    def sync(self) -> int:
        return 0

    def commit(self) -> None:
        self._writer.close()
        os.replace(self.partial, self.target)

    def discard(self) -> None:
        self._writer.close()
        self.partial.unlink(missing_ok=True)


def open_sink(
    target: str, fmt: str, columns: Sequence[str], header: bool, predict: bool, resume_at: int | None = None
) -> TextSink | ParquetSink:
    """Where a job writes its scored rows: `target` in format `fmt`, written atomically."""
    if fmt == "parquet":
        return ParquetSink(target, columns, predict)
    return TextSink(target, TextRows(fmt, columns, header, predict), resume_at)
