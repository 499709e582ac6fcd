"""Reading and writing pair files: formats, header detection, column selection, row problems, atomic output."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siamese_runtime import SiameseRuntimeError
from siamese_runtime.errors import InputError, OutputLockedError, ResumeError
from siamese_runtime.io.columns import select_columns
from siamese_runtime.io.formats import format_of, pyarrow_parquet
from siamese_runtime.io.readers import Position, looks_like_header, open_table
from siamese_runtime.io.safe_output import BOOKKEEPING, AtomicFile, Prefix, locked, partial_path, sidecar_path
from siamese_runtime.io.writers import ScoredRow, TextRows


def read(path: Path, fmt: str, header: bool | None = None, start: Position | None = None) -> tuple[list, list]:
    with open_table(str(path), fmt, header, start) as table:
        return table.columns, [(r.line, r.values, r.problem) for r in table.records]


def test_tsv_rows_keep_line_numbers_and_crlf_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes("花呗\t借呗\t1\r\n额度\t还款\t0\r\n".encode())
    columns, rows = read(path, "tsv")
    assert columns == ["column1", "column2", "column3"]
    assert rows == [(1, ["花呗", "借呗", "1"], None), (2, ["额度", "还款", "0"], None)]


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ("花呗\t借呗\t1\n只有一列\n".encode(), 2, "found 1 columns, expected 3"),
        ("花呗\t借呗\n花呗\t借呗\t1\n".encode(), 2, "found 3 columns, expected 2"),
        (b"ok\tok\nok\tok\n\xff\xfe\tok\n", 3, "invalid UTF-8 at byte 0"),
    ],
)
def test_tsv_row_problems_name_their_line(tmp_path: Path, content: bytes, line: int, problem: str) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    _, rows = read(path, "tsv", header=False)
    assert [(n, p) for n, _, p in rows if p] == [(line, problem)]


def test_csv_with_header_quotes_and_a_multiline_record(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text('id,text_a,text_b\n7,"花呗, 借呗","两\n行"\n8,额度,还款\n', encoding="utf-8")
    columns, rows = read(path, "csv")
    assert columns == ["id", "text_a", "text_b"]
    assert rows == [(2, ["7", "花呗, 借呗", "两\n行"], None), (4, ["8", "额度", "还款"], None)]


def test_jsonl_aligns_keys_and_flags_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"s1": "花呗", "s2": "借呗"}\n{"s2": "还款", "s1": "额度", "x": 1}\n[1]\n{oops\n', encoding="utf-8"
    )
    columns, rows = read(path, "jsonl")
    assert columns == ["s1", "s2", "x"]  # every key of the first objects, not only the first one's
    assert rows[:2] == [(1, ["花呗", "借呗", None], None), (2, ["额度", "还款", 1], None)]
    assert rows[2][2] == "expected a JSON object, found list" and rows[3][2].startswith("invalid JSON")


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_value(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    tsv, csv_file, jsonl = tmp_path / "p.tsv", tmp_path / "p.csv", tmp_path / "p.jsonl"
    tsv.write_bytes(bom + "花呗\t借呗\t1\n".encode())
    csv_file.write_bytes(bom + "sentence1,sentence2\n花呗,借呗\n".encode())
    jsonl.write_bytes(bom + '{"s1": "花呗", "s2": "借呗"}\n'.encode())
    assert read(tsv, "tsv") == (["column1", "column2", "column3"], [(1, ["花呗", "借呗", "1"], None)])
    assert read(csv_file, "csv") == (["sentence1", "sentence2"], [(2, ["花呗", "借呗"], None)])
    assert read(jsonl, "jsonl") == (["s1", "s2"], [(1, ["花呗", "借呗"], None)])
    resumed = read(tsv, "tsv", header=False, start=Position(0, 0))[1]
    assert resumed == [(1, ["花呗", "借呗", "1"], None)]


def test_utf16_files_are_refused_with_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_bytes("花呗\t借呗\n".encode("utf-16"))
    with pytest.raises(InputError, match=rf"^{path}: the file is not UTF-8 but likely UTF-16: .* byte-order mark\. "
                                         rf"Convert it to UTF-8: iconv -f UTF-16 -t UTF-8 {path} > "):
        read(path, "tsv")


@pytest.mark.parametrize("first", ["只有一列", "a\tb\tc\td\te"])
def test_a_malformed_first_row_does_not_set_the_expected_width(tmp_path: Path, first: str) -> None:
    path = tmp_path / "p.tsv"
    path.write_text(first + "\n" + "".join(f"花呗{i}\t借呗\t1\n" for i in range(5)), encoding="utf-8")
    columns, rows = read(path, "tsv")
    assert len(columns) == 3
    assert [(n, p) for n, _, p in rows if p] == [(1, f"found {len(first.split(chr(9)))} columns, expected 3")]


def test_csv_fields_of_any_length_are_read_and_a_bad_row_does_not_stop_reading(tmp_path: Path) -> None:
    """Python's csv module stops at 131,072 characters and would read on from inside the field."""
    path = tmp_path / "p.csv"
    path.write_text(f'a,b\n"{"x" * 200_000}\nc,d",y\ne\rf,g\nh,i\n', encoding="utf-8", newline="")
    _, rows = read(path, "csv", header=False)
    good = [(1, ["a", "b"]), (2, ["x" * 200_000 + "\nc,d", "y"]), (5, ["f", "g"]), (6, ["h", "i"])]
    assert [(n, v) for n, v, p in rows if p is None] == good
    assert [(n, p) for n, _, p in rows if p] == [(4, "found 1 columns, expected 2")]  # a bare CR ends a row


