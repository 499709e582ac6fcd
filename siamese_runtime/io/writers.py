"""Scored rows to text: TSV, CSV and JSONL lines (input columns, optional label, score last); Parquet tables."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from .columns import PREDICTED, SCORE, name_key
from .formats import pyarrow_parquet
from .safe_output import AtomicFile, Prefix


class ScoredRow(NamedTuple):
    """An output row: the input's values (and JSON object, for JSONL), label and score; None for a null row.
    (A tuple: a chunk's rows are made with `ScoredRow._make`, in C.)"""

    values: list[Any]
    source: dict | None
    predicted: bool | None
    score: float | None


def added_columns(predict: bool) -> list[str]:
    return [PREDICTED, SCORE] if predict else [SCORE]


def kept_columns(columns: Sequence[str]) -> list[int]:
    """Indices of the input columns an output keeps: all but a rescored file's old score and label (in any case,
    spaces around: names compared as everywhere, io.columns.name_key)."""
    return [i for i, name in enumerate(columns) if name_key(name) not in (PREDICTED, SCORE)]


class TextRows:
    """Formats scored rows as TSV, CSV or JSONL text."""

    def __init__(self, fmt: str, columns: Sequence[str], header: bool, predict: bool) -> None:
        self.fmt, self.columns, self.header, self.predict = fmt, list(columns), header, predict
        self.kept = kept_columns(columns)
        self.names = [*(columns[i] for i in self.kept), *added_columns(predict)]

    def header_text(self) -> str:
        """The header line, or '' where none is written (JSONL, or a headerless input)."""
        return self._lines([self.names]) if self.header and self.fmt != "jsonl" else ""

    def format(self, rows: Sequence[ScoredRow]) -> str:
        if self.fmt == "jsonl":
            return "".join(json_line(self._object(row)) for row in rows)
        if not rows:
            return ""
        return self._lines(list(zip(*self._cell_columns(rows))))

    def _cell_columns(self, rows: Sequence[ScoredRow]) -> list[list[str]]:
        """The rows' cells, column by column (each column's values of one kind are converted at once)."""
        values = [row.values for row in rows]
        columns = [_text_column(list(map(itemgetter(i), values))) for i in self.kept]
        if self.predict:
            columns.append(list(map(LABEL_TEXT.__getitem__, [row.predicted for row in rows])))
        scores = [row.score for row in rows]
        columns.append(list(map(SCORE_TEXT.format, scores)) if None not in scores
                       else ["" if score is None else SCORE_TEXT.format(score) for score in scores])
        return columns

    def _object(self, row: ScoredRow) -> dict[str, Any]:
        source = row.source if row.source is not None else dict(zip(self.columns, row.values))
        record = {key: value for key, value in source.items() if name_key(key) not in (PREDICTED, SCORE)}
        if self.predict:
            record[PREDICTED] = row.predicted
        record[SCORE] = None if row.score is None else float(SCORE_TEXT.format(row.score))
        return record

    def _lines(self, rows: list[Sequence[str]]) -> str:
        if self.fmt == "tsv":
            return tsv_lines(rows)
        return csv_lines(rows)


LABEL_TEXT = {True: "1", False: "0", None: ""}
SCORE_TEXT = "{:.9g}"  # nine significant digits: a float32 score written exactly


def _text_column(values: list[object]) -> list[str]:
    """A column's values as output text ('' for None): a column of str as it is."""
    if set(map(type, values)) == {str}:
        return values  # type: ignore[return-value]
    return [text_cell(value) or "" for value in values]


def json_line(record: dict[str, Any]) -> str:
    """`record` as one line of JSON; NaN and infinities (from Parquet floats), which JSON lacks, as null."""
    try:
        return json.dumps(record, ensure_ascii=False, allow_nan=False, default=_plain) + "\n"
    except ValueError:
        return json.dumps(_finite(record), ensure_ascii=False, default=_plain) + "\n"


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def text_cell(value: object) -> str | None:
    """A value as output text: strings as they are, None as None, dates, times and decimals as their text
    (2026-01-01 12:00:00, as pandas and duckdb write them), bytes in base64, other values (numbers, lists) as
    JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, TEXT_TYPES):
        return _plain(value)
    return json.dumps(value, ensure_ascii=False, default=_plain)


TEXT_TYPES = (bytes, bytearray, memoryview, dt.date, dt.time, dt.timedelta, decimal.Decimal)


def _plain(value: object) -> str:
    """A value JSON has no type for, as text: bytes in base64, anything else as str() writes it."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def csv_lines(rows: Iterable[Sequence[str]]) -> str:
    """Rows as CSV text with LF line ends, a field quoted wherever it holds a comma, a quote, a CR or a LF.

    csv.writer quotes only the characters of its line terminator, so with "\n" it would leave a lone CR
    unquoted, and every reader (ours, Python's, pandas', pyarrow's) would end the row there. Written with
    "\r\n", which quotes both, and each row's "\r\n" then made "\n"."""
    lines = _LfLines()
    csv.writer(lines, lineterminator="\r\n").writerows(rows)
    return "".join(lines)


class _LfLines(list[str]):
    """What csv.writer writes, one row per write, each row's final CRLF as LF."""

    def write(self, line: str) -> None:
        self.append(line[:-2] + "\n")


def tsv_lines(rows: Iterable[Sequence[str]]) -> str:
    """Rows as TSV text, unquoted like the input: a tab or line break inside a value becomes a space."""
    rows = list(rows)
    cells = "".join(map("".join, rows))
    if "\t" in cells or "\r" in cells or "\n" in cells:
        rows = [[_one_line(cell) for cell in row] for row in rows]
    return "".join(map("{}\n".format, map("\t".join, rows)))


def _one_line(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


class TextSink:
    """Scored rows as TSV, CSV or JSONL text in an AtomicFile (live: see there); resumable from a synced prefix."""

    def __init__(self, target: str, rows: TextRows, resume_at: Prefix | None = None, live: bool = False) -> None:
        self.rows = rows
        self.file = AtomicFile(target, resume_at, live)
        if resume_at is None:
            self.file.write(rows.header_text())

    def write(self, rows: Sequence[ScoredRow]) -> None:
        self.file.write(self.rows.format(rows))

    def sync(self) -> Prefix:
        return self.file.sync()

    def commit(self) -> None:
        self.file.commit()

    def withdraw(self) -> None:
        self.file.withdraw()

    def discard(self) -> None:
        self.file.discard()

    def close(self) -> None:
        self.file.close()


class ParquetSink:
    """Scored rows to a Parquet file, one row group per write: input columns (of their input types where the
    input has them, as from Parquet; else text), label, score.

    A Parquet file is only readable once closed, so it appears whole at the end but cannot resume.
    """

    def __init__(self, target: str, columns: Sequence[str], predict: bool, types: Sequence[Any] | None = None
                 ) -> None:
        parquet = pyarrow_parquet()
        import pyarrow

        self._pyarrow = pyarrow
        self.columns, self.predict = list(columns), predict
        self.kept = kept_columns(columns)
        self._cell = text_cell if types is None else _as_is
        fields = [pyarrow.field(columns[i], pyarrow.string() if types is None else types[i]) for i in self.kept]
        fields += [pyarrow.field(PREDICTED, pyarrow.bool_())] if predict else []
        self.schema = pyarrow.schema([*fields, pyarrow.field(SCORE, pyarrow.float32())])
        self.file = AtomicFile(target)
        self._writer = parquet.ParquetWriter(self.file.stream, self.schema)

    def write(self, rows: Sequence[ScoredRow]) -> None:
        data = {self.columns[i]: self._column([self._cell(row.values[i]) for row in rows], self.schema.field(n).type)
                for n, i in enumerate(self.kept)}
        if self.predict:
            data[PREDICTED] = [row.predicted for row in rows]
        data[SCORE] = [row.score for row in rows]
        self._writer.write_table(self._pyarrow.table(data, schema=self.schema))

    def _column(self, values: list[object], kind: Any) -> Any:
        """The values as an Arrow column of `kind`; a value that is not of it (a bad row's, kept as stored, such as
        text that is not UTF-8: its reject line has it) null."""
        pyarrow = self._pyarrow
        try:
            return pyarrow.array(values, kind)
        except (pyarrow.ArrowException, TypeError, ValueError, OverflowError):
            return pyarrow.array([value if _fits(pyarrow, value, kind) else None for value in values], kind)

    def sync(self) -> Prefix:
        return Prefix(0, "")  # never resumed: see the class

    def commit(self) -> None:
        self._writer.close()
        self.file.commit()

    def withdraw(self) -> None:
        self.file.withdraw()

    def discard(self) -> None:
        self._writer.close()
        self.file.discard()

    def close(self) -> None:
        self.discard()  # an unfinished Parquet file cannot be resumed


def _fits(pyarrow: Any, value: object, kind: Any) -> bool:
    try:
        pyarrow.scalar(value, kind)
    except (pyarrow.ArrowException, TypeError, ValueError, OverflowError):
        return False
    return True


def _as_is(value: object) -> object:
    return value


def open_sink(
    target: str, fmt: str, columns: Sequence[str], header: bool, predict: bool, resume_at: Prefix | None = None,
    types: Sequence[Any] | None = None, live: bool = False,
) -> TextSink | ParquetSink:
    """Where a job writes its scored rows: `target` in format `fmt`, written atomically (unless `live`, for a
    text stream: AtomicFile); `types`: the input columns' pyarrow types, which a Parquet output keeps."""
    if fmt == "parquet":
        return ParquetSink(target, columns, predict, types)
    return TextSink(target, TextRows(fmt, columns, header, predict), resume_at, live)
