"""Reading pair files as records with line numbers and resume positions; header detection for TSV/CSV.

In TSV, CSV and JSONL a row ends at LF, CRLF or a lone CR, as Python's csv module, pyarrow and universal-newline
text read them (a CSV field in quotes may hold any of them); U+2028, U+0085 and the like are text.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shlex
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate, chain, islice, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..errors import InputError
from .columns import is_known_name, known_pair
from .formats import SAMPLE_BYTES, foreign_encoding, not_text, pyarrow_parquet

if TYPE_CHECKING:
    from pyarrow.fs import FileSystem

PEEK_ROWS = 20
UTF8_BOM = b"\xef\xbb\xbf"
EMPTY_LINE = "empty line"
# Python's csv module stops at a field of 131,072 characters and then reads on from inside it, making rows of
# its text; TSV and JSONL cells have no such limit, and the CSV writer writes any cell, so the CSV reader takes
# any field that fits in memory (the largest limit the C reader accepts everywhere).
MAX_CSV_FIELD = 2**31 - 1
MAX_NESTING = 100  # levels a JSON value may nest: Parquet's own schema limit, far below Python's recursion limit
TOO_DEEP = f"invalid JSON: a value nested more than {MAX_NESTING} levels deep"


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading resumes: a byte offset (a row count for Parquet) and the last line read."""

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class Record:
    """One input row: its first line, the position after it, its values in column order.

    `source` is the row's JSON object (JSONL only); `problem` says why the row cannot be parsed; `raw` is the row's
    bytes as the file has them, kept where `values` do not show them whole (invalid UTF-8, unreadable CSV, and
    every JSONL line: its keys outside the columns, its numbers as written), for its reject line.
    """

    line: int
    end: Position
    values: list[Any]  # text from TSV and CSV; any JSON value from JSONL and Parquet
    source: dict | None = None
    problem: str | None = None
    raw: bytes | None = None


@dataclass(frozen=True)
class Table:
    """An opened input: column names (header names, or column1, column2, ...) and its records."""

    columns: list[str]
    header: bool
    records: Iterator[Record]
    header_doubt: str | None = None  # why a detected header (or its absence) may be wrong, for a warning
    types: list[Any] | None = None  # the columns' pyarrow types, where the file has them (Parquet)


@contextmanager
def open_table(
    path: str, fmt: str, header: bool | None = None, start: Position | None = None,
    filesystem: FileSystem | None = None, strict_keys: bool = False,
) -> Iterator[Table]:
    """Open `path` ('-': stdin) as a Table; `header` None detects it; `start` resumes after a position.

    A UTF-8 byte-order mark is dropped; a text file whose start is in another encoding is refused with
    InputError naming it. TSV/CSV rows are expected to be as wide as the header, or else as the most common
    width of the first readable rows; a header naming a column twice, or as wide as none of those rows, is
    refused, and an unreadable first row is a bad row, never a header. JSONL columns are the keys of the first
    objects; with `strict_keys`, an object with another key is a bad row (an output with fixed columns would
    drop it). With a pyarrow `filesystem`, `path` is read from it (S3, GCS, ...).
    """
    if fmt == "parquet":
        yield _parquet_table(path, start, filesystem)
        return
    parse = {"tsv": _tsv_records, "csv": _csv_records, "jsonl": _jsonl_records}[fmt]
    with _open_binary(path, filesystem) as stream:
        _check_encoding(stream, path)
        records = parse(stream, Position(0, 0))
        head = list(islice(records, PEEK_ROWS))
        if fmt == "jsonl":
            columns, has_header, doubt = _json_keys(head), True, None
        else:
            has_header = _has_header(head, header, display_name(path))
            columns = _header_names(head, display_name(path)) if has_header else _generated_names(head)
            doubt = _header_doubt(head, has_header, columns) if header is None else None
        if start is not None:
            stream.seek(start.offset)
            records = parse(stream, start)
        else:
            records = chain(head[1:] if has_header and fmt != "jsonl" else head, records)
        if fmt == "jsonl":
            records = (_aligned(r, columns, strict_keys) for r in records)
        else:
            records = (_width_checked(r, len(columns)) for r in records)
        yield Table(columns, has_header, records, doubt)