def test_jsonl_lone_surrogates_and_nan_are_bad_rows_with_safe_values(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"s1": "花\\ud800呗", "s2": "借呗"}\n{"s1": "\\ud83d\\ude00", "s2": "b"}\n'
                    '{"s1": NaN, "s2": "b"}\n{"s1": "a", "s2": "b", "s1": "c"}\n', encoding="utf-8")
    _, rows = read(path, "jsonl")
    assert rows[0] == (1, ["花\ufffd呗", "借呗"], "not valid Unicode: a lone surrogate '\\ud800'")
    assert rows[1] == (2, ["\U0001f600", "b"], None)  # a surrogate pair is one valid character
    assert rows[2][2] == "invalid JSON: NaN is not a JSON value"
    assert rows[3][2] == "invalid JSON: key 's1' appears twice in an object"  # json.loads would keep the last


def test_strict_keys_make_a_key_outside_the_columns_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(f'{{"s1": "a{i}", "s2": "b"}}\n' for i in range(25)) + '{"s1": "a", "s2": "b", "z": 1}\n',
                    encoding="utf-8")
    with open_table(str(path), "jsonl", strict_keys=True) as table:
        problems = [(r.line, r.problem) for r in table.records if r.problem]
    assert problems == [(26, "key 'z' is not among the columns of the first rows (s1, s2)")]


def test_parquet_reads_rows_and_resumes_after_a_row_count(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "pairs.parquet"
    pyarrow_parquet().write_table(pa.table({"q": ["a", "b", "c"], "c": ["x", None, "z"]}), path, row_group_size=2)
    columns, rows = read(path, "parquet")
    assert columns == ["q", "c"] and rows == [(1, ["a", "x"], None), (2, ["b", None], None), (3, ["c", "z"], None)]
    assert read(path, "parquet", start=Position(2, 2))[1] == [(3, ["c", "z"], None)]


def arrow_columns_of_every_kind() -> dict[str, object]:
    """One column per kind of pyarrow type, with a null in each, three rows."""
    import datetime
    import decimal

    import numpy as np
    import pyarrow as pa

    utc = datetime.timezone.utc
    return {
        "id": pa.array([7, None, 2**63 - 1], pa.int64()), "u8": pa.array([0, 255, None], pa.uint8()),
        "half": pa.array(np.array([1.5, 0, 2], np.float16)), "real": pa.array([0.1, None, float("nan")]),
        "flag": pa.array([True, None, False]), "cost": pa.array([decimal.Decimal("1.25"), None, None],
                                                                pa.decimal128(5, 2)),
        "day": pa.array([datetime.date(2020, 1, 1), None, datetime.date(1, 1, 1)]),
        "at": pa.array([datetime.datetime(2020, 1, 1, tzinfo=utc), None, None], pa.timestamp("us", "Asia/Shanghai")),
        "took": pa.array([1, None, 3], pa.duration("ms")), "clock": pa.array([1, None, 3], pa.time64("us")),
        "raw": pa.array([b"\x00\xff", None, b""]), "big": pa.array(["x", None, "大"], pa.large_string()),
        "kind": pa.array(["a", "b", None]).dictionary_encode(), "tags": pa.array([[1, 2], None, []]),
        "meta": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": None}]),
        "map": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())), "none": pa.nulls(3),
        "sentence1": pa.array(["花呗怎么还款", "额度", None], pa.large_string()),
        "sentence2": pa.array(["花呗如何还钱", "还款", "借呗"]).dictionary_encode(),
    }


