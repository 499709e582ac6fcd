"""Batch jobs: stream a pair file through a Scorer in chunks, one output row per input row, resumable."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import KW_ONLY, dataclass, replace
from operator import attrgetter, itemgetter
from typing import cast

from .bad_rows import BadRowPolicy, bad_row_policy, keeps_bad_row, pair_problem, pair_problems, reject_line
from .batching import chunked
from .checkpoint import Checkpoint, InputPrefix, Progress, Saved, fingerprint, kernels, software
from .errors import (
    BadRowError,
    InputError,
    ModelOutputError,
    OutputChangedError,
    ResumeError,
    UsageError,
    os_error_text,
)
from .inputs import int_at_least
from .io.columns import PREDICTED, SCORE, Selection, name_key, select_columns
from .io.formats import format_of
from .io.readers import Position, Record, Table, display_name, open_table
from .io.safe_output import (
    STDIO,
    AtomicFile,
    check_no_overlap,
    file_identity,
    holds,
    is_regular_input,
    is_stream,
    locked,
    partial_path,
    publish,
    sidecar_path,
    signals_held,
)
from .io.writers import ParquetSink, ScoredRow, TextSink, open_sink
from .prefetch import prefetched
from .scorer import EncodeStats, Scorer

log = logging.getLogger(__name__)
MAX_CHUNK_ROWS = 10_000_000  # rows held in memory at once; beyond it a chunk only costs memory


@dataclass(frozen=True)
class JobOptions:
    """What to score and how: files, formats, columns (names or 1-based numbers), bad-row policy."""

    input: str
    output: str
    _: KW_ONLY
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
    stream: bool = False  # rows to a stream output as each chunk is scored, giving up whole-or-nothing

    def __post_init__(self) -> None:
        """Checked once, at construction: paths that name something, the policy, a chunk of at least one row."""
        for label, path in (("input", self.input), ("output", self.output), ("reject file", self.reject_file)):
            if path == "":
                raise UsageError(f"the {label} path is empty" + (" (- is stdin)" if label == "input" else ""))
        bad_row_policy(self.on_bad_row)
        int_at_least(self.chunk_rows, "chunk_rows", maximum=MAX_CHUNK_ROWS)

    @property
    def header_choice(self) -> bool | None:
        """--header/--no-header; else True when a column is chosen by name (names need a header); else detect."""
        if self.header is not None:
            return self.header
        named = any(spec is not None and not spec.isdigit() for spec in (self.left, self.right, self.id_column))
        return True if named else None

    @property
    def policy(self) -> BadRowPolicy:
        return cast(BadRowPolicy, self.on_bad_row)  # checked in __post_init__

    @property
    def rejects(self) -> str | None:
        """Where bad rows go under skip/null: --reject-file, or OUTPUT.rejects.jsonl beside the output."""
        if self.policy == "stop":
            return None
        if self.reject_file is None and is_stream(self.output):
            raise UsageError(f"--on-bad-row {self.on_bad_row} with output to a stream needs --reject-file")
        return self.reject_file or str(sidecar_path(self.output, "rejects.jsonl", hidden=False))


@dataclass(frozen=True, kw_only=True)
class JobSummary:
    rows: int
    written: int
    bad_rows: int
    sentences_encoded: int
    truncated: int
    resumed_rows: int
    seconds: float
    provider: str
    precision: str
    rejects: str | None
    stage_seconds: dict[str, float]

    @property
    def pairs_per_second(self) -> float:
        """Input rows handled by this run (not those done before a resume) per second."""
        return per_second(self.rows - self.resumed_rows, self.seconds)


def per_second(count: int, seconds: float) -> float:
    """A job summary's rate: `count` over `seconds`, infinite for a job too quick to time."""
    return count / seconds if seconds > 0 else float("inf")


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """A job's options checked against the files: formats, targets, and its checkpoint (None: cannot resume)."""

    options: JobOptions
    in_format: str
    out_format: str
    rejects: str | None
    checkpoint: Checkpoint | None
    input_identity: dict[str, int] | None  # the input file as the job found it (None: stdin or a stream)