def _check_encoding(stream: BinaryIO, path: str) -> None:
    """Refuse a file that is no text (compressed, an archive, Parquet) and a text file whose start is not UTF-8,
    naming what it seems to be and the fix."""
    sample = stream.peek(SAMPLE_BYTES)[:SAMPLE_BYTES] if hasattr(stream, "peek") else b""
    if (what := not_text(sample)) is not None:
        named = shlex.quote(path) if path != "-" else "FILE"
        raise InputError(f"{display_name(path)}: the file is not text but {what.replace('FILE', named)}")
    encoding = foreign_encoding(sample)
    if encoding is None:
        return
    source = shlex.quote(path) if path != "-" else "IN"
    target = shlex.quote(_utf8_name(path)) if path != "-" else "OUT"
    raise InputError(f"{display_name(path)}: the file is not UTF-8 but likely {encoding.name}: {encoding.evidence}. "
                     f"Convert it to UTF-8: iconv -f {encoding.iconv} -t UTF-8 {source} > {target}")


def _utf8_name(path: str) -> str:
    """Where a converted copy of `path` could go: pairs.tsv -> pairs.utf8.tsv."""
    name = Path(path)
    return str(name.with_name(f"{name.stem}.utf8{name.suffix}"))


def _has_header(head: list[Record], header: bool | None, name: str) -> bool:
    """--header or --no-header, else detected; a first row that could not be read is never a header."""
    first = head[0] if head else None
    if first is not None and first.problem is not None:
        if header:
            raise InputError(f"{name}:{first.line}: the header row cannot be read: {first.problem}")
        return False
    if header is not None:
        return header
    return looks_like_header([r.values for r in head if r.problem is None])


def _header_doubt(head: list[Record], has_header: bool, columns: list[str]) -> str | None:
    """A detected header found by its shape, not by known names, may be data; a first row read as data that
    holds a known column name may be a header: either is said."""
    if has_header:
        return None if known_header(columns) else (
            f"the first row was taken as a header ({', '.join(columns)}); if it is data, rerun with --no-header")
    first = [str(cell) for cell in head[0].values] if head and head[0].problem is None else []
    names = [cell for cell in first if is_known_name(cell)]
    return f"the first row holds column names ({', '.join(names)}) but was read as data; if it is a header, " \
           "rerun with --header" if names else None


def _header_names(head: list[Record], name: str) -> list[str]:
    """The first row's cells as column names (an empty one named by its place, column3, as a headerless file's);
    refused when a name repeats or the row is as wide as no other."""
    if not head:
        return []
    names = [str(v) if str(v).strip() else f"column{i + 1}" for i, v in enumerate(head[0].values)]
    later = [r.values for r in head[1:] if r.problem is None]
    repeated = _repeated(names)
    if repeated is not None:
        raise InputError(f"{name}:{head[0].line}: the header names column {repeated!r} twice; rename one, or use "
                         "--no-header if the first row is data")
    if later and all(len(row) != len(names) for row in later):
        raise InputError(f"{name}:{head[0].line}: the header has {len(names)} columns ({', '.join(names)}) but the "
                         f"rows after it have {_common_width(later)}; fix the header, or use --no-header")
    return names


def _repeated(names: list[str]) -> str | None:
    """The first name that appears twice, if any."""
    return next((name for i, name in enumerate(names) if name in names[:i]), None)


def _generated_names(head: list[Record]) -> list[str]:
    """column1, column2, ... as many as the first readable rows are wide."""
    return [f"column{i + 1}" for i in range(_common_width([r.values for r in head if r.problem is None]))]


def _common_width(rows: list[list[object]]) -> int:
    """The most common row width (the first such among ties): one malformed row cannot set it."""
    return Counter(len(row) for row in rows).most_common(1)[0][0] if rows else 0


def _json_keys(head: list[Record]) -> list[str]:
    """The keys of the first JSON objects, in the order they first appear."""
    keys: dict[str, None] = {}
    for record in head:
        keys.update(dict.fromkeys(record.source or ()))
    return list(keys)


def known_header(cells: list[str]) -> bool:
    """A header beyond doubt: a known pair of sentence names (sentence1 and sentence2, ...) beside any other
    cells, or only known names (label, score, ...) but for empty cells after them."""
    named = _named(cells)
    return known_pair(named) is not None or bool(named) and all(is_known_name(cell) for cell in named)


def display_name(path: str) -> str:
    """How messages name an input: its path, or <stdin>."""
    return "<stdin>" if path == "-" else path


