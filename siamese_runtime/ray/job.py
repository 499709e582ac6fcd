"""A file job on a Ray cluster: the local job's options and bad-row policies, scored by an actor pool into Parquet."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bad_rows import reject_line
from ..errors import BadRowError, UsageError
from ..io.safe_output import AtomicFile, check_distinct, locked
from ..job import JobOptions, choose_columns, per_second
from ..providers import is_gpu_request
from ..settings import ScorerSettings
from .cluster import check_resources, connected
from .files import LINE, PATH, RAW_ROW, RAW_VALUES, find_pair_files, is_uri, read_pairs, write_parquet
from .scoring import REASON, PairColumns, RejectCollector, score_dataset

if TYPE_CHECKING:
    import pyarrow

TEXT_OUTPUTS = (".tsv", ".txt", ".csv", ".jsonl", ".ndjson")
CHUNK_ROWS = 1024  # rows per actor call by default: small batches spread even one file over many actors


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """Where a job runs (None: RAY_ADDRESS, else a new local cluster) and its actor pool."""

    address: str | None = None
    actors: int = 1
    num_cpus: float = 1
    num_gpus: float = 0

    @classmethod
    def for_scorer(cls, settings: ScorerSettings, *, num_gpus: float | None = None, **options: Any) -> ClusterOptions:
        """Options for actors of a Scorer with `settings`; `num_gpus` None: one GPU per actor when its provider is
        a GPU (cuda, cuda:N, ...), else none."""
        gpus = num_gpus if num_gpus is not None else 1 if is_gpu_request(settings.providers) else 0
        return cls(num_gpus=gpus, **options)


@dataclass(frozen=True, kw_only=True)
class RayJobSummary:
    rows: int
    written: int
    bad_rows: int
    seconds: float
    rejects: str | None

    @property
    def pairs_per_second(self) -> float:
        return per_second(self.rows, self.seconds)


def run_ray_job(settings: ScorerSettings, options: JobOptions, cluster: ClusterOptions) -> RayJobSummary:
    """Score `options.input` (files, folders or URIs) into Parquet at `options.output` on a Ray cluster.

    Columns, header detection and bad-row policies are those of the local job; the output is one Parquet
    file (OUTPUT.parquet) or a folder of them, with `line` (and `path`) identifying rows when the input
    has no id column. Rows are in no particular order. Under skip and null, bad rows go to the same JSONL
    reject file as the local job's. There is no --resume: a failed job is run again.
    """
    started = time.perf_counter()
    _check(options)
    with locked([path for path in (options.output, options.rejects) if path and not is_uri(path)]), \
            connected(cluster.address):
        check_resources(cluster.address, cluster.actors, cluster.num_cpus, cluster.num_gpus)
        files = find_pair_files(options.input, options.input_format, options.header_choice)
        selection = choose_columns(files.columns, files.header, options, options.input)
        columns = PairColumns(files.columns[selection.left], files.columns[selection.right],
                              None if selection.id is None else files.columns[selection.id])
        pairs = read_pairs(files, options.chunk_rows)
        collector = RejectCollector() if options.rejects else None
        scored = score_dataset(
            pairs, columns, settings, actors=cluster.actors, batch_size=options.chunk_rows, num_cpus=cluster.num_cpus,
            num_gpus=cluster.num_gpus, predict=options.predict, on_bad_row=options.on_bad_row, source=options.input,
            rejects=collector,
        )
        try:
            written = write_parquet(scored, options.output)
        except BadRowError as error:  # raised in an actor: Ray's wrapper carries the remote traceback
            raise BadRowError(error.source, error.line, error.reason) from None
        rejects = options.rejects
        bad = 0
        if collector is not None and rejects:
            bad = _write_rejects(collector.collected(columns), rejects, files.columns, columns)
    rows = written + bad if options.on_bad_row == "skip" else written
    return RayJobSummary(rows=rows, written=written, bad_rows=bad, seconds=time.perf_counter() - started,
                         rejects=rejects)


def _check(options: JobOptions) -> None:
    if options.resume:
        raise UsageError("--resume is for the local engine; rerun a failed ray job from the start")
    if options.stream:
        raise UsageError("--stream is for the local engine; the ray engine writes Parquet")
    if options.input == "-" or options.output == "-":
        raise UsageError("the ray engine reads and writes files, not stdin or stdout")
    if options.output_format not in (None, "parquet") or Path(options.output).suffix.lower() in TEXT_OUTPUTS:
        raise UsageError("the ray engine writes Parquet: give OUTPUT.parquet (one file) or a folder")
    if options.on_bad_row != "stop" and options.reject_file is None and is_uri(options.output):
        raise UsageError(f"--on-bad-row {options.on_bad_row} with a remote output needs --reject-file")
    targets = [("output", options.output), ("reject file", options.rejects or "")]
    check_distinct(options.input, [(label, path) for label, path in targets if path and not is_uri(path)])


def _write_rejects(rejects: pyarrow.Table, path: str, input_columns: list[str], columns: PairColumns) -> int:
    """Bad rows (in input order) as the local job's reject file (JSONL: line, id, reason, values)."""
    file = AtomicFile(path)
    try:
        file.write("".join(_reject_line(row, input_columns, columns) for row in rejects.to_pylist()))
    except BaseException:
        file.discard()
        raise
    file.commit()
    return rejects.num_rows


def _reject_line(row: dict, input_columns: list[str], columns: PairColumns) -> str:
    values = json.loads(row[RAW_VALUES]) if row.get(RAW_VALUES) else [row[name] for name in input_columns]
    return reject_line(row[LINE], row[columns.id] if columns.id else None, row[REASON], values, row.get(PATH),
                       row.get(RAW_ROW))