def run_job(scorer: Scorer, options: JobOptions, on_progress: Callable[[Progress], None] | None = None) -> JobSummary:
    """Score every row of `options.input` into `options.output`, written atomically with checkpoints.

    Refused before any work: an output or reject file that is the input or each other, a directory or a
    link, or that another job is writing. A bad row stops the job with BadRowError (file:line: reason)
    and leaves no output, unless `on_bad_row` is skip (no output row) or null (an output row with an empty
    score); both write the row to the reject file. After a crash, `resume=True` goes on from the checkpoint.
    `on_progress` gets the job's progress after each chunk: rows done, and the input position (bytes read).
    """
    started = time.perf_counter()
    plan = _plan(scorer, options)
    with locked([plan.options.output, plan.rejects]):
        saved = _saved_progress(plan)
        progress = saved.progress if saved else Progress()
        stats = EncodeStats(progress.encoded, progress.truncated)
        if saved is not None:
            _check_position(plan, progress, complete=saved.committing)
        if saved is not None and saved.committing:
            _finish_commit(plan, progress)
        else:
            with _opened_input(plan, progress) as table:
                progress = _score_table(scorer, plan, table, progress, stats, on_progress)
    return JobSummary(
        rows=progress.rows, written=progress.written, bad_rows=progress.bad_rows, sentences_encoded=progress.encoded,
        truncated=progress.truncated, resumed_rows=saved.progress.rows if saved else 0,
        seconds=time.perf_counter() - started, provider=scorer.providers[0],
        precision=scorer.precision, rejects=plan.rejects,
        stage_seconds=stats.seconds,
    )


def _plan(scorer: Scorer, options: JobOptions) -> _Plan:
    if options.reject_file is not None and options.policy == "stop":
        log.warning("--reject-file is not used: --on-bad-row stop writes no reject file (try skip or null)")
    input_identity = file_identity(options.input)
    in_format = format_of(options.input, options.input_format)
    out_format = format_of(options.output, options.output_format, output=True)
    rejects = options.rejects
    targets = {"output": options.output, **({"reject file": rejects} if rejects else {})}
    if list(targets.values()).count(STDIO) > 1:
        raise UsageError("the output and the reject file cannot both be stdout")
    check_no_overlap(options.input, targets)
    resumable = (is_regular_input(options.input) and not any(is_stream(path) for path in targets.values())
                 and out_format != "parquet")
    if options.stream and not (is_stream(options.output) and out_format != "parquet"):
        why = "Parquet is readable only once whole" if out_format == "parquet" else "a file output appears whole"
        raise UsageError(f"--stream writes TSV, CSV or JSONL rows to stdout or a pipe as they are scored; {why} "
                         "(drop --stream)")
    if options.resume and not resumable:
        raise UsageError("--resume needs an input file, a TSV, CSV or JSONL output file and a reject file that are "
                         "not streams")
    settings = {
        "input_format": in_format, "output_format": out_format, "header": options.header,
        "left": options.left, "right": options.right, "id_column": options.id_column,
        "predict": options.predict, "on_bad_row": options.on_bad_row,
        "rejects": os.path.abspath(rejects) if rejects else None,
        "model_manifest_sha256": scorer.model.digest, "precision": scorer.precision,
        "provider": scorer.providers[0], "kernels": kernels(), "software": software(),
    }
    checkpoint = None
    if resumable:
        identity = fingerprint(options.input, settings)
        checkpoint = Checkpoint(options.output, identity, byte_positions=in_format != "parquet")
    return _Plan(options=options, in_format=in_format, out_format=out_format, rejects=rejects, checkpoint=checkpoint,
                 input_identity=input_identity)


