"""Batch jobs: stream a pair file through a Scorer in chunks, one output row per input row, resumable."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from .batching import chunked
from .checkpoint import Checkpoint, Progress, fingerprint
from .errors import BadRowError, SiameseRuntimeError
from .inputs import pair_problem
from .io.columns import Selection, select_columns
from .io.formats import format_of
from .io.readers import Record, open_table
from .io.sinks import AtomicFile, partial_path
from .io.writers import ScoredRow, open_sink
from .scorer import EncodeStats, Scorer

log = logging.getLogger(__name__)

BAD_ROW_POLICIES = ("stop", "skip", "null")


@dataclass(frozen=True)
class JobOptions:
    """What to score and how: files, formats, columns (names or 1-based numbers), bad-row policy."""

    input: str
    output: str
    input_format: str | None = None
    output_format: str | None = None
    header: bool | None = None
    left: str | None = None
    right: str | None = None
    id_column: str | None = None
    predict: bool = False
    on_bad_row: str = "stop"
    reject_file: str | None = None
    chunk_rows: int = 8192
    resume: bool = False

    @property
    def header_choice(self) -> bool | None:
        """--header/--no-header; else True when a column is chosen by name (names need a header); else detect."""
        if self.header is not None:
            return self.header
        named = any(spec is not None and not spec.isdigit() for spec in (self.left, self.right, self.id_column))
        return True if named else None

    @property
    def rejects(self) -> str | None:
        """Where bad rows go under skip/null: --reject-file, or OUTPUT.rejects.jsonl beside the output."""
        if self.on_bad_row == "stop":
            return None
        if self.reject_file is None and self.output == "-":
            raise SiameseRuntimeError(f"--on-bad-row {self.on_bad_row} with output to stdout needs --reject-file")
        return self.reject_file or f"{self.output}.rejects.jsonl"


@dataclass(frozen=True)
class JobSummary:
    rows: int
    written: int
    bad_rows: int
    sentences_encoded: int
    truncated: int
    resumed_rows: int
    seconds: float
    provider: str
    rejects: str | None

    @property
    def pairs_per_second(self) -> float:
        """Input rows handled by this run (not those done before a resume) per second."""
        done = self.rows - self.resumed_rows
        return done / self.seconds if self.seconds > 0 else float("inf")


def run_job(scorer: Scorer, options: JobOptions, on_progress: Callable[[int], None] | None = None) -> JobSummary:
    """Score every row of `options.input` into `options.output`, written atomically with checkpoints.

    A bad row stops the job with BadRowError (file:line: reason) and leaves no output, unless
    `on_bad_row` is skip (no output row) or null (an output row with an empty score); both write the
    row to the reject file. After a crash, `resume=True` goes on from the last checkpoint.
    """
    started = time.perf_counter()
    if options.on_bad_row not in BAD_ROW_POLICIES:
        raise SiameseRuntimeError(f"unknown bad-row policy {options.on_bad_row!r}; use {', '.join(BAD_ROW_POLICIES)}")
    in_format, out_format = format_of(options.input, options.input_format), format_of(options.output, options.output_format)
    checkpoint = _checkpoint(scorer, options, in_format, out_format)
    progress = _resume(checkpoint, options.output) if options.resume else None
    resumed = progress is not None
    if not resumed and checkpoint is not None:
        checkpoint.remove()  # a stale checkpoint must never describe the new partial output
    progress = progress or Progress()
    resumed_rows = progress.rows
    stats = EncodeStats(progress.encoded, progress.truncated)
    with open_table(options.input, in_format, options.header_choice, progress.position if resumed else None) as table:
        selection = select_columns(table.columns, table.header, options.left, options.right, options.id_column)
        output = open_sink(options.output, out_format, table.columns, table.header, options.predict,
                           progress.output_bytes if resumed else None)
        rejects_path = options.rejects
        rejects = AtomicFile(rejects_path, progress.reject_bytes if resumed else None) if rejects_path else None
        try:
            for chunk in chunked(table.records, options.chunk_rows):
                rows, rejected = _score_chunk(scorer, chunk, selection, table.columns, options, stats)
                output.write(rows)
                if rejects is not None:
                    rejects.write("".join(rejected))
                warned = progress.truncated > 0
                progress = replace(
                    progress, position=chunk[-1].end, rows=progress.rows + len(chunk),
                    written=progress.written + len(rows), bad_rows=progress.bad_rows + len(rejected),
                    encoded=stats.encoded, truncated=stats.truncated,
                    output_bytes=output.sync(), reject_bytes=rejects.sync() if rejects else 0,
                )
                if checkpoint is not None:
                    checkpoint.save(progress)
                if stats.truncated and not warned:
                    log.warning("sentences longer than max_length %d are truncated (counted in the summary)",
                                scorer.model.tokenizer.max_length)
                if on_progress is not None:
                    on_progress(len(chunk))
        except BaseException as error:
            if checkpoint is None or isinstance(error, BadRowError):
                output.discard()
                if rejects is not None:
                    rejects.discard()
                if checkpoint is not None:
                    checkpoint.remove()
            raise
        output.commit()
        if rejects is not None:
            rejects.commit()
    if checkpoint is not None:
        checkpoint.remove()
    return JobSummary(
        progress.rows, progress.written, progress.bad_rows, progress.encoded, progress.truncated, resumed_rows,
        time.perf_counter() - started, scorer.providers[0], options.rejects,
    )


def _checkpoint(scorer: Scorer, options: JobOptions, in_format: str, out_format: str) -> Checkpoint | None:
    """The job's checkpoint, or None where it cannot resume: stdin, stdout or Parquet output."""
    if options.input == "-" or options.output == "-" or out_format == "parquet":
        if options.resume:
            raise SiameseRuntimeError("--resume needs an input file and a TSV, CSV or JSONL output file")
        return None
    settings = {
        "input_format": in_format, "output_format": out_format, "header": options.header,
        "left": options.left, "right": options.right, "id_column": options.id_column,
        "predict": options.predict, "on_bad_row": options.on_bad_row,
        "rejects": os.path.abspath(options.rejects) if options.rejects else None,
        "encoder_sha256": scorer.model.manifest["files"][scorer.model.encoder_path(scorer.precision).name]["sha256"],
        "provider": scorer.providers[0],
    }
    return Checkpoint(options.output, fingerprint(options.input, settings))


