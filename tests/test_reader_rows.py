"""Which bytes end a row: generated TSV, CSV and JSONL files (every line ending, BOMs, quotes, empty and ragged
rows, Unicode line separators) read by open_table and by independent readers (Python's csv module over the whole
text, json over bytes.splitlines, pyarrow's CSV reader) give the same rows, line numbers, byte offsets and bad
rows; every row is a record or a bad row; and reading from any Record.end gives exactly the records after it."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from siamese_runtime import Scorer
from siamese_runtime.errors import InputError
from siamese_runtime.io.formats import foreign_encoding
from siamese_runtime.io.readers import (
    PEEK_ROWS,
    Position,
    Record,
    _decoded,
    _raw_blocks,
    _tsv_record,
    _tsv_records,
    open_table,
)
from siamese_runtime.job import JobOptions, run_job

from .fixtures.questions import question_pairs
from .test_job import Crash, crash_after

BOM = b"\xef\xbb\xbf"
ENDINGS = ["\n", "\r\n", "\r"]
SEPARATORS = {"tsv": "\t", "csv": ","}
# no line ends in these: U+2028, U+2029, U+0085, VT and FF are line breaks to str.splitlines, not to a pair file
ODD = ["", " ", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x00", "\ufeff", "é", "'", "花呗", "借呗额度"]
NOT_OBJECTS = ["", "[1]", "{", " ", "\u2028", "{}", '{"s1": "a"}\r{"s2": "b"}']  # the last: two rows
TRICKY = ['"', 'a"b', '"a"b', "\r", "\n", "\r\n", ",", "\t"]  # quote and line-break trouble, written raw
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

plain_cells = st.one_of(st.sampled_from(ODD), st.text(st.characters(codec="utf-8", exclude_characters="\r\n\t,\""),
                                                       max_size=6))


def records_of(path: Path, fmt: str, header: bool | None, start: Position | None = None) -> tuple[list[str],
                                                                                                 list[Record]]:
    with open_table(str(path), fmt, header, start) as table:
        return table.columns, list(table.records)


def written(tmp: str, name: str, data: bytes) -> Path:
    path = Path(tmp) / name
    path.write_bytes(data)
    return path


def csv_field(cell: str, quote: bool) -> str:
    """A CSV field holding `cell`: quoted (quotes doubled) when asked or when it must be."""
    if quote or any(c in cell for c in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def text_files(draw: st.DrawFn, fmt: str) -> bytes:
    """A TSV or CSV file: rows of any width (some empty), any line endings, maybe a BOM, maybe no last ending."""
    rows = draw(st.lists(st.lists(plain_cells, max_size=4), min_size=1, max_size=10))
    lines = []
    for cells in rows:
        if fmt == "csv" and cells and draw(st.booleans()):  # quoted fields, line breaks and all
            cells = [*cells[:-1], cells[-1] + draw(st.sampled_from(TRICKY + ENDINGS))]
            text = ",".join(csv_field(cell, draw(st.booleans())) for cell in cells)
        else:
            text = SEPARATORS[fmt].join(cells)
            if draw(st.integers(0, 5)) == 0:  # a raw quote, CR or LF where a row's text has none
                text += draw(st.sampled_from(TRICKY))
        lines.append(text + draw(st.sampled_from(ENDINGS)))
    if draw(st.booleans()):
        lines[-1] = lines[-1].rstrip("\r\n")
    return draw(st.sampled_from([b"", BOM])) + "".join(lines).encode("utf-8")


def reference_rows(data: bytes, fmt: str) -> list[tuple[int, int, list[str] | None]]:
    """(first line, byte offset after the row, cells or None when unreadable) by Python's csv module alone."""
    text = data.removeprefix(BOM).decode("utf-8")
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    reader = csv.reader(io.StringIO(text, newline=""), **dialect)
    ends = [len(data) - len(text.encode())]
    for raw in data.removeprefix(BOM).splitlines(keepends=True):  # bytes: LF, CRLF and CR only
        ends.append(ends[-1] + len(raw))
    rows, first = [], 1
    while True:
        try:
            cells: list[str] | None = next(reader)
        except StopIteration:
            break
        except csv.Error:
            cells = None
        rows.append((first, ends[reader.line_num], cells))
        first = reader.line_num + 1
    if fmt == "csv" and rows and ends_in_open_quote(text):  # the rest of the file in one field: no row
        rows[-1] = (*rows[-1][:2], None)
    return rows