def looks_like_header(rows: list[list[object]]) -> bool:
    """True when the first row names columns: a known pair of sentence names beside any other cells, or else
    known column names, or names of which one is numeric in the following rows (a label) but not in the first;
    in the last two, empty cells may follow the names (a trailing delimiter, which the rows have too), but none
    may come between them. (A name twice is then refused.)"""
    if not rows:
        return False
    first, rest = [str(v).strip() for v in rows[0]], [r for r in rows[1:] if len(r) == len(rows[0])]
    named = _named(first)
    if known_pair(named) is not None:
        return True
    if not named or not all(named):
        return False
    return known_header(named) or bool(rest) and any(
        not _is_number(cell) and all(_is_number(str(row[i])) for row in rest) for i, cell in enumerate(named)
    )


def _named(cells: list[str]) -> list[str]:
    """The cells up to the last that is not empty."""
    return cells[: max((i + 1 for i, cell in enumerate(cells) if cell.strip()), default=0)]


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
        with io.BufferedReader(filesystem.open_input_stream(path), buffer_size=SAMPLE_BYTES) as stream:
            yield stream
        return
    with open(path, "rb", buffering=SAMPLE_BYTES) as stream:
        yield stream


def _raw_blocks(stream: BinaryIO) -> Iterator[list[bytes]]:
    """The stream's lines, each with its line break (LF, CRLF or a lone CR; the last may have none), in blocks of
    those read together. A pipe's lines come as they arrive (read1 returns what is there), not once 64 KiB have."""
    pending: list[bytes] = []
    read = getattr(stream, "read1", stream.read)
    while chunk := read(SAMPLE_BYTES):
        held_cr = bool(pending) and pending[-1].endswith(b"\r")  # ended by this chunk unless it starts with LF
        if b"\n" not in chunk and b"\r" not in chunk and not held_cr:
            pending.append(chunk)
            continue
        lines = b"".join([*pending, chunk]).splitlines(keepends=True)
        pending = [] if lines[-1].endswith(b"\n") else [lines.pop()]  # unfinished, or a CR an LF may follow
        if lines:
            yield lines
    if pending:
        yield b"".join(pending).splitlines(keepends=True)  # a held CR ends its line here too


def _decoded_lines(stream: BinaryIO, start: Position) -> Iterator[tuple[int, Position, str, str | None, bytes]]:
    return _decoded(chain.from_iterable(_raw_blocks(stream)), start.offset, start.line)


def _decoded(raw_lines: Iterable[bytes], offset: int, line: int) -> Iterator[tuple[int, Position, str, str | None,
                                                                                    bytes]]:
    """(line number, position after it, text with its line break, invalid-UTF-8 problem or None, its bytes) of
    each line, the first starting at byte `offset` after line `line`."""
    for raw in raw_lines:
        text_bytes = raw[len(UTF8_BOM):] if offset == 0 and raw.startswith(UTF8_BOM) else raw
        offset, line = offset + len(raw), line + 1
        if not text_bytes:  # a file that is a byte-order mark and nothing else
            return
        try:
            text, problem = text_bytes.decode("utf-8"), None
        except UnicodeDecodeError as error:
            text, problem = text_bytes.decode("utf-8", errors="replace"), f"invalid UTF-8 at byte {error.start}"
        yield line, Position(offset, line), text, problem, text_bytes


def _content(text: str) -> str:
    """A line without its line break (it has one at most, at its end)."""
    return text.rstrip("\r\n")


def _tsv_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    offset, line = start.offset, start.line
    for block in _raw_blocks(stream):
        records = _plain_tsv_block(block, offset, line)
        if records is None:
            records = [_tsv_record(*decoded) for decoded in _decoded(block, offset, line)]
        yield from records
        offset, line = offset + sum(map(len, block)), line + len(block)


def _tsv_record(line: int, end: Position, text: str, problem: str | None, raw: bytes) -> Record:
    content = _content(text)
    return Record(line, end, content.split("\t") if content else [], problem=problem or _empty(content),
                  raw=raw if problem else None)


def _plain_tsv_block(block: list[bytes], offset: int, line: int) -> list[Record] | None:
    """The records of a block of lines all at once, as `_tsv_record` makes them, where every line is UTF-8 and
    none is empty (and no byte-order mark can start it); else None."""
    if offset == 0 and block[0].startswith(UTF8_BOM):
        return None
    try:
        contents = list(map(str.rstrip, map(bytes.decode, block), repeat("\r\n")))
    except UnicodeDecodeError:
        return None
    if not all(contents):
        return None
    numbers = range(line + 1, line + 1 + len(block))
    ends = list(map(Position, accumulate(map(len, block), initial=offset), range(line, line + 1 + len(block))))
    return list(map(Record, numbers, ends[1:], map(str.split, contents, repeat("\t"))))


