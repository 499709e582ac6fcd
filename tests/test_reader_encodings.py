"""Text that is not UTF-8: a file whose first lines are in a legacy encoding is refused once, naming the file, the
likely encoding and the iconv command that converts it; a stray bad line in a UTF-8 file stays one bad row."""

from __future__ import annotations

import re
import shlex
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.errors import InputError
from siamese_runtime.io.readers import open_table

from .fixtures.questions import question_pairs

TRADITIONAL = ["信用卡怎麼辦理", "如何註銷儲蓄卡", "我的帳戶餘額為什麼不對", "請問這個問題應該怎麼處理",
               "銀行轉帳需要多長時間"]
JAPANESE = ["クレジットカードの作り方を教えてください", "パスワードを忘れました", "ログインできないのはなぜですか"]
LATIN = ["Où est la gare", "Ça coûte combien", "Der Bäcker öffnet früh", "¿Dónde está el baño?"]


def owned_pairs(count: int = 200) -> str:
    return "".join(f"{a}\t{b}\t{label}\n" for a, b, label in question_pairs(count))


def pairs_of(sentences: list[str], count: int = 60) -> str:
    return "".join(f"{sentences[i % len(sentences)]}\t{sentences[(i + 1) % len(sentences)]}\t{i % 2}\n"
                   for i in range(count))


def read_all(path: Path, fmt: str = "tsv") -> list[tuple[int, str | None]]:
    with open_table(str(path), fmt) as table:
        return [(r.line, r.problem) for r in table.records]


@pytest.mark.parametrize(("text", "codec", "named", "iconv"), [
    (owned_pairs(), "gb18030", "GB18030", "GB18030"),
    ("sentence1\tsentence2\tlabel\n" + owned_pairs(3), "gbk", "GB18030", "GB18030"),  # a header in ASCII
    (pairs_of(TRADITIONAL), "big5", "Big5", "BIG5"),
    (pairs_of(JAPANESE), "shift_jis", "Shift-JIS", "SHIFT_JIS"),
    (pairs_of(LATIN), "cp1252", "Latin-1", "WINDOWS-1252"),
    (owned_pairs(), "utf-16-le", "UTF-16LE", "UTF-16LE"),  # no byte-order mark
    (owned_pairs(), "utf-16-be", "UTF-16BE", "UTF-16BE"),
])
def test_a_file_in_a_legacy_encoding_is_refused_naming_it_and_the_fix(tmp_path: Path, text: str, codec: str,
                                                                      named: str, iconv: str) -> None:
    path = tmp_path / "my pairs.tsv"
    path.write_bytes(text.encode(codec))
    fix = f"iconv -f {iconv} -t UTF-8 {shlex.quote(str(path))} > {shlex.quote(str(tmp_path / 'my pairs.utf8.tsv'))}"
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: the file is not UTF-8 but likely {named}.*: "
                                         rf".*\. Convert it to UTF-8: {re.escape(fix)}$"):
        read_all(path)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_every_text_format_checks_its_encoding(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"p.{fmt}"
    rows = [(a, b) for a, b, _ in question_pairs(50)]
    line = {"tsv": "{}\t{}\n", "csv": "{},{}\n", "jsonl": '{{"s1": "{}", "s2": "{}"}}\n'}[fmt]
    path.write_bytes("".join(line.format(a, b) for a, b in rows).encode("gb18030"))
    with pytest.raises(InputError, match="not UTF-8 but likely GB18030"):
        read_all(path, fmt)


def test_one_legacy_line_in_a_utf8_file_is_one_bad_row(tmp_path: Path) -> None:
    lines = owned_pairs(50).splitlines(keepends=True)
    path = tmp_path / "p.tsv"
    path.write_bytes(b"".join(line.encode("gb18030" if i == 7 else "utf-8") for i, line in enumerate(lines)))
    assert [(n, p) for n, p in read_all(path) if p] == [(8, "invalid UTF-8 at byte 0")]
    path.write_bytes(owned_pairs(50).encode("gb18030"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_all(path)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([3, 40, 21_845, 21_846, 32_768, 70_000]), min_size=1, max_size=4),
       st.none() | st.integers(0, 3), st.sampled_from("长a€😀"))
def test_a_utf8_file_with_at_most_one_bad_line_is_never_taken_for_another_encoding(
    lengths: list[int], bad: int | None, character: str,
) -> None:
    """Whatever its lines' lengths (one longer than the encoding sample, or cut by it inside a character) and
    wherever its one bad line is, a UTF-8 file is read: the bad line is one bad row, every other row scores."""
    lines = [f"{character * length}\t借呗额度\t{i % 2}\n".encode() for i, length in enumerate(lengths)]
    if bad is not None and bad < len(lines):
        lines[bad] = b"\xe8\x8a" + lines[bad]  # a character cut short: not UTF-8
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.tsv"
        path.write_bytes(b"".join(lines))
        problems = [(line, problem) for line, problem in read_all(path)]
    expected_bad = {bad + 1} if bad is not None and bad < len(lines) else set()
    assert {line for line, problem in problems if problem} == expected_bad
    assert len(problems) == len(lines)