def ends_in_open_quote(text: str) -> bool:
    """Whether `text` ends inside a quoted field: a line written after it would join that field."""
    *_, last = csv.reader(io.StringIO(text + "\n\x1f", newline=""))
    return last != ["\x1f"]


def common_width(rows: list[list[str] | None]) -> int:
    """The most common width of the first readable, non-empty rows: a headerless file's column count."""
    widths = Counter(len(cells) for cells in rows[:PEEK_ROWS] if cells)
    return widths.most_common(1)[0][0] if widths else 0


def header_names(cells: list[str]) -> list[str]:
    """A header row's names: its cells, an empty one named by its place."""
    return [cell if cell.strip() else f"column{i + 1}" for i, cell in enumerate(cells)]


def usable_header(rows: list[tuple[int, int, list[str] | None]]) -> bool:
    """A first row that can name the columns (readable, not empty, no name twice, as wide as a row after it),
    or none at all."""
    if not rows:
        return True
    names, later = rows[0][2], [cells for _, _, cells in rows[1:PEEK_ROWS] if cells]
    names = header_names(names) if names else names
    return bool(names) and len(set(names)) == len(names) and (not later or any(len(c) == len(names) for c in later))


@SETTINGS
@given(st.sampled_from(["tsv", "csv"]).flatmap(lambda fmt: st.tuples(st.just(fmt), text_files(fmt))),
       st.sampled_from([False, True]))
def test_text_rows_are_the_rows_pythons_csv_module_reads(file: tuple[str, bytes], header: bool) -> None:
    fmt, data = file
    assume(foreign_encoding(data) is None)  # NUL bytes can make UTF-16 text: test_reader_encodings
    expected = reference_rows(data, fmt)
    with tempfile.TemporaryDirectory() as tmp:
        path = written(tmp, f"in.{fmt}", data)
        if header and not usable_header(expected):
            with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:1: "):
                records_of(path, fmt, header)
            return
        names = header_names(expected[0][2]) if header and expected else None
        body = expected[1:] if names is not None else expected
        width = len(names) if names is not None else common_width([cells for _, _, cells in expected])
        columns, records = records_of(path, fmt, header)
        assert columns == (names if names is not None else [f"column{i + 1}" for i in range(width)])
        assert [(r.line, r.end.offset) for r in records] == [(line, end) for line, end, _ in body]
        assert [r.values for r in records if r.problem is None] == [c for _, _, c in body if c and len(c) == width]
        assert [r.line for r in records if r.problem] == [line for line, _, c in body if not c or len(c) != width]
        for i, record in enumerate(records):
            assert records_of(path, fmt, header, record.end)[1] == records[i + 1:]


@st.composite
def jsonl_files(draw: st.DrawFn) -> bytes:
    """JSON objects (keys in any order, text escaped or not) among lines that are no object, any line endings."""
    objects = draw(st.lists(st.dictionaries(st.sampled_from(["s1", "s2", "id"]), plain_cells, max_size=3), max_size=8))
    texts = [json.dumps(o, ensure_ascii=draw(st.booleans())) for o in objects]
    texts += draw(st.lists(st.sampled_from(NOT_OBJECTS), max_size=2))
    lines = [text + draw(st.sampled_from(ENDINGS)) for text in draw(st.permutations(texts))]
    if lines and draw(st.booleans()):
        lines[-1] = lines[-1].rstrip("\r\n")
    return draw(st.sampled_from([b"", BOM])) + "".join(lines).encode("utf-8")


@SETTINGS
@given(jsonl_files())
def test_jsonl_rows_are_the_lines_of_bytes_splitlines(data: bytes) -> None:
    assume(foreign_encoding(data) is None)
    lines = data.removeprefix(BOM).splitlines(keepends=True)
    ends = [len(data) - len(data.removeprefix(BOM))]
    for raw in lines:
        ends.append(ends[-1] + len(raw))
    objects = [reference_object(raw) for raw in lines]
    with tempfile.TemporaryDirectory() as tmp:
        path = written(tmp, "in.jsonl", data)
        _, records = records_of(path, "jsonl", None)
        assert [(r.line, r.end.offset) for r in records] == [(i + 1, ends[i + 1]) for i in range(len(lines))]
        assert [r.source if r.problem is None else None for r in records] == objects
        for i, record in enumerate(records):
            assert records_of(path, "jsonl", None, record.end)[1] == records[i + 1:]


