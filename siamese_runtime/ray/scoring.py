"""Scoring a Ray Dataset of pairs with an actor pool of Scorers, one onnxruntime session per actor."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import numpy as np

from ..bad_rows import SENTENCE_LABELS, bad_row_policy, keeps_bad_row, non_text_problem, pair_problem
from ..errors import SiameseRuntimeError, UsageError
from ..io.columns import PREDICTED, SCORE
from ..scorer import EncodeStats, Scorer
from ..settings import ScorerSettings
from .cluster import require_ray
from .files import HIDDEN, LINE, NON_TEXT, PATH, PROBLEM, REJECT_ONLY

if TYPE_CHECKING:
    import pyarrow
    from ray.data import Dataset

log = logging.getLogger(__name__)

REASON = "reason"


ScorerOptions = ScorerSettings  # the name of 0.1's Ray API; kept for one release


@dataclass(frozen=True)
class PairColumns:
    """The two sentence columns, and the id column (None: rows are known by read_pairs' line and path)."""

    left: str = "sentence1"
    right: str = "sentence2"
    id: str | None = None


def score_dataset(
    dataset: Dataset,
    columns: PairColumns = PairColumns(),
    scorer: ScorerSettings | None = None,
    *,
    actors: int = 1,
    batch_size: int = 1024,
    num_cpus: float = 1,
    num_gpus: float = 0,
    predict: bool = False,
    on_bad_row: str = "stop",
    source: str = "dataset",
    rejects: RejectCollector | None = None,
) -> Dataset:
    """`dataset` with a float32 `score` column last (and bool `predicted` before it): one row per input row.

    Each of `actors` actors loads one Scorer of `scorer` (None: the defaults) and takes `num_cpus` CPUs and
    `num_gpus` GPUs (use providers "cuda" with num_gpus=1); intra-op threads default to the actor's CPUs. A row is
    known by `columns.id`, else by `line` (and `path`) from read_pairs, which are then kept in the output. A bad row
    (missing or empty text, or unparseable in its file), when the result is consumed: "stop" raises
    BadRowError naming `source` (or its path) and its line or id; "skip" leaves it out; "null" keeps it with
    null `score` and `predicted`. The bad rows for a reject file: `rejects` (a RejectCollector) receives them as
    they are met, in the scoring pass; or `rejected_rows` lists them, in a pass of their own.
    """
    ray = require_ray()
    bad_row_policy(on_bad_row)
    scorer = scorer or ScorerSettings()
    if scorer.session_options is not None:
        raise UsageError("session_options cannot travel to Ray actors (onnxruntime's SessionOptions do not pickle); "
                         "give the settings they stand for, such as intra_op_num_threads")
    threads = scorer.intra_op_num_threads or max(1, round(num_cpus))
    scored = dataset.map_batches(
        _PairScorer, batch_format="pyarrow", batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=num_cpus, num_gpus=num_gpus,
        fn_constructor_kwargs={
            "scorer": replace(scorer, intra_op_num_threads=threads), "columns": columns,
            "predict": predict, "on_bad_row": on_bad_row, "source": source, "rejects": rejects,
        },
    )
    scored.context.raise_original_map_exception = True  # BadRowError itself, not Ray's wrapper
    return scored


def rejected_rows(dataset: Dataset, columns: PairColumns = PairColumns()) -> Dataset:
    """The rows that score_dataset counts as bad, with their `reason` (no model is loaded); rows read by
    read_pairs that could not be parsed into the columns also carry `_raw_values`, JSON of the row as read."""
    return dataset.map_batches(_rejected, batch_format="pyarrow",  # type: ignore[arg-type]  # columns: fn_kwargs
                               fn_kwargs={"columns": columns})


class RejectCollector:
    """The bad rows met by a pool of scoring actors (each batch's sent as it is scored), held by one Ray actor."""

    def __init__(self) -> None:
        # Zero CPUs: an actor of Ray's default resources needs a free CPU to be placed, and the scoring actors
        # that wait on this one may hold them all.
        self.actor = require_ray().remote(num_cpus=0)(_Rejects).remote()

    def add(self, rejects: pyarrow.Table) -> None:
        """Hand over a batch's bad rows; returns once they are held, so a finished pass has handed over all."""
        require_ray().get(self.actor.add.remote(rejects))

    def collected(self, columns: PairColumns) -> pyarrow.Table:
        """Every bad row handed over, once each (a retried batch sends its rows again), in input order."""
        import pyarrow

        tables = require_ray().get(self.actor.tables.remote())
        if not tables:
            return pyarrow.table({REASON: pyarrow.array([], pyarrow.string())})
        table = pyarrow.concat_tables(tables, promote_options="default")
        key = [name for name in (PATH, LINE) if name in table.column_names] or ([columns.id] if columns.id else [])
        table = table.sort_by([(name, "ascending") for name in key])
        keys = list(zip(*(table[name].to_pylist() for name in key)))
        first = [index == 0 or keys[index] != keys[index - 1] for index in range(len(keys))]
        return table.filter(pyarrow.array(first))


class _Rejects:
    """The Ray actor behind a RejectCollector."""

    def __init__(self) -> None:
        self.held: list[pyarrow.Table] = []

    def add(self, rejects: pyarrow.Table) -> None:
        self.held.append(rejects)

    def tables(self) -> list[pyarrow.Table]:
        return self.held


class _PairScorer:
    """One actor of the pool: loads its Scorer (one onnxruntime session) once, then scores batches."""

    def __init__(
        self, scorer: ScorerSettings, columns: PairColumns, predict: bool, on_bad_row: str, source: str,
        rejects: RejectCollector | None,
    ) -> None:
        self.scorer = Scorer.from_settings(scorer)
        self.columns, self.predict, self.source, self.rejects = columns, predict, source, rejects
        self.policy = bad_row_policy(on_bad_row)
        self.stats = EncodeStats()
        self.warned = False

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        import pyarrow

        if self.columns.id is None and LINE not in batch.column_names:
            raise SiameseRuntimeError(
                "rows need an id to match them with their scores: give the id column, or read the files "
                "with read_pairs, which numbers them"
            )
        problems = batch_problems(batch, self.columns)
        good = np.array([problem is None for problem in problems], dtype=bool)
        if not good.all():
            first = int(np.argmin(good))
            where = _row_name(batch, first, self.columns, self.source)
            keep = keeps_bad_row(self.policy, *where, str(problems[first]))
            if self.rejects is not None:
                self.rejects.add(_bad_rows(batch, problems))
            if not keep:
                batch, good = batch.filter(pyarrow.array(good)), good[good]
        scores = np.zeros(batch.num_rows, np.float32)
        if good.any():
            left, right = batch[self.columns.left].to_pylist(), batch[self.columns.right].to_pylist()
            scores[good] = self.scorer.score([t for t, g in zip(left, good) if g],
                                             [t for t, g in zip(right, good) if g],
                                             stats=self.stats)
            self._warn_truncated()
        dropped = {*HIDDEN, *REJECT_ONLY, PREDICTED, SCORE, *((LINE, PATH) if self.columns.id is not None else ())}
        table = batch.select([name for name in batch.column_names if name not in dropped])
        if self.predict:
            table = table.append_column(PREDICTED, pyarrow.array(scores >= self.scorer.threshold, mask=~good))
        return table.append_column(SCORE, pyarrow.array(scores, pyarrow.float32(), mask=~good))

    def _warn_truncated(self) -> None:
        if self.stats.truncated and not self.warned:
            self.warned = True
            log.warning("sentences longer than max_length %d are truncated", self.scorer.model.tokenizer.max_length)


def batch_problems(batch: pyarrow.Table, columns: PairColumns) -> list[str | None]:
    """Why each row of `batch` cannot be scored (its parse problem, then its sentences'), or None."""
    missing = [name for name in (columns.left, columns.right) if name not in batch.column_names]
    if missing:
        raise SiameseRuntimeError(
            f"no column named {', '.join(missing)}; the columns are {', '.join(batch.column_names)}")
    parsed = cast("list[str | None]", _column_or_nulls(batch, PROBLEM))
    non_text = [json.loads(cast(str, types)) if types else {} for types in _column_or_nulls(batch, NON_TEXT)]
    pairs = zip(parsed, non_text, batch[columns.left].to_pylist(), batch[columns.right].to_pylist())
    return [problem or _non_text_problem(types, columns) or pair_problem(left, right)
            for problem, types, left, right in pairs]


def _column_or_nulls(batch: pyarrow.Table, name: str) -> list[object]:
    return batch[name].to_pylist() if name in batch.column_names else [None] * batch.num_rows


def _non_text_problem(types: dict[str, str], columns: PairColumns) -> str | None:
    """The local engine's reason for a sentence that was a JSON number, list, ... rather than text."""
    for name, label in zip((columns.left, columns.right), SENTENCE_LABELS):
        if name in types:
            return non_text_problem(label, types[name])
    return None


def _row_name(batch: pyarrow.Table, row: int, columns: PairColumns, source: str) -> tuple[str, int | str]:
    """Where a row comes from, for messages: its file (or `source`) and its line, else its id."""
    path = batch[PATH][row].as_py() if PATH in batch.column_names else source
    key = LINE if LINE in batch.column_names else columns.id
    return path, batch[key][row].as_py()


def _rejected(batch: pyarrow.Table, columns: PairColumns) -> pyarrow.Table:
    return _bad_rows(batch, batch_problems(batch, columns))


def _bad_rows(batch: pyarrow.Table, problems: list[str | None]) -> pyarrow.Table:
    """The rows of `batch` with a problem, with it as their `reason`."""
    import pyarrow

    bad = pyarrow.array([problem is not None for problem in problems])
    table = batch.filter(bad)
    table = table.drop_columns([name for name in HIDDEN if name in table.column_names])
    return table.append_column(REASON, pyarrow.array([p for p in problems if p is not None], pyarrow.string()))