def test_parquet_to_parquet_keeps_every_column_of_its_type_and_values(tmp_path: Path) -> None:
    import pyarrow as pa

    source = pa.table(arrow_columns_of_every_kind())
    pyarrow_parquet().write_table(source, tmp_path / "in.parquet")
    result = subprocess.run([sys.executable, "-m", "siamese_runtime", "score", "in.parquet", "-o", "out.parquet",
                             "--on-bad-row", "null", "--predict"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    scored = pyarrow_parquet().read_table(tmp_path / "out.parquet")
    assert scored.column_names == [*source.column_names, "predicted", "score"]
    for name in source.column_names:
        assert scored.schema.field(name).type == source.schema.field(name).type, name
        assert scored.column(name).to_pylist() == source.column(name).to_pylist() or name == "real", name
    assert scored.column("real").to_pylist()[:2] == [0.1, None]  # NaN is no value equal to itself
    assert scored.column("score").null_count == 1  # the row without sentence1, kept as null under --on-bad-row null


def test_parquet_values_that_are_not_text_read_back_from_csv_and_jsonl_as_the_values_they_were(tmp_path: Path) -> None:
    import base64
    import csv
    import datetime
    import decimal

    import pyarrow as pa

    source = pa.table(arrow_columns_of_every_kind())
    pyarrow_parquet().write_table(source, tmp_path / "in.parquet")
    back = {  # each kind's text parsed back by an independent parser: the standard library's own
        "day": datetime.date.fromisoformat, "at": datetime.datetime.fromisoformat, "clock": datetime.time.fromisoformat,
        "cost": decimal.Decimal, "raw": base64.b64decode, "took": str,
    }
    for fmt in ("csv", "jsonl"):
        result = subprocess.run([sys.executable, "-m", "siamese_runtime", "score", "in.parquet", "-o", f"out.{fmt}",
                                 "--on-bad-row", "null"], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        with (tmp_path / f"out.{fmt}").open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream)) if fmt == "csv" else [json.loads(line) for line in stream]
        for name, parse in back.items():
            expected = source.column(name).to_pylist()
            got = [row[name] for row in rows]
            empty = (None, "", b"") if fmt == "csv" else (None,)  # CSV writes None and b"" alike: an empty cell
            assert [None if cell in empty else parse(cell) for cell in got] == [
                None if value in empty else str(value) if parse is str else value for value in expected], (fmt, name)


def test_missing_pyarrow_is_an_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SiameseRuntimeError, match=r"pip install 'siamese-runtime\[parquet\]'"):
        pyarrow_parquet()


def test_resuming_text_seeks_to_the_byte_offset_and_keeps_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2\n花呗,借呗\n额度,还款\n", encoding="utf-8")
    with open_table(str(path), "csv") as table:
        first = next(table.records)
    assert read(path, "csv", start=first.end) == (["sentence1", "sentence2"], [(3, ["额度", "还款"], None)])


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([["sentence1", "sentence2"], ["花呗", "借呗"]], True),
        ([["问题", "回答", "标签"], ["花呗", "借呗", "1"], ["额度", "还款", "0"]], True),
        ([["花呗", "借呗", "1"], ["额度", "还款", "0"]], False),
        ([["花呗", "借呗"], ["额度", "还款"]], False),
        ([["a", "a"], ["b", "c"]], False),
    ],
)
def test_header_detection(rows: list[list[str]], expected: bool) -> None:
    assert looks_like_header(rows) is expected