def _saved_progress(plan: _Plan) -> Saved | None:
    """The checkpoint when resuming (fields checked); None for a fresh start, any stale checkpoint removed."""
    if not plan.options.resume:
        if plan.checkpoint is not None and plan.checkpoint.path.exists():
            log.warning("%s: an interrupted job's checkpoint is discarded; --resume would have gone on from it",
                        plan.checkpoint.path)
            plan.checkpoint.remove()  # a stale checkpoint must never describe the new partial output
        return None
    assert plan.checkpoint is not None
    saved = plan.checkpoint.load()
    if saved is None:
        log.warning("no checkpoint to resume from: starting from the beginning")
    elif not saved.committing and not saved.progress.rows:
        raise ResumeError(f"{plan.checkpoint.path}: unusable checkpoint: it records no rows; rerun without --resume")
    else:
        log.info("resuming after line %d (%d rows done)", saved.progress.position.line, saved.progress.rows)
    return saved


def _check_position(plan: _Plan, progress: Progress, complete: bool) -> None:
    """Read the input again up to the checkpoint's position: it must end a row, after as many rows and lines
    as the checkpoint says (a position inside a row, or a wrong count, would drop or repeat rows); with
    `complete` (a checkpoint that says the job was committing), no row may follow it."""
    rows, end, more = 0, Position(0, 0), False
    with _opened_input(plan, Progress()) as table:
        for record in table.records:
            if record.end.offset > progress.position.offset:
                more = True
                break
            rows, end = rows + 1, record.end
    if complete and more:
        raise ResumeError(f"cannot resume: the checkpoint {plan.checkpoint.path if plan.checkpoint else ''} says the "
                          f"job was committing after {progress.rows} rows, but the input goes on; rerun without "
                          "--resume to start over")
    if (rows, end) != (progress.rows, progress.position):
        raise ResumeError(f"cannot resume: the checkpoint {plan.checkpoint.path if plan.checkpoint else ''} says "
                          f"{progress.rows} rows end at {progress.position}, but the input has {rows} rows ending at "
                          f"{end} there; rerun without --resume to start over")


def _finish_commit(plan: _Plan, progress: Progress) -> None:
    """A job that was killed while committing: publish what it had finished (the reject file first, the
    output last), each checked against the checkpoint, or refuse."""
    assert plan.checkpoint is not None
    targets = [(plan.rejects, progress.rejects), (plan.options.output, progress.output)]
    with signals_held():
        for target, prefix in targets:
            if target is None:
                continue
            partial = partial_path(target)
            if holds(partial, prefix):
                publish(partial, target)
            elif not holds(target, prefix):
                raise ResumeError(f"cannot resume: neither {partial} nor {target} holds the {prefix.size} bytes the "
                                  f"checkpoint {plan.checkpoint.path} recorded; rerun without --resume")
        plan.checkpoint.remove()
    log.info("the job had finished writing its files: they are complete")


@contextmanager
def _opened_input(plan: _Plan, progress: Progress) -> Iterator[Table]:
    start = progress.position if progress.rows else None
    strict_keys = plan.out_format != "jsonl"  # fixed output columns would drop a key the first rows lack
    with open_table(plan.options.input, plan.in_format, plan.options.header_choice, start,
                    strict_keys=strict_keys) as table:
        yield table


