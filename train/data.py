"""Labeled pair files for training: loading with file:line errors, seeded splits and slices."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siamese_runtime.bad_rows import bad_row_policy, keeps_bad_row, pair_problem, reject_line
from siamese_runtime.errors import SiameseRuntimeError
from siamese_runtime.io.columns import LABEL_NAME, Selection, find_named, resolve_column, select_columns
from siamese_runtime.io.formats import format_of
from siamese_runtime.io.readers import open_table
from siamese_runtime.io.safe_output import AtomicFile
from siamese_runtime.tokenizer import normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pairs:
    """Aligned sentence pairs, their 0/1 labels, and the index of the file each came from."""

    left: list[str]
    right: list[str]
    labels: np.ndarray
    sources: np.ndarray
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.left)

    def take(self, indices: np.ndarray) -> Pairs:
        return Pairs(
            [self.left[i] for i in indices],
            [self.right[i] for i in indices],
            self.labels[indices],
            self.sources[indices],
        )

    def extended(self, other: Pairs) -> Pairs:
        """These pairs, then `other`'s."""
        return Pairs(
            self.left + other.left,
            self.right + other.right,
            np.concatenate([self.labels, other.labels]),
            np.concatenate([self.sources, other.sources]),
        )

    def sentences(self) -> list[str]:
        return self.left + self.right


@dataclass(frozen=True)
class LabeledColumns:
    """Which columns hold the sentences and the label: names, or numbers counted from 1 (None: defaults)."""

    left: str | None = None
    right: str | None = None
    label: str | None = None
    header: bool | None = None


def load_pairs(
    paths: Sequence[str],
    columns: LabeledColumns = LabeledColumns(),
    on_bad_row: str = "stop",
    reject_file: str | None = None,
) -> Pairs:
    """Read labeled pair files: TSV/CSV/JSONL/Parquet, headerless (the notebook's sentence1, sentence2,
    label) or with a header, through the runtime's readers.

    A bad row (wrong column count, missing or empty sentence, label not 0/1) raises BadRowError with
    file:line:reason; with on_bad_row="skip" it is left out, counted, and written to `reject_file`.
    """
    policy = bad_row_policy(on_bad_row, ("stop", "skip"))
    left: list[str] = []
    right: list[str] = []
    labels: list[int] = []
    sources: list[int] = []
    rejects: list[str] = []
    for source, path in enumerate(paths):
        with open_table(path, format_of(path), columns.header) as table:
            if table.header_doubt:
                log.warning("%s: %s", path, table.header_doubt)
            try:
                chosen = select_columns(table.columns, table.header, columns.left, columns.right)
                label_at = _label_column(table.columns, table.header, columns.label)
            except SiameseRuntimeError as error:
                raise SiameseRuntimeError(f"{path}: {error}") from None
            for record in table.records:
                problem = _labeled_problem(record.problem, record.values, chosen, label_at)
                if problem is not None:
                    keeps_bad_row(policy, path, record.line, problem)  # raises under stop; skip keeps none
                    rejects.append(reject_line(record.line, None, problem, record.values, path, record.raw))
                    continue
                left.append(str(record.values[chosen.left]))
                right.append(str(record.values[chosen.right]))
                labels.append(int(str(record.values[label_at]).strip()))
                sources.append(source)
    if rejects:
        log.warning("skipped %d bad rows%s", len(rejects), f", listed in {reject_file}" if reject_file else "")
        if reject_file:
            file = AtomicFile(reject_file)
            file.write("".join(rejects))
            file.commit()
    return Pairs(left, right, np.asarray(labels, dtype=np.float32), np.asarray(sources, dtype=np.int64), len(rejects))


def _label_column(names: list[str], header: bool, spec: str | None) -> int:
    """The label column: as given, else one named 'label', else the third column."""
    if spec is None:
        found = find_named(LABEL_NAME, names) if header else None
        spec = "3" if found is None else str(found + 1)
    return resolve_column(spec, names, header)


def _labeled_problem(problem: str | None, values: list[object], chosen: Selection, label_at: int) -> str | None:
    if problem:
        return problem
    if label_at >= len(values) or str(values[label_at]).strip() not in ("0", "1"):
        return "training rows need a label 0 or 1"
    return pair_problem(values[chosen.left], values[chosen.right])


def balanced_weights(pairs: Pairs, file_weights: Sequence[float] | None = None) -> np.ndarray:
    """Per-pair loss weights giving each class of each source file the same total weight per file,
    times that file's weight from `file_weights` (default 1 each).

    ATEC is 22% positive while the official tests are 50%: without this the model learns ATEC's prior.
    The weights average 1 over the pairs, so the learning rate keeps its meaning.
    """
    weights = np.zeros(len(pairs), dtype=np.float32)
    for source in np.unique(pairs.sources):
        in_source = pairs.sources == source
        scale = 1.0 if file_weights is None else float(file_weights[source])
        for label in (0.0, 1.0):
            members = in_source & (pairs.labels == label)
            if members.any():
                weights[members] = scale * in_source.sum() / (2 * members.sum())
    return weights / weights.mean()


def split(pairs: Pairs, validation_fraction: float, seed: int) -> tuple[Pairs, Pairs]:
    """A seeded split into (train, validation) in which no sentence is on both sides.

    Pairs that share a sentence (after normalization) form a group, and whole groups go to one side:
    the official tests hold almost only unseen sentences (95% on BQ, 96% on LCQMC), so validation must
    too, or early stopping and the threshold are chosen on memorized sentences. Groups larger than 1%
    of the data stay in training.
    """
    groups = sentence_groups(pairs)
    sizes = np.bincount(groups)
    order = np.random.default_rng(seed).permutation(len(sizes))
    wanted, taken = round(len(pairs) * validation_fraction), 0
    chosen = np.zeros(len(sizes), dtype=bool)
    for group in order:
        if taken >= wanted:
            break
        if sizes[group] <= max(1, len(pairs) // 100):
            chosen[group] = True
            taken += sizes[group]
    in_validation = chosen[groups]
    return pairs.take(np.flatnonzero(~in_validation)), pairs.take(np.flatnonzero(in_validation))


def sentence_groups(pairs: Pairs) -> np.ndarray:
    """For each pair, the id of its connected component in the graph of normalized sentences."""
    parent: dict[str, str] = {}

    def root(sentence: str) -> str:
        while parent.setdefault(sentence, sentence) != sentence:
            parent[sentence] = parent[parent[sentence]]
            sentence = parent[sentence]
        return sentence

    keys = [(normalize(a), normalize(b)) for a, b in zip(pairs.left, pairs.right)]
    for a, b in keys:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
    ids: dict[str, int] = {}
    return np.fromiter((ids.setdefault(root(a), len(ids)) for a, _ in keys), dtype=np.int64, count=len(keys))


def sample(pairs: Pairs, limit: int | None, seed: int) -> Pairs:
    """At most `limit` pairs drawn without replacement (all of them when limit is None)."""
    if limit is None or limit >= len(pairs):
        return pairs
    return pairs.take(np.sort(np.random.default_rng(seed).choice(len(pairs), limit, replace=False)))
