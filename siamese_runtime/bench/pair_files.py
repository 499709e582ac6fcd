"""Headerless TSV pair files read strictly (every row has its sentences, or BadRowError), as `bench --pairs`,
the benchmarks and the accuracy checks read the official tests; and their labels in reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..bad_rows import text_problem
from ..errors import BadRowError
from ..io.readers import open_table


@dataclass(frozen=True)
class PairRow:
    """One input row: its line number and its columns, the first two being the sentences."""

    line: int
    columns: list[str]


def read_pair_rows(path: str) -> Iterator[PairRow]:
    """Rows of a headerless TSV file ('-' reads stdin); the first bad row raises BadRowError (file:line: reason)."""
    with open_table(path, "tsv", header=False) as table:
        for record in table.records:
            problem = record.problem or text_problem(record.values[0], "sentence1")
            problem = problem or (text_problem(record.values[1], "sentence2") if len(record.values) > 1 else
                                  "expected two sentences separated by a tab, found 1 column")
            if problem:
                raise BadRowError(path, record.line, problem)
            yield PairRow(record.line, record.values)


def file_label(path: str | Path) -> str:
    """A data file named by its folder and name, its last two path parts: '.../data/bq/test.tsv' -> 'bq/test.tsv'."""
    return "/".join(Path(path).parts[-2:])