def _score_table(
    scorer: Scorer, plan: _Plan, table: Table, progress: Progress, stats: EncodeStats,
    on_progress: Callable[[Progress], None] | None,
) -> Progress:
    """Stream the table's records into the output and reject files, then commit them; the progress at the end."""
    options, checkpoint, resuming = plan.options, plan.checkpoint, progress.rows > 0
    selection = _selection(table, options)
    if table.header_doubt:
        log.warning("%s: %s", display_name(options.input), table.header_doubt)
    with ExitStack() as opened:
        output = open_sink(options.output, plan.out_format, table.columns, table.header, options.predict,
                           progress.output if resuming else None, table.types, live=options.stream)
        opened.callback(output.close)
        rejects = AtomicFile(plan.rejects, progress.rejects if resuming else None) if plan.rejects else None
        if rejects is not None:
            opened.callback(rejects.close)
        read = None
        if checkpoint is not None and checkpoint.byte_positions:
            read = InputPrefix(options.input, progress.input)
            opened.callback(read.close)
        sinks = [output, *([rejects] if rejects else [])]
        # the next chunk is read and parsed on a thread while this one is encoded (onnxruntime frees the GIL)
        chunks = opened.enter_context(closing(prefetched(chunked(table.records, options.chunk_rows))))
        scored = opened.enter_context(closing(_scored_chunks(scorer, _waited_for(chunks, stats), selection,
                                                             table.columns, options, stats)))
        first_bad: str | None = None
        writing = 0  # rows of the chunk being written: a live stream may have part of them
        try:
            for chunk, rows, rejected in scored:
                first_bad = first_bad or next(iter(rejected), None)
                warned = progress.truncated > 0
                with stats.timed("write"):
                    writing = len(chunk)
                    progress = _written(progress, chunk, rows, rejected, output, rejects, read, stats)
                    writing = 0
                    if checkpoint is not None:
                        checkpoint.save(progress)
                if stats.truncated and not warned:
                    log.warning("sentences longer than max_length %d are truncated (counted in the summary)",
                                scorer.model.tokenizer.max_length)
                if on_progress is not None:
                    on_progress(progress)
            if progress.rows and progress.bad_rows == progress.rows:
                raise InputError(_all_bad(options.input, progress.rows, first_bad))
            if not progress.rows:
                log.warning("%s has no rows%s: the output has none either", display_name(options.input),
                            " below its header" if table.header and plan.in_format in ("tsv", "csv") else "")
            _check_input_unchanged(plan)
            progress = replace(progress, output=output.sync(), rejects=rejects.sync() if rejects else progress.rejects)
            published = [*([(rejects, is_stream(plan.rejects))] if rejects and plan.rejects else []),
                         (output, is_stream(options.output))]
            _commit(progress, published, checkpoint)
        except BaseException as error:
            _abort(checkpoint, progress, error, sinks)
            if options.stream and not isinstance(error, BrokenPipeError):  # a reader that left knows what it read
                log.warning("--stream: %s already has the output of the first %d input rows%s",
                            "stdout" if options.output == STDIO else options.output, progress.rows,
                            f" (and perhaps some of the next {writing})" if writing else "")
            raise
    return progress


def _check_input_unchanged(plan: _Plan) -> None:
    """Before the commit point: the input is the file the job started on, unwritten since (rows read while
    another program rewrote or appended to it could be part old, part new: nothing of them is published)."""
    if plan.input_identity is None:
        return
    try:
        now = file_identity(plan.options.input)
    except OSError as error:
        now, why = None, os_error_text(error)
    else:
        why = ""
    changed = [name for name, value in plan.input_identity.items() if now is None or now.get(name) != value]
    if changed:
        raise InputError(f"{display_name(plan.options.input)} changed while the job read it "
                         f"({why or ', '.join(changed)}): its rows may be part old, part new, so nothing was "
                         "written; rerun once nothing writes to it")


def _all_bad(path: str, rows: int, first_bad: str | None) -> str:
    """The error of a job in which no row could be scored."""
    first = json.loads(first_bad) if first_bad else None
    example = f" (the first: line {first['line']}: {first['reason']})" if first else ""
    return f"{display_name(path)}: none of its {rows} rows could be scored{example}; nothing was written"


def _commit(progress: Progress, published: list[tuple[TextSink | ParquetSink | AtomicFile, bool]],
            checkpoint: Checkpoint | None) -> None:
    """The job's one commit point: the checkpoint marked as committing, the files published (the reject file, then
    the output: an output that exists is whole, with its rejects), then the checkpoint removed, all with stop
    signals held (see signals_held). A kill in between leaves a checkpoint from which --resume finishes the commit.
    `published` pairs each sink with whether it goes to a stream. Streams come after every file, as what a stream
    received cannot be taken back (the output first), and with signals not held: a reader that stalls or never
    comes must not make the job unkillable. A failure anywhere, a stop signal included, withdraws the files."""
    files = [sink for sink, stream in published if not stream]
    streams = [sink for sink, stream in reversed(published) if stream]
    assert checkpoint is None or not streams  # a job writing to a stream cannot resume
    with signals_held():
        if checkpoint is not None:
            checkpoint.save(progress, committing=True)
        _published(files, files)
        if checkpoint is not None:  # past the commit point: the files are complete whatever happens now
            try:
                checkpoint.remove()
            except OSError as error:
                log.warning("the output is complete, but its checkpoint could not be removed (%s); remove it, or a "
                            "--resume finds the job done", os_error_text(error))
    _published(streams, files)


