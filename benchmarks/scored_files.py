"""Score files as `siamese-runtime score` writes them, read back by the benchmarks and the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_scored(path: str | Path) -> tuple[list[list[str]], np.ndarray]:
    """A headerless TSV file as `siamese-runtime score` writes it: each row's cells, and its last cells as scores
    (NaN where `--on-bad-row null` left one empty). Unchecked: for the benchmarks and tests reading their outputs."""
    with open(path, encoding="utf-8", newline="\n") as lines:  # rows end in \n only, as the job writes them
        rows = [line.removesuffix("\n").split("\t") for line in lines]
    return rows, np.array([float(row[-1]) if row[-1] else np.nan for row in rows])
