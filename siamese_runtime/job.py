"""Batch jobs: stream a pair file through a Scorer in chunks and write one scored row per input row."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from .pair_files import PairRow, atomic_text_output, read_pair_rows
from .scorer import Scorer


@dataclass(frozen=True)
class JobSummary:
    rows: int
    seconds: float
    provider: str

    @property
    def pairs_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def score_file(
    scorer: Scorer,
    source: str,
    destination: str,
    chunk_rows: int = 16384,
    on_progress: Callable[[int], None] | None = None,
) -> JobSummary:
    """Score every row of `source` into `destination` (input columns, then the score), atomically."""
    started = time.perf_counter()
    rows = 0
    with atomic_text_output(destination) as output:
        for chunk in _chunks(read_pair_rows(source), chunk_rows):
            left = [row.columns[0] for row in chunk]
            right = [row.columns[1] for row in chunk]
            scores = scorer.score(left, right)
            output.writelines(_scored_line(row, score) for row, score in zip(chunk, scores))
            rows += len(chunk)
            if on_progress is not None:
                on_progress(len(chunk))
    return JobSummary(rows, time.perf_counter() - started, scorer.providers[0])


def _scored_line(row: PairRow, score: float) -> str:
    return "\t".join([*row.columns, f"{score:.9g}"]) + "\n"


def _chunks(rows: Iterable[PairRow], size: int) -> Iterator[list[PairRow]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk
