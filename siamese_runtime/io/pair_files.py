"""Headerless TSV pair files read strictly (every row has its sentences, or BadRowError), as the benchmarks
and the accuracy checks read the official tests; their labels in reports, and the score files written from them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bad_rows import text_problem
from ..errors import BadRowError
from .readers import open_table


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


def read_scored(path: str | Path) -> tuple[list[list[str]], np.ndarray]:
    """A headerless TSV file as `siamese-runtime score` writes it: each row's cells, and its last cells as scores
    (NaN where `--on-bad-row null` left one empty). Unchecked: for the benchmarks and tests reading their outputs."""
    with open(path, encoding="utf-8", newline="\n") as lines:  # rows end in \n only, as the job writes them
        rows = [line.removesuffix("\n").split("\t") for line in lines]
    return rows, np.array([float(row[-1]) if row[-1] else np.nan for row in rows])