def _published(sinks: list[TextSink | ParquetSink | AtomicFile],
               withdrawn: list[TextSink | ParquetSink | AtomicFile]) -> None:
    """Each sink committed in turn; on any failure, the `withdrawn` files back at their partial paths (with stop
    signals held until they are, then delivered) and the failure raised."""
    try:
        for sink in sinks:
            sink.commit()
    except BaseException:
        with signals_held(deliver=True):
            for file in withdrawn:
                _withdrawn(file)
        raise


def _withdrawn(file: TextSink | ParquetSink | AtomicFile) -> None:
    """A file a failed commit had published, back at its partial path; where even that fails, said."""
    try:
        file.withdraw()
    except OSError as error:
        log.warning("could not withdraw a file the failed commit had published: %s", os_error_text(error))


def _written(
    progress: Progress, chunk: list[Record], rows: list[ScoredRow], rejected: list[str], output: TextSink | ParquetSink,
    rejects: AtomicFile | None, read: InputPrefix | None, stats: EncodeStats,
) -> Progress:
    """Write a scored chunk and its reject lines, sync both; the progress after it."""
    output.write(rows)
    if rejects is not None:
        rejects.write("".join(rejected))
    end = chunk[-1].end
    return replace(
        progress, position=end, rows=progress.rows + len(chunk),
        written=progress.written + len(rows), bad_rows=progress.bad_rows + len(rejected),
        encoded=stats.encoded, truncated=stats.truncated,
        input=read.advance(end.offset) if read else progress.input,
        output=output.sync(), rejects=rejects.sync() if rejects else progress.rejects,
    )


def _abort(
    checkpoint: Checkpoint | None, progress: Progress, error: BaseException,
    sinks: list[TextSink | ParquetSink | AtomicFile],
) -> None:
    """After a failure: keep what --resume needs (a crash after a checkpoint), else remove every partial file: a
    bad input or a broken model would fail the same way again, and a fixed model is another job."""
    resumable = (checkpoint is not None and progress.rows > 0 and checkpoint.path.exists()
                 and not isinstance(error, (InputError, ModelOutputError, OutputChangedError)))
    if not resumable:
        for sink in sinks:
            sink.discard()
    if resumable:
        log.warning("stopped after %d rows; the same command with --resume goes on from there", progress.rows)
    elif checkpoint is not None:
        checkpoint.remove()


def _waited_for(chunks: Iterator[list[Record]], stats: EncodeStats) -> Iterator[list[Record]]:
    """`chunks`, the time spent waiting for each (reading and parsing it, where not done ahead) added to `stats`
    as 'read'."""
    while True:
        with stats.timed("read"):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


def _selection(table: Table, options: JobOptions) -> Selection:
    """The chosen columns; for a table without columns, the first row's problem (or no columns at all)."""
    if not table.columns:
        first = next(table.records, None)
        if first is None:
            return Selection(0, 1, None)  # no rows: warned about at the end
        if options.policy == "stop":
            raise BadRowError(display_name(options.input), first.line, first.problem or "no columns")
        raise InputError(f"{display_name(options.input)}: none of the first rows could be read (line {first.line}: "
                         f"{first.problem}), so its columns are unknown")
    return choose_columns(table.columns, table.header, options, display_name(options.input))


