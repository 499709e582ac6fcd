"""Pair files as Ray Datasets, read with the local CLI's readers from any pyarrow filesystem; Parquet out."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, cast

from ..batching import chunked
from ..errors import SiameseRuntimeError
from ..io.formats import format_of, pyarrow_parquet
from ..io.readers import Record, open_table
from ..io.safe_output import partial_path
from ..io.writers import text_cell
from .cluster import require_ray

if TYPE_CHECKING:
    import pyarrow
    from pyarrow.fs import FileSystem
    from ray.data import Dataset

LINE = "line"  # the line a row starts on in its file: its row number in Parquet and headerless files
PATH = "path"  # the file a row comes from, when several files are read
PROBLEM = "_problem"  # why a row could not be parsed (column count, JSON, UTF-8), else null; never written out
NON_TEXT = "_non_text"  # JSON {column: type name} of a row's non-text values (JSON numbers, lists...), else null
RAW_VALUES = "_raw_values"  # JSON list of an unparseable row's values as read (any width), else null
RAW_ROW = "_raw_row"  # a row's bytes as the file has them where its values may not show them whole, else null
HIDDEN = (PROBLEM, NON_TEXT)
REJECT_ONLY = (RAW_VALUES, RAW_ROW)  # what a reject line needs of a row, dropped from the output
ROWS_PER_OUTPUT_FILE = 100_000  # a folder output gathers the small scoring blocks into files of this many rows


@dataclass(frozen=True)
class PairFiles:
    """Pair files of one format on one filesystem, read with the columns and header of the first."""

    paths: list[str]
    fmt: str
    columns: list[str]
    header: bool
    filesystem: FileSystem


def find_pair_files(
    paths: str | Sequence[str], input_format: str | None = None, header: bool | None = None,
    filesystem: FileSystem | None = None,
) -> PairFiles:
    """The files at `paths` (files or folders; local paths or URIs such as s3://bucket/pairs/) and their columns.

    Folders are listed recursively, leaving out hidden files and names starting with '_' (_SUCCESS, ...).
    The format comes from `input_format` or the first file's extension; `header` None detects it.
    """
    given = [paths] if isinstance(paths, str) else list(paths)
    if not given:
        raise SiameseRuntimeError("no input paths given")
    filesystem, files = _list_files(given, filesystem)
    if not files:
        raise SiameseRuntimeError(f"no pair files found at {paths}")
    fmt = format_of(files[0], input_format)
    with open_table(files[0], fmt, header, filesystem=filesystem) as table:
        columns, has_header = table.columns, table.header
    taken = sorted({LINE, PATH, *REJECT_ONLY, *HIDDEN} & set(columns))
    if taken:
        raise SiameseRuntimeError(f"the input already has a column named {', '.join(taken)}, which the ray engine adds")
    return PairFiles(files, fmt, columns, has_header, filesystem)


def read_pairs(files: PairFiles | str | Sequence[str], rows_per_block: int = 1024) -> Dataset:
    """A Dataset of the files' rows: their columns as text (null where missing), `line`, and `path` if several.

    Each file is parsed by one Ray task, streamed in blocks of `rows_per_block` rows, with the same header
    detection and row problems as the local CLI; a row that cannot be parsed is kept, its reason in a
    hidden column that `score_dataset` turns into a bad row. Split huge inputs into several files to read
    them in parallel.
    """
    ray = require_ray()
    if not isinstance(files, PairFiles):
        files = find_pair_files(files)
    items = [{PATH: path} for path in files.paths]
    # Reading takes no CPU reservation: scoring actors may hold every CPU, and readers must still run.
    rows = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        _read_files, batch_size=1, batch_format="pyarrow", num_cpus=0,
        fn_kwargs={"files": files, "rows_per_block": rows_per_block},
    )
    # Ray gathers a task's output into blocks of up to 128 MiB (one block for a small file, which only one
    # actor would score); blocks of about `rows_per_block` rows spread even one file over every actor.
    rows.context.target_max_block_size = _block_bytes(files, rows_per_block)
    return rows


def write_parquet(dataset: Dataset, target: str, filesystem: FileSystem | None = None) -> int:
    """Write `dataset` to `target`; the number of rows written.

    A target ending in .parquet is one file, streamed through this process; any other target is a folder
    of Parquet files written in parallel by the cluster. Local targets appear whole or not at all (written
    beside the target, then renamed); on object stores a failed job can leave a partial folder.
    """
    from pyarrow.fs import FileSystem, LocalFileSystem

    if filesystem is None:
        filesystem, target = FileSystem.from_uri(_uri(target))
    partial = str(partial_path(target))
    atomic = isinstance(filesystem, LocalFileSystem)
    single = target.endswith(".parquet")
    written_to = partial if atomic or single else target
    try:
        write = _write_file if single else _write_folder
        rows = write(dataset, written_to, filesystem)
    except BaseException:
        _delete(filesystem, written_to)
        raise
    if written_to != target:
        _delete(filesystem, target)
        filesystem.move(written_to, target)
    return rows


def _read_files(batch: pyarrow.Table, files: PairFiles, rows_per_block: int) -> Iterator[pyarrow.Table]:
    for path in batch[PATH].to_pylist():
        with open_table(path, files.fmt, files.header, filesystem=files.filesystem, strict_keys=True) as table:
            if table.columns != files.columns:
                raise SiameseRuntimeError(
                    f"{path}: its columns ({', '.join(table.columns)}) differ from the first file's "
                    f"({', '.join(files.columns)})"
                )
            for chunk in chunked(table.records, rows_per_block):
                yield _block(chunk, files.columns, path if len(files.paths) > 1 else None)


def _block_bytes(files: PairFiles, rows: int) -> int:
    """The size of the first file's first `rows` rows as a block (read here, on the driver)."""
    with open_table(files.paths[0], files.fmt, files.header, filesystem=files.filesystem) as table:
        return max(1, _block(list(islice(table.records, rows)), files.columns, None).nbytes)


def _block(records: list[Record], columns: list[str], path: str | None) -> pyarrow.Table:
    import pyarrow

    width = len(columns)
    rows = [(record.values + [None] * width)[:width] for record in records]
    data = {
        name: pyarrow.array([text_cell(row[i]) for row in rows], pyarrow.string())
        for i, name in enumerate(columns)
    }
    data[LINE] = pyarrow.array([record.line for record in records], pyarrow.int64())
    if path is not None:
        data[PATH] = pyarrow.array([path] * len(records), pyarrow.string())
    data[PROBLEM] = pyarrow.array([record.problem for record in records], pyarrow.string())
    # a reject line shows the row as read, wider or narrower than the columns
    data[RAW_VALUES] = pyarrow.array([json.dumps([text_cell(v) for v in record.values], ensure_ascii=False)
                                      if record.problem else None for record in records], pyarrow.string())
    data[RAW_ROW] = pyarrow.array([record.raw for record in records], pyarrow.binary())
    # the columns are text in Arrow, so remember which values were not: the local engine rejects them
    data[NON_TEXT] = pyarrow.array([_non_text(row, columns) for row in rows], pyarrow.string())
    return pyarrow.table(data)


def _non_text(row: list[object], columns: list[str]) -> str | None:
    types = {name: type(value).__name__ for name, value in zip(columns, row)
             if value is not None and not isinstance(value, str)}
    return json.dumps(types) if types else None


def _list_files(paths: list[str], filesystem: FileSystem | None) -> tuple[FileSystem, list[str]]:
    from pyarrow.fs import FileSelector, FileSystem, FileType

    found: list[str] = []
    for given in paths:
        if filesystem is None:
            filesystem, path = FileSystem.from_uri(_uri(given))
        else:
            path = given
        info = filesystem.get_file_info(path)
        if info.type == FileType.NotFound:
            raise SiameseRuntimeError(f"{given}: no such file or folder")
        if info.type == FileType.Directory:
            listed = filesystem.get_file_info(FileSelector(path, recursive=True))
            found += sorted(i.path for i in listed if i.type == FileType.File and _is_data(i.path, path))
        else:
            found.append(path)
    assert filesystem is not None
    return filesystem, found


def _is_data(path: str, folder: str) -> bool:
    """Not a hidden or bookkeeping file (.crc, _SUCCESS, _metadata), nor inside such a folder."""
    return not any(part.startswith((".", "_")) for part in PurePosixPath(path).relative_to(folder).parts)


def is_uri(path: str) -> bool:
    """Whether a Ray job reads or writes `path` through a pyarrow file system other than the local one's paths
    (s3://..., gs://..., file://...)."""
    return "://" in path


def _uri(path: str) -> str:
    """A URI for pyarrow: URIs as they are, local paths made absolute."""
    return path if is_uri(path) else os.path.abspath(path)


def arrow_batches(dataset: Dataset) -> Iterator[pyarrow.Table]:
    """The dataset's blocks as Arrow tables, as they come."""
    return cast("Iterator[pyarrow.Table]", dataset.iter_batches(batch_format="pyarrow", batch_size=None))


def _write_file(dataset: Dataset, path: str, filesystem: FileSystem) -> int:
    parquet = pyarrow_parquet()
    writer, rows = None, 0
    try:
        for batch in arrow_batches(dataset):
            if writer is None:
                writer = parquet.ParquetWriter(path, batch.schema, filesystem=filesystem)
            writer.write_table(batch)
            rows += batch.num_rows
        if writer is None:  # no rows at all: an empty file with the dataset's columns
            writer = parquet.ParquetWriter(path, _schema(dataset), filesystem=filesystem)
    finally:
        if writer is not None:
            writer.close()
    return rows


def _write_folder(dataset: Dataset, path: str, filesystem: FileSystem) -> int:
    import pyarrow.dataset

    filesystem.create_dir(path)  # a dataset with no rows writes no files: still an (empty) folder
    dataset.write_parquet(path, filesystem=filesystem, min_rows_per_file=ROWS_PER_OUTPUT_FILE)
    return pyarrow.dataset.dataset(path, filesystem=filesystem, format="parquet").count_rows()


def _schema(dataset: Dataset) -> pyarrow.Schema:
    import pyarrow

    schema = dataset.schema()
    return pyarrow.schema(list(zip(schema.names, schema.types))) if schema is not None else pyarrow.schema([])


def _delete(filesystem: FileSystem, path: str) -> None:
    from pyarrow.fs import FileType

    kind = filesystem.get_file_info(path).type
    if kind == FileType.Directory:
        filesystem.delete_dir(path)
    elif kind == FileType.File:
        filesystem.delete_file(path)
