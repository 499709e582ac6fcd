"""Strict pair files (what train/ reads): the first malformed row stops with file:line: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from siamese_runtime import BadRowError
from siamese_runtime.bench.pair_files import read_pair_rows


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("花呗\t借呗\t1\n只有一列\n".encode(), 2, "found 1 columns, expected 3"),
        ("只有一列\n".encode(), 1, "expected two sentences separated by a tab, found 1 column"),
        ("花呗\t借呗\n\t借呗\n".encode(), 2, "sentence1 is empty"),
        ("花呗\t借呗\n花呗\t \u3000\n".encode(), 2, "sentence2 is empty"),
        (b"ok\tok\nok\tok\n\xff\xfe\tok\n", 3, "invalid UTF-8 at byte 0"),
    ],
)
def test_bad_row_names_file_line_and_reason(tmp_path: Path, content: bytes, line: int, reason: str) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(BadRowError) as caught:
        list(read_pair_rows(str(path)))
    assert caught.value.line == line and caught.value.reason == reason
    assert str(caught.value) == f"{path}:{line}: {reason}"


def test_rows_keep_line_numbers_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_bytes("花呗\t借呗\t1\r\n额度\t还款\t0\n".encode())
    assert [(r.line, r.columns) for r in read_pair_rows(str(path))] == [
        (1, ["花呗", "借呗", "1"]),
        (2, ["额度", "还款", "0"]),
    ]