def reference_object(raw: bytes) -> dict | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@st.composite
def well_formed(draw: st.DrawFn, fmt: str) -> tuple[int, bytes]:
    """Rectangular files without empty rows or stray quotes: what pyarrow's CSV reader reads too."""
    width = draw(st.integers(2, 4))
    row = st.lists(plain_cells.filter(bool), min_size=width, max_size=width)
    rows = draw(st.lists(row, min_size=1, max_size=8))
    lines = []
    for cells in rows:
        if fmt == "csv":
            cells = [cell + draw(st.sampled_from(["", *ENDINGS])) for cell in cells]
            text = ",".join(csv_field(cell, draw(st.booleans())) for cell in cells)
        else:
            text = "\t".join(cells)
        lines.append(text + draw(st.sampled_from(ENDINGS)))
    return width, draw(st.sampled_from([b"", BOM])) + "".join(lines).encode("utf-8")


@SETTINGS
@given(st.sampled_from(["tsv", "csv"]).flatmap(lambda fmt: st.tuples(st.just(fmt), well_formed(fmt))))
def test_well_formed_text_reads_as_pyarrow_reads_it(file: tuple[str, tuple[int, bytes]]) -> None:
    import pyarrow as pa
    from pyarrow import csv as arrow_csv

    fmt, (width, data) = file
    assume(foreign_encoding(data) is None)
    names = [f"column{i + 1}" for i in range(width)]
    table = arrow_csv.read_csv(
        io.BytesIO(data), read_options=arrow_csv.ReadOptions(column_names=names),
        parse_options=arrow_csv.ParseOptions(delimiter=SEPARATORS[fmt], quote_char=fmt == "csv" and '"',
                                             newlines_in_values=True),
        convert_options=arrow_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
    with tempfile.TemporaryDirectory() as tmp:
        columns, records = records_of(written(tmp, f"in.{fmt}", data), fmt, False)
    assert columns == names and all(r.problem is None for r in records)
    assert [r.values for r in records] == [list(row.values()) for row in table.to_pylist()]


def test_every_line_ending_ends_a_row_in_every_text_format(tmp_path: Path) -> None:
    """Bare CR (old spreadsheet exports), CRLF and LF, alone or mixed, a lone CR last: one row each."""
    lines = {"p.tsv": "花呗{}\t借呗\t1", "p.csv": "花呗{},借呗,1", "p.jsonl": '{{"s1": "花呗{}", "s2": "借呗"}}'}
    for name, line in lines.items():
        for endings in (["\r"] * 3, ["\r\n", "\r", "\n"], ["\n", "\n", "\r"]):
            path = tmp_path / name
            path.write_bytes("".join(line.format(i) + end for i, end in enumerate(endings)).encode())
            _, records = records_of(path, path.suffix[1:], False if name != "p.jsonl" else None)
            assert [(r.line, r.problem) for r in records] == [(1, None), (2, None), (3, None)], (name, endings)
            assert [r.end.offset for r in records][-1] == path.stat().st_size


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_a_job_scores_one_row_per_row_of_any_ending_and_resumes_from_any_of_them(tmp_path: Path, fmt: str) -> None:
    """The issue's case: a file of bare-CR (and mixed) line endings gives one output row per row, and a job that
    stops between chunks resumes at the right byte, giving the uninterrupted output."""
    line = {"tsv": "{}\t{}", "csv": "{},{}", "jsonl": '{{"s1": "{}", "s2": "{}"}}'}[fmt]
    endings = ["\r"] * 4 + ["\r\n", "\n"]
    source = tmp_path / f"in.{fmt}"
    source.write_bytes("".join(line.format(a, b) + endings[i % len(endings)]
                               for i, (a, b, _) in enumerate(question_pairs(40))).encode())
    scorer, options = Scorer(providers="cpu"), {"chunk_rows": 6, "header": False if fmt != "jsonl" else None}
    whole, out = tmp_path / f"whole.{fmt}", tmp_path / f"out.{fmt}"
    assert run_job(scorer, JobOptions(str(source), str(whole), **options)).written == 40
    with pytest.raises(Crash):
        run_job(scorer, JobOptions(str(source), str(out), **options), crash_after(2))
    summary = run_job(scorer, JobOptions(str(source), str(out), resume=True, **options))
    assert (summary.resumed_rows, summary.rows) == (12, 40) and out.read_bytes() == whole.read_bytes()


def test_a_quote_that_never_closes_is_a_bad_row_on_the_line_it_opens(tmp_path: Path) -> None:
    path = written(str(tmp_path), "p.csv", "花呗,借呗\r额度,\"还款\r\n花呗,借呗\r额度,还款\r".encode())
    _, records = records_of(path, "csv", False)
    assert [(r.line, r.problem) for r in records] == [
        (1, None), (2, "a quote opened in this row never closes: the rest of the file (lines 2-4) is one field")]


def test_line_breaks_across_read_chunks_keep_rows_and_offsets(tmp_path: Path) -> None:
    """A CRLF split between two reads of the file, a lone CR ending a read, a row longer than two reads."""
    chunk = 1 << 16  # siamese_runtime.io.formats.SAMPLE_BYTES, the size the reader reads in
    head = "".join(f"{a}\t{b}\r" for a, b, _ in question_pairs(600)).encode()[:chunk - 20]
    head = head[:head.rindex(b"\r") + 1]
    data = b"".join([head, b"x\t" + b"y" * (chunk - len(head) - 3), b"\r\n",  # CR ends read 1, its LF starts read 2
                     b"z\t" + b"w" * (chunk - 4) + b"\r",  # a lone CR ends read 2
                     b"v\t" + b"u" * (2 * chunk + 5) + b"\r", b"end\tend\r\n", b"a\tb"])
    assert data[chunk - 1:chunk + 1] == b"\r\n" and data[2 * chunk - 1:2 * chunk + 1] == b"\rv"
    path = written(str(tmp_path), "p.tsv", data)
    lines = data.splitlines(keepends=True)
    ends = [sum(map(len, lines[:i + 1])) for i in range(len(lines))]
    _, records = records_of(path, "tsv", False)
    assert [(r.line, r.end.offset, r.values) for r in records] == [
        (i + 1, ends[i], line.rstrip(b"\r\n").decode().split("\t")) for i, line in enumerate(lines)]
    for i in (-5, -4, -3):  # resumed after the rows ending at those reads' edges
        assert records_of(path, "tsv", False, records[i].end)[1] == records[i + 1:]


LINE_PARTS = st.sampled_from([b"\xe8\x8a\xb1\xe5\x91\x97", b"a", b"\t", b"\r", b"\n", b"\r\n", b"\xff", b"\xe8\x8a",
                              BOM, b" ", b"\x00", "\u2028".encode()])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(LINE_PARTS, max_size=8).map(b"".join), min_size=1, max_size=30), st.integers(1, 3000),
       st.sampled_from([b"", BOM]))