def _resume(checkpoint: Checkpoint | None, output: str) -> Progress | None:
    progress = checkpoint.load() if checkpoint is not None else None
    if progress is None:
        log.warning("no checkpoint to resume from: starting from the beginning")
        return None
    partial = partial_path(output)
    if not partial.is_file() or partial.stat().st_size < progress.output_bytes:
        raise SiameseRuntimeError(f"cannot resume: {partial} is missing or shorter than the checkpoint says")
    log.info("resuming after line %d (%d rows done)", progress.position.line, progress.rows)
    return progress


def _score_chunk(
    scorer: Scorer, chunk: list[Record], selection: Selection, columns: list[str], options: JobOptions,
    stats: EncodeStats,
) -> tuple[list[ScoredRow], list[str]]:
    """The chunk's output rows in input order and its reject lines; raises BadRowError under 'stop'."""
    problems = _problems(chunk, selection)
    good = [record for record, problem in zip(chunk, problems) if problem is None]
    scores = iter(scorer.score([r.values[selection.left] for r in good], [r.values[selection.right] for r in good],
                               stats=stats).tolist())
    rows, rejected = [], []
    for record, problem in zip(chunk, problems):
        if problem is None:
            score = next(scores)
            rows.append(ScoredRow(record.values, record.source, score >= scorer.threshold, score))
            continue
        if options.on_bad_row == "stop":
            raise BadRowError("<stdin>" if options.input == "-" else options.input, record.line, problem)
        rejected.append(_reject_line(record, problem, selection))
        if options.on_bad_row == "null":
            values = (record.values + [None] * len(columns))[: len(columns)]
            rows.append(ScoredRow(values, record.source, None, None))
    return rows, rejected


def _problems(chunk: list[Record], selection: Selection) -> list[str | None]:
    """Why each record cannot be scored, or None: its own problem, a missing, non-text or empty sentence."""
    return [
        record.problem or pair_problem(record.values[selection.left], record.values[selection.right])
        for record in chunk
    ]


def _reject_line(record: Record, problem: str, selection: Selection) -> str:
    row_id = record.values[selection.id] if selection.id is not None and selection.id < len(record.values) else None
    entry = {"line": record.line, "id": row_id, "reason": problem, "values": record.values}
    return json.dumps(entry, ensure_ascii=False, default=str) + "\n"
