"""A job's progress bar on a terminal: percent done and time left by bytes read, pairs and pairs/s beside it."""

from __future__ import annotations

import os
import time
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
    # by bytes: their rate says nothing to a batch user, so pairs and pairs/s stand where it would
    unit = ({"unit": "B", "unit_divisor": 1024,
             "bar_format": "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {postfix}]"}
            if by_bytes else {"unit": " pairs"})
    # a long smoothing window: chunks arrive in bursts, and the time left should not jump with each
    with (tqdm(total=total, dynamic_ncols=True, unit_scale=True, smoothing=0.05, **unit) as bar,
          logging_redirect_tqdm()):
        shown, started = 0, time.monotonic()

        def update(progress: Progress) -> None:
            nonlocal shown
            done = progress.position.offset if by_bytes else progress.rows
            bar.update(done - shown)
            shown = done
            if by_bytes:
                rate = progress.rows / max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{progress.rows:,} pairs, {rate:,.0f} pairs/s", refresh=False)

        yield update
