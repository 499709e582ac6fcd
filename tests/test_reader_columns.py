"""Which row is a header and which names the columns have: an unreadable first row is never a header, and names
that collide (a TSV/CSV header naming a column twice, a Parquet file with two columns of one name) or a header as
wide as none of the rows are refused with the file and line named, in every format."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.errors import InputError, UsageError
from siamese_runtime.io.columns import ID_NAME, PAIR_NAMES, find_named, resolve_column, select_columns
from siamese_runtime.io.formats import pyarrow_parquet
from siamese_runtime.io.readers import open_table


def read(path: Path, header: bool | None = None) -> tuple[list[str], bool, list[tuple[int, list, str | None]]]:
    with open_table(str(path), path.suffix[1:], header) as table:
        return table.columns, table.header, [(r.line, r.values, r.problem) for r in table.records]


def refused(path: Path, header: bool | None, reason: str) -> None:
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:1: {reason}"):
        read(path, header)


@pytest.mark.parametrize(("name", "first", "problem"), [
    ("p.tsv", b"s1\x80\tsentence2\n", "invalid UTF-8 at byte 2"),
    ("p.tsv", b"\n", "empty line"),
])
def test_an_unreadable_first_row_is_a_bad_row_not_a_header(tmp_path: Path, name: str, first: bytes,
                                                           problem: str) -> None:
    path = tmp_path / name
    separator = "\t" if name.endswith(".tsv") else ","
    path.write_bytes(first + "".join(f"sentence1{separator}sentence2\n花呗{i}{separator}借呗\n" for i in range(3))
                     .encode())
    columns, header, rows = read(path)
    assert (columns, header) == (["column1", "column2"], False)
    assert rows[0][0] == 1 and rows[0][2] == problem and [n for n, _, p in rows if p is None] == list(range(2, 8))
    refused(path, True, f"the header row cannot be read: {re.escape(problem)}")


@pytest.mark.parametrize(("name", "text", "header", "repeated"), [
    ("p.tsv", "sentence1\tsentence2\tsentence1\n花呗\t借呗\t额度\n", None, "sentence1"),  # known names: a header
    ("p.csv", "q,q,label\n花呗,借呗,1\n额度,还款,0\n", True, "q"),
    ("p.csv", "问题,问题,标签\n花呗,借呗,1\n额度,还款,0\n", None, "问题"),  # a header by its numeric column
])
def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path, name: str, text: str, header: bool | None,
                                                   repeated: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    refused(path, header, f"the header names column {repeated!r} twice")


def test_a_header_as_wide_as_none_of_the_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("sentence1\tsentence2\n" + "".join(f"花呗{i}\t借呗\t1\n" for i in range(5)), encoding="utf-8")
    refused(path, None, "the header has 2 columns")
    refused(path, True, "the header has 2 columns")
    assert read(path, False)[0] == ["column1", "column2", "column3"]


def test_a_bom_before_a_header_and_bare_cr_endings_still_name_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbfsentence1,sentence2\r" + "花呗,借呗\r额度,还款".encode())
    assert read(path) == (["sentence1", "sentence2"], True, [(2, ["花呗", "借呗"], None), (3, ["额度", "还款"], None)])


def test_parquet_columns_of_one_name_are_refused(tmp_path: Path) -> None:
    import pyarrow as pa

    path = tmp_path / "p.parquet"
    table = pa.table([pa.array(["花呗"]), pa.array(["借呗"]), pa.array(["1"])], names=["s1", "s1", "label"])
    pyarrow_parquet().write_table(table, path)
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: the file has two columns named 's1'"):
        read(path)


SPELLINGS = [str.lower, str.upper, str.title, lambda name: f" {name} "]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PAIR_NAMES), st.sampled_from(SPELLINGS), st.sampled_from(SPELLINGS), st.permutations(range(4)),
       st.sampled_from(["tsv", "csv"]), st.integers(0, 2))
def test_a_header_known_in_any_spelling_is_detected_and_its_columns_chosen(
    pair: tuple[str, str], spell: Callable[[str], str], spell_id: Callable[[str], str], order: list[int], fmt: str,
    trailing: int,
) -> None:
    """Detection and the default columns compare names one way: 'Question1', 'ID ' are question1 and id; a
    trailing delimiter or two on every line (empty last columns, named by their place) leave the header a header."""
    names = [spell(pair[0]), spell(pair[1]), spell_id("id"), "notes"]
    header = [names[i] for i in order]
    delimiter = "\t" if fmt == "tsv" else ","
    rows = [header, *([f"句子{n}{i}" if name in names[:2] else str(n) for i, name in enumerate(header)]
                      for n in range(3))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"pairs.{fmt}"
        end = delimiter * trailing + "\n"
        path.write_text("".join(delimiter.join(row) + end for row in rows), encoding="utf-8")
        columns, detected, _ = read(path)
    chosen = select_columns(columns, detected)
    assert detected and (chosen.left, chosen.right, chosen.id) == tuple(header.index(n) for n in names[:3])
    assert columns == [*header, *(f"column{len(header) + i + 1}" for i in range(trailing))]


OTHER_NAMES = st.lists(st.sampled_from(["source", "备注", "score", "Predicted", "label"]), max_size=3, unique=True)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PAIR_NAMES), st.sampled_from(SPELLINGS), OTHER_NAMES, st.integers(0, 2),
       st.randoms(use_true_random=False), st.sampled_from(["tsv", "csv"]))
def test_a_known_pair_of_names_makes_a_header_whatever_stands_beside_it(
    pair: tuple[str, str], spell: Callable[[str], str], others: list[str], empty: int, shuffle, fmt: str,
) -> None:
    """Beside sentence1/sentence2 (any spelling) may stand unknown text columns, empty header cells (between
    the names too) and our own output's score column left empty by --on-bad-row null: the row is a header."""
    header = [spell(pair[0]), spell(pair[1]), *others, *[""] * empty]
    shuffle.shuffle(header)
    delimiter = "\t" if fmt == "tsv" else ","
    data = [["" if cell.lower() in ("", "score", "predicted") else f"句子{n}{i}" for i, cell in enumerate(header)]
            for n in range(3)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"pairs.{fmt}"
        path.write_text("".join(delimiter.join(row) + "\n" for row in [header, *data]), encoding="utf-8")
        columns, detected, rows = read(path)
    chosen = select_columns(columns, detected)
    assert detected and len(rows) == 3
    assert (columns[chosen.left], columns[chosen.right]) == (spell(pair[0]), spell(pair[1]))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([ID_NAME, *(name for pair in PAIR_NAMES for name in pair)]),
       st.lists(st.sampled_from(SPELLINGS[1:]), min_size=1, max_size=3, unique=True), st.booleans(),
       st.randoms(use_true_random=False))
