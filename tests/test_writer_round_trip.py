"""What the job writes reads back as the rows it wrote: TSV, CSV and JSONL output, for any text in its cells
(every line break Unicode knows, quotes, delimiters), read by this package's reader and by independent ones
(Python's csv and json, pyarrow's CSV reader): one row per row written, the same cells."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_runtime.io.readers import open_table
from siamese_runtime.io.writers import ScoredRow, TextRows, text_cell

# Characters that end lines somewhere (CR, LF, NEL, VT, FF, FS-RS, U+2028/9), delimiters and quotes, and text.
# NUL is left out: no text reader here takes it in a TSV or CSV cell (the input reader makes it a bad row).
SPECIAL = "\r\n\x85\x0b\x0c\x1c\x1d\x1e\u2028\u2029\t,\"' "
CELLS = st.text(st.sampled_from(SPECIAL) | st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                max_size=12)
COLUMNS = ["sentence1", "sentence2", "id"]
ROWS = st.lists(st.lists(CELLS, min_size=3, max_size=3), min_size=1, max_size=8)


def written(fmt: str, rows: list[list[str]]) -> str:
    text_rows = TextRows(fmt, COLUMNS, header=True, predict=False)
    scored = [ScoredRow(list(cells), None, None, 0.25) for cells in rows]
    return text_rows.header_text() + text_rows.format(scored)


def read_back(fmt: str, text: str) -> list[list[object]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"out.{fmt}"
        path.write_bytes(text.encode("utf-8"))
        with open_table(str(path), fmt, header=fmt != "jsonl") as table:
            records = list(table.records)
    assert all(record.problem is None for record in records), [record.problem for record in records]
    return [record.values for record in records]


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_csv_output_reads_back_cell_for_cell_by_every_reader(rows: list[list[str]]) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    text = written("csv", rows)
    expected = [[*cells, "0.25"] for cells in rows]
    assert read_back("csv", text) == expected
    assert list(csv.reader(io.StringIO(text, newline="")))[1:] == expected
    names = [*COLUMNS, "score"]
    as_text = pa_csv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False,
                                    quoted_strings_can_be_null=False)
    table = pa_csv.read_csv(io.BytesIO(text.encode()), convert_options=as_text,
                            parse_options=pa_csv.ParseOptions(newlines_in_values=True))
    assert [list(row.values()) for row in table.to_pylist()] == expected


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_tsv_output_reads_back_one_row_per_row_with_line_breaks_and_tabs_as_spaces(rows: list[list[str]]) -> None:
    flattened = [[cell.replace("\t", " ").replace("\r", " ").replace("\n", " ") for cell in cells] for cells in rows]
    assert read_back("tsv", written("tsv", rows)) == [[*cells, "0.25"] for cells in flattened]


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_jsonl_output_reads_back_object_for_object(rows: list[list[str]]) -> None:
    text = written("jsonl", rows)
    expected = [[*cells, 0.25] for cells in rows]
    assert read_back("jsonl", text) == expected
    assert [list(json.loads(line).values()) for line in text.split("\n")[:-1]] == expected


@given(st.sampled_from(["score", "predicted"]), st.sampled_from([str.lower, str.upper, str.title, " {} ".format]),
       st.sampled_from(["tsv", "csv", "jsonl"]))
def test_a_rescored_file_keeps_one_score_and_one_label_whatever_their_old_spelling(
    old: str, spell: Callable[[str], str], fmt: str,
) -> None:
    columns = ["sentence1", "sentence2", spell(old)]
    rows = TextRows(fmt, columns, header=True, predict=True)
    assert rows.names == ["sentence1", "sentence2", "predicted", "score"]
    line = rows.format([ScoredRow(["a", "b", "0.5"], dict(zip(columns, ["a", "b", "0.5"])), True, 0.25)])
    assert line.count("0.5") == 0 and line.count("0.25") == 1


VALUES = CELLS | st.none() | st.integers() | st.floats(allow_nan=False) | st.binary(max_size=4) | st.dates()
SCORED_ROWS = st.lists(st.tuples(st.lists(VALUES, min_size=3, max_size=3), st.sampled_from([None, True, False]),
                                 st.none() | st.floats(0, 1, width=32)), max_size=8)


def row_by_row(fmt: str, rows: list[ScoredRow]) -> str:
    """The rows formatted one by one, cell by cell: the independent reference for the writer's columns."""
    lines = []
    for row in rows:
        cells = [text_cell(value) or "" for value in row.values]
        cells += ["" if row.predicted is None else str(int(row.predicted)), "" if row.score is None else
                  f"{row.score:.9g}"]
        if fmt == "tsv":
            lines.append("\t".join(c.replace("\t", " ").replace("\r", " ").replace("\n", " ") for c in cells) + "\n")
        else:
            written_csv = io.StringIO()
            csv.writer(written_csv, lineterminator="\r\n").writerow(cells)
            lines.append(written_csv.getvalue()[:-2] + "\n")
    return "".join(lines)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["tsv", "csv"]), SCORED_ROWS)
def test_rows_formatted_column_by_column_equal_row_by_row(fmt: str, rows: list[tuple[list, bool | None, float | None]]
                                                         ) -> None:
    scored = [ScoredRow(values, None, predicted, score) for values, predicted, score in rows]
    assert TextRows(fmt, COLUMNS, header=True, predict=True).format(scored) == row_by_row(fmt, scored)