def _empty(content: object) -> str | None:
    return None if content else EMPTY_LINE


def _csv_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    taken: list[tuple[Position, str | None, bytes]] = []  # the lines the CSV reader took for the record it reads
    ended = []  # holds True once the reader has taken the last line

    def lines() -> Iterator[str]:
        for _, end, text, problem, raw in _decoded_lines(stream, start):
            taken.append((end, problem, raw))
            yield text  # with its line break: a quoted field keeps CR, LF or CRLF as the file has it
        ended.append(True)

    if csv.field_size_limit() < MAX_CSV_FIELD:
        csv.field_size_limit(MAX_CSV_FIELD)  # process-wide, but only ever raised
    reader = csv.reader(lines())
    first_line = start.line + 1
    while True:
        try:
            values, problem = next(reader), None
        except StopIteration:
            return
        except csv.Error as error:  # the reader goes on with the next line: the row is a bad row
            values, problem = [], f"unreadable CSV: {_csv_reason(error)}"
        end = taken[-1][0]
        if ended:  # only a quoted field still open needs the end of the file to end its record
            problem = f"a quote opened in this row never closes: the rest of the file (lines {first_line}-" \
                      f"{end.line}) is one field"
        problem = problem or next((p for _, p, _ in taken if p), None) or _empty(values)
        raw = b"".join(r for _, _, r in taken) if problem and problem != EMPTY_LINE else None
        taken.clear()
        yield Record(first_line, end, values, problem=problem, raw=raw)
        first_line = end.line + 1


def _csv_reason(error: csv.Error) -> str:
    """Python's CSV error in the terms of the file (its own messages speak of how Python opened it)."""
    message = str(error)
    if message.startswith("field larger than field limit"):
        return f"a field longer than {csv.field_size_limit()} characters"
    return message


def _jsonl_records(stream: BinaryIO, start: Position) -> Iterator[Record]:
    for line, end, text, problem, raw in _decoded_lines(stream, start):
        content, source = _content(text), None
        if problem is None:
            source, problem = _json_object(content) if content else (None, EMPTY_LINE)
        yield Record(line, end, [], source, problem, raw)


def _json_object(text: str) -> tuple[dict | None, str | None]:
    """A line's JSON object, or None and why not; text that is not valid Unicode is replaced, with a problem."""
    try:
        source = json.loads(text, parse_constant=_no_constant, parse_int=_json_int, parse_float=_json_float,
                            object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg.removesuffix(' at')} at column {error.colno}"  # one "at" only
    except ValueError as error:
        return None, f"invalid JSON: {error}"
    except RecursionError:
        return None, TOO_DEEP
    if not isinstance(source, dict):
        return None, f"expected a JSON object, found {type(source).__name__}"
    if text.count("[") + text.count("{") > MAX_NESTING and _nested_deeper(source, MAX_NESTING):
        return None, TOO_DEEP
    if "\\u" in text:  # only an escape can make a lone surrogate, which no UTF-8 output could hold
        try:
            json.dumps(source, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            problem = f"not valid Unicode: a lone surrogate {error.object[error.start]!r}"
            return cast(dict, _without_surrogates(source)), problem
    return source, None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _json_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past Python's limit on digits converted (sys.get_int_max_str_digits)
        raise ValueError(f"a number of {len(text.lstrip('-'))} digits is too long") from None


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text if len(text) <= 24 else text[:21] + '...'} is too large")
    return value


def _nested_deeper(value: object, limit: int) -> bool:
    """Whether lists and objects nest in `value` more than `limit` levels deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) < len(pairs):
        repeated = next(key for i, (key, _) in enumerate(pairs) if key in dict(pairs[:i]))
        raise ValueError(f"key {repeated!r} appears twice in an object")
    return found


def _without_surrogates(value: object) -> object:
    """`value` with every lone surrogate replaced by U+FFFD, as invalid UTF-8 bytes are."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def _aligned(record: Record, columns: list[str], strict_keys: bool) -> Record:
    if record.source is None:
        return record
    values = [record.source.get(name) for name in columns]
    extra = [key for key in record.source if key not in columns] if strict_keys else []
    problem = f"key {extra[0]!r} is not among the columns of the first rows ({', '.join(columns)})" if extra else None
    problem = record.problem or problem
    return dataclasses.replace(record, values=values, problem=problem)  # raw kept: values never show a line whole