def test_a_name_spelled_exactly_wins_and_two_alike_are_ambiguous(
    name: str, spellings: list[Callable[[str], str]], exact: bool, shuffle,
) -> None:
    """find_named, which the default columns and --left/--right/--id-column go through: the column spelled as
    asked wins over one only alike ('Sentence1' beside 'sentence1'); two alike and none exact is an error."""
    alike = list(dict.fromkeys(spell(name) for spell in spellings if spell(name) != name))
    columns = [*alike, *([name] if exact else []), "other"]
    shuffle.shuffle(columns)
    if exact:
        assert find_named(name, columns) == columns.index(name)
    elif len(alike) == 1:
        assert find_named(name, columns) == columns.index(alike[0])
    else:
        with pytest.raises(UsageError, match=rf"{len(alike)} columns match {name!r}"):
            find_named(name, columns)


@pytest.mark.parametrize(("spec", "expected"), [("2", 1), (" 2 ", 1), ("b", 1), ("B ", 1)])
def test_a_column_is_given_by_its_ascii_number_or_its_name(spec: str, expected: int) -> None:
    assert resolve_column(spec, ["a", "b"], header=True) == expected


@pytest.mark.parametrize("spec", ["²", "٣", "3", "c"])  # digits Python's isdigit takes, but int() does not
def test_a_column_that_is_not_there_is_a_usage_error(spec: str) -> None:
    with pytest.raises(UsageError, match="column"):
        resolve_column(spec, ["a", "b"], header=True)


NAMES = st.sampled_from(["id", "ID", "label", "Score", "predicted", "q1", "q2", "text", "note", "ask", "reply"])


@given(st.lists(NAMES, min_size=2, max_size=7, unique_by=str.casefold))
def test_default_sentence_columns_are_the_first_two_that_name_no_id_label_or_score(columns: list[str]) -> None:
    """Without a known pair of names, the first two columns that are not id, label, score or predicted; never the
    id column (an `id,q1,q2,label` file once scored its ids)."""
    others = [i for i, name in enumerate(columns) if name.casefold() not in ("id", "label", "score", "predicted")]
    try:
        chosen = select_columns(columns, header=True)
    except UsageError as error:
        assert len(others) < 2, error
        return
    assert len(others) >= 2 or {chosen.left, chosen.right} == {0, 1}
    if len(others) >= 2:
        assert (chosen.left, chosen.right) == (others[0], others[1])
    assert chosen.id not in (chosen.left, chosen.right)
