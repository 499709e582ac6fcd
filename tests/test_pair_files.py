"""Pair files: malformed rows stop with file:line:reason; output appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from siamese_runtime import BadRowError
from siamese_runtime.pair_files import atomic_text_output, read_pair_rows


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("花呗\t借呗\t1\n只有一列\n".encode(), 2, "found 1 columns"),
        ("花呗\t借呗\n花呗\t借呗\t1\n".encode(), 2, "3 columns where line 1 has 2"),
        ("花呗\t借呗\n\t借呗\n".encode(), 2, "sentence1 is empty"),
        ("花呗\t借呗\n花呗\t \u3000\n".encode(), 2, "sentence2 is empty"),
        (b"ok\tok\nok\tok\n\xff\xfe\tok\n", 3, "invalid UTF-8 at byte 0"),
    ],
)
def test_bad_row_names_file_line_and_reason(tmp_path: Path, content: bytes, line: int, reason: str) -> None:
    path = write(tmp_path / "pairs.tsv", content)
    with pytest.raises(BadRowError) as caught:
        list(read_pair_rows(path))
    assert caught.value.line == line and reason in caught.value.reason
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_rows_keep_line_numbers_and_crlf_is_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", "花呗\t借呗\t1\r\n额度\t还款\t0\r\n".encode())
    rows = list(read_pair_rows(path))
    assert [(r.line, r.columns) for r in rows] == [(1, ["花呗", "借呗", "1"]), (2, ["额度", "还款", "0"])]


def test_failed_write_leaves_no_partial_output(tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with atomic_text_output(str(target)) as stream:
            stream.write("half a result\n")
            raise RuntimeError("crash mid-job")
    assert list(tmp_path.iterdir()) == []


def test_successful_write_replaces_target_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.tsv"
    target.write_text("old\n")
    with atomic_text_output(str(target)) as stream:
        stream.write("new\n")
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]