def _width_checked(record: Record, width: int) -> Record:
    if record.problem is None and len(record.values) != width:
        return dataclasses.replace(record, problem=f"found {len(record.values)} columns, expected {width}")
    return record


def _parquet_table(path: str, start: Position | None, filesystem: FileSystem | None) -> Table:
    if path == "-" or (filesystem is None and os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode)):
        raise InputError(f"{display_name(path)}: Parquet is read by seeking to its end, which "
                         f"{'stdin' if path == '-' else 'a pipe or device'} cannot do; give a file path")
    parquet = pyarrow_parquet()  # first: without pyarrow, the error naming the extra
    import pyarrow

    try:
        parquet_file = parquet.ParquetFile(filesystem.open_input_file(path) if filesystem else path)
    except pyarrow.ArrowException as error:
        raise InputError(f"{path}: not a readable Parquet file: {error}") from None
    columns = list(parquet_file.schema_arrow.names)
    repeated = _repeated(columns)
    if repeated is not None:
        raise InputError(f"{path}: the file has two columns named {repeated!r}; rename one")
    skip = start.offset if start is not None else 0

    def records() -> Iterator[Record]:
        row = 0
        batches = parquet_file.iter_batches(batch_size=8192)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except pyarrow.ArrowException as error:
                raise InputError(f"{path}: unreadable Parquet after row {row}: {error}") from None
            first = min(max(skip - row, 0), batch.num_rows)
            for number, (values, problem) in enumerate(_parquet_rows(batch.slice(first)), start=row + first + 1):
                yield Record(number, Position(number, number), values, problem=problem)
            row += batch.num_rows

    return Table(columns, True, records(), types=list(parquet_file.schema_arrow.types))


def _parquet_rows(batch: Any) -> list[tuple[list[Any], str | None]]:
    """A batch's rows as Python values; where a value cannot be converted, that row with None there and why."""
    try:
        return [(list(row.values()), None) for row in batch.to_pylist()]
    except Exception:  # one hostile value can raise anything: bad UTF-8, a date past year 9999...
        return [_parquet_row(batch, index) for index in range(batch.num_rows)]


def _parquet_row(batch: Any, index: int) -> tuple[list[Any], str | None]:
    """One row's values; a value Python cannot hold is given as stored (see `_stored`), and the row is bad."""
    values: list[Any] = []
    problem = None
    for name, column in zip(batch.schema.names, batch.columns):
        try:
            values.append(column[index].as_py())
        except Exception as error:  # as in _parquet_rows
            try:
                values.append(_stored(column.slice(index, 1)))
                note = STORED_NOTE
            except Exception:  # a type with no storage pyarrow casts to (an extension type): shown as null
                values.append(None)
                note = ""
            problem = problem or f"column {name!r}: {_value_reason(error)}{note}"
    return values, problem


STORED_NOTE = " (the values show it as stored: text as bytes, dates and times as integers)"


def _stored(cell: Any) -> Any:
    """A one-value Arrow array as its storage holds it: text as its bytes (a reject line writes them in base64),
    dates, times and durations as their integers, inside lists, structs and maps too; nothing is lost."""
    return cell.cast(_storage_type(cell.type)).to_pylist()[0]


def _storage_type(kind: Any) -> Any:
    import pyarrow as pa

    types = pa.types
    if types.is_dictionary(kind):
        return _storage_type(kind.value_type)
    if types.is_string(kind) or types.is_large_string(kind) or types.is_string_view(kind):
        return {pa.string(): pa.binary(), pa.large_string(): pa.large_binary()}.get(kind, pa.binary_view())
    if types.is_temporal(kind):
        return pa.int32() if kind.bit_width == 32 else pa.int64()
    if types.is_map(kind):
        return pa.map_(_storage_type(kind.key_type), _storage_type(kind.item_type))
    if types.is_struct(kind):
        return pa.struct([field.with_type(_storage_type(field.type)) for field in kind])
    if types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind):
        value = kind.value_field.with_type(_storage_type(kind.value_type))
        if types.is_fixed_size_list(kind):
            return pa.list_(value, kind.list_size)
        return pa.large_list(value) if types.is_large_list(kind) else pa.list_(value)
    return kind


def _value_reason(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"invalid UTF-8 at byte {error.start}"
    return f"unreadable value ({error})"