def test_columns_by_name_number_or_known_pair() -> None:
    columns = ["id", "text_a", "text_b", "label"]
    assert select_columns(columns, True) == select_columns(columns, True, "text_a", "3", "1")
    assert select_columns(columns, True).id == 0 and select_columns(columns, False).left == 0
    with pytest.raises(SiameseRuntimeError, match="no column named 'q'; the columns are id, text_a"):
        select_columns(columns, True, "q", "text_b")
    with pytest.raises(SiameseRuntimeError, match="column 5 does not exist"):
        select_columns(columns, True, "1", "5")
    with pytest.raises(SiameseRuntimeError, match="chosen by name but the input has no header"):
        select_columns(columns, False, "text_a", "text_b")


def test_formats_from_extension_or_flag() -> None:
    assert [format_of(p) for p in ("a.tsv", "a.CSV", "a.jsonl", "a.parquet", "a.txt", "-")] == [
        "tsv", "csv", "jsonl", "parquet", "tsv", "tsv"]
    assert format_of("a.tsv", "jsonl") == "jsonl"


def test_text_rows_put_the_score_last_and_leave_null_scores_empty() -> None:
    rows = [ScoredRow(["花呗", "借,呗"], None, True, 0.5), ScoredRow(["a\tb", None], None, None, None)]
    assert TextRows("tsv", ["a", "b"], True, True).header_text() == "a\tb\tpredicted\tscore\n"
    assert TextRows("tsv", ["a", "b"], False, True).format(rows) == "花呗\t借,呗\t1\t0.5\na b\t\t\t\n"
    assert TextRows("csv", ["a", "b"], False, False).format(rows) == '花呗,"借,呗",0.5\na\tb,,\n'
    lines = TextRows("jsonl", ["a", "b"], False, False).format(rows).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"a": "花呗", "b": "借,呗", "score": 0.5},
        {"a": "a\tb", "b": None, "score": None},
    ]


def test_atomic_file_appears_whole_or_not_at_all_and_resumes_at_a_length(tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    output = AtomicFile(str(target))
    output.write("first\n")
    synced = output.sync()
    assert synced == Prefix(6, hashlib.sha256(b"first\n").hexdigest()) and target.read_text() == "old\n"
    output.write("half a line")
    output._stream.close()  # a crash: the partial file holds more than was synced
    with pytest.raises(ResumeError, match="does not begin with the 6 bytes"):
        AtomicFile(str(target), resume_at=Prefix(6, hashlib.sha256(b"other\n").hexdigest()))
    resumed = AtomicFile(str(target), resume_at=synced)
    resumed.write("second\n")
    resumed.commit()
    assert target.read_text() == "first\nsecond\n" and not partial_path(str(target)).exists()
    failed = AtomicFile(str(tmp_path / "other.tsv"))
    failed.write("x")
    failed.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tsv"]


def test_a_locked_target_refuses_a_second_holder(tmp_path: Path) -> None:
    out = str(tmp_path / "scores.parquet")
    holder = rf"{out} is being written by another job \(pid {os.getpid()}\)"
    with locked([out, None]), pytest.raises(OutputLockedError, match=holder), locked([out]):
        pass
    with locked([out]):  # released: the next job gets it
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == []


LONG_NAMES = st.integers(150, 255).map(lambda n: "x" * n) | st.text(st.sampled_from("ab花呗~-"), min_size=50,
                                                                   max_size=85)


@given(LONG_NAMES)
def test_a_target_named_as_another_targets_shortened_sidecar_stem_shares_its_sidecars(name: str) -> None:
    """Sidecars of a name too long are shortened to one stem for every kind; a target named as that stem gets the
    same sidecars, so its lock keeps the two jobs apart (were stems of different lengths, two targets shared a
    partial file under different locks)."""
    if len(name.encode()) > 255:
        return
    stems = {sidecar_path(name, kind).name.removeprefix(".").removesuffix(f".{kind}") for kind in BOOKKEEPING}
    stems.add(sidecar_path(name, "rejects.jsonl", hidden=False).name.removesuffix(".rejects.jsonl"))
    assert len(stems) == 1
    stem = stems.pop()
    assert stem == name or all(sidecar_path(stem, kind) == sidecar_path(name, kind) for kind in BOOKKEEPING)
