"""A job's progress bar on a terminal: percent done and time left by bytes read, pairs/s beside it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..checkpoint import Progress
from ..io.formats import format_of
from ..io.safe_output import is_regular_input
from ..job import JobOptions


@contextmanager
def progress_bar(options: JobOptions) -> Iterator[Callable[[Progress], None]]:
    """A callback for run_job drawing a tqdm bar; log records are written above the bar, never into it.

    A text file's bar counts its bytes (as pv does), so it shows percent done and time left; stdin and
    Parquet, whose size in bytes says nothing of the rows left, count pairs.
    """
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    by_bytes = is_regular_input(options.input) and format_of(options.input, options.input_format) != "parquet"
    total = os.stat(options.input).st_size if by_bytes else None
    unit = {"unit": "B", "unit_divisor": 1024} if by_bytes else {"unit": " pairs"}
    with tqdm(total=total, dynamic_ncols=True, unit_scale=True, **unit) as bar, logging_redirect_tqdm():
        shown = 0

        def update(progress: Progress) -> None:
            nonlocal shown
            done = progress.position.offset if by_bytes else progress.rows
            bar.update(done - shown)
            shown = done
            if by_bytes:
                bar.set_postfix_str(f"{progress.rows:,} pairs", refresh=False)

        yield update