def test_tsv_blocks_read_at_once_give_the_records_line_by_line(tmp_path_factory: pytest.TempPathFactory,
                                                              lines: list[bytes], width: int, mark: bytes) -> None:
    """A file of many 64 KiB reads, maybe with a byte-order mark, its odd lines (invalid UTF-8, empty, a BOM, CR
    and CRLF ends) among plain ones: the reader's records, with every line, offset, value, problem and raw bytes,
    equal those of the same lines read one by one."""
    plain = b"\xe8\x8a\xb1" * width + b"\t" + b"b" * (width % 7) + b"\n"
    data = mark + b"".join(plain * (5000 // width + 1) + line for line in lines)
    path = tmp_path_factory.mktemp("blocks") / "p.tsv"
    path.write_bytes(data)
    with open(path, "rb") as stream:
        expected = [_tsv_record(*decoded) for decoded in _decoded(data.splitlines(keepends=True), 0, 0)]
        assert list(_tsv_records(stream, Position(0, 0))) == expected



class Pieces(io.RawIOBase):
    """A stream whose reads return the given pieces one by one, as a pipe or a file's 64 KiB reads may."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    def read1(self, size: int = -1) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""

    read = read1


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"\t", b"\r", b"\n", b"\r\n", b"\xe8\x8a\xb1"]), max_size=30), st.data())
def test_lines_are_those_of_splitlines_however_the_reads_cut_the_bytes(parts: list[bytes], data: st.DataObject
                                                                       ) -> None:
    """Wherever the reads end (a lone CR at a read's end, the last line without a break after it), the lines are
    bytes.splitlines', each once."""
    whole = b"".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=6)))
    pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)]) if whole[a:b]]
    assert [line for block in _raw_blocks(Pieces(pieces)) for line in block] == whole.splitlines(keepends=True)