def choose_columns(columns: list[str], header: bool, options: JobOptions, name: str) -> Selection:
    """The job's sentence and id columns among an input's `columns` (UsageError naming the input when they cannot
    be chosen, or when a sentence column would be replaced by the output's own `score` or `predicted`); warns when
    the input's old `predicted` column is left out because this job writes none."""
    try:
        chosen = select_columns(columns, header, options.left, options.right, options.id_column)
    except UsageError as error:
        raise UsageError(f"{name}: {error}") from None
    replaced = [columns[i] for i in (chosen.left, chosen.right) if name_key(columns[i]) in (SCORE, PREDICTED)]
    if replaced:
        raise UsageError(f"{name}: the sentence column {replaced[0]!r} would be replaced by the output's own column "
                         "of that name; rename it in the input")
    if header and not options.predict and (old := [c for c in columns if name_key(c) == PREDICTED]):
        log.warning("%s: its %r column is left out of the output: it belongs to the old scores (--predict writes a "
                    "new one)", name, old[0])
    return chosen


def _scored_chunks(
    scorer: Scorer, chunks: Iterator[list[Record]], selection: Selection, columns: list[str], options: JobOptions,
    stats: EncodeStats,
) -> Generator[tuple[list[Record], list[ScoredRow], list[str]], None, None]:
    """Each chunk with its output rows in input order and its reject lines (BadRowError under 'stop'); the
    encoder runs the next chunk while the caller writes these, except for a live stream, which gets each chunk's
    rows before the next is read."""
    to_score = (_pairs_to_score(chunk, selection) for chunk in chunks)
    with closing(scorer.pipelined_scores(to_score, stats, ahead=not options.stream)) as scored:
        for (chunk, problems), scores in scored:
            yield chunk, *_chunk_rows(scorer, chunk, problems, scores.tolist(), selection, columns, options)


def _pairs_to_score(chunk: list[Record], selection: Selection,
                    ) -> tuple[tuple[list[Record], list[str | None] | None], list[str], list[str]]:
    """The chunk and each row's problem (None: no row has one), and the sentences of its good rows."""
    if any(map(attrgetter("problem"), chunk)):
        problems = [_problem(record, selection) for record in chunk]
    else:  # every row parsed: its sentences checked at once, and in the usual chunk all of them good
        values = [record.values for record in chunk]
        left, right = list(map(itemgetter(selection.left), values)), list(map(itemgetter(selection.right), values))
        problems = pair_problems(left, right)
        if not any(problems):
            return (chunk, None), left, right
    good = [record for record, problem in zip(chunk, problems) if problem is None]
    return (chunk, problems), [r.values[selection.left] for r in good], [r.values[selection.right] for r in good]


def _chunk_rows(
    scorer: Scorer, chunk: list[Record], problems: list[str | None] | None, scores: list[float],
    selection: Selection, columns: list[str], options: JobOptions,
) -> tuple[list[ScoredRow], list[str]]:
    """The chunk's output rows in input order, given its good rows' scores, and its reject lines."""
    if problems is None:
        predicted = list(map(scorer.threshold.__le__, scores))  # score >= threshold, compared as Python floats
        return list(map(ScoredRow._make, zip([r.values for r in chunk], [r.source for r in chunk], predicted,
                                             scores))), []
    good_scores = iter(scores)
    rows, rejected = [], []
    for record, problem in zip(chunk, problems):
        if problem is None:
            score = next(good_scores)
            rows.append(ScoredRow(record.values, record.source, score >= scorer.threshold, score))
            continue
        kept = keeps_bad_row(options.policy, display_name(options.input), record.line, problem)
        row_id = record.values[selection.id] if selection.id is not None and selection.id < len(record.values) else None
        rejected.append(reject_line(record.line, row_id, problem, record.values, raw=record.raw))
        if kept:
            values = (record.values + [None] * len(columns))[: len(columns)]
            rows.append(ScoredRow(values, record.source, None, None))
    return rows, rejected


def _problem(record: Record, selection: Selection) -> str | None:
    """Why a record cannot be scored: its own problem, else a missing, non-text or empty sentence; or None."""
    return record.problem or pair_problem(record.values[selection.left], record.values[selection.right])
