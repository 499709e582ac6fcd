"""Labeled pair files for training: loading with file:line errors, seeded splits and slices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siamese_runtime.errors import BadRowError
from siamese_runtime.pair_files import read_pair_rows
from siamese_runtime.tokenizer import normalize


@dataclass(frozen=True)
class Pairs:
    """Aligned sentence pairs, their 0/1 labels, and the index of the file each came from."""

    left: list[str]
    right: list[str]
    labels: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.left)

    def take(self, indices: np.ndarray) -> Pairs:
        return Pairs(
            [self.left[i] for i in indices], [self.right[i] for i in indices], self.labels[indices], self.sources[indices]
        )

    def sentences(self) -> list[str]:
        return self.left + self.right


def load_pairs(paths: Sequence[str]) -> Pairs:
    """Read headerless `sentence1<TAB>sentence2<TAB>label` files; a bad row raises BadRowError."""
    left: list[str] = []
    right: list[str] = []
    labels: list[int] = []
    sources: list[int] = []
    for source, path in enumerate(paths):
        for row in read_pair_rows(path):
            if len(row.columns) != 3 or row.columns[2].strip() not in ("0", "1"):
                raise BadRowError(path, row.line, "training rows need a third column, the label 0 or 1")
            left.append(row.columns[0])
            right.append(row.columns[1])
            labels.append(int(row.columns[2]))
            sources.append(source)
    return Pairs(left, right, np.asarray(labels, dtype=np.float32), np.asarray(sources, dtype=np.int64))


def balanced_weights(pairs: Pairs) -> np.ndarray:
    """Per-pair loss weights giving each class of each source file the same total weight per file.

    ATEC is 22% positive while the official tests are 50%: without this the model learns ATEC's prior.
    The weights average 1 over the pairs, so the learning rate keeps its meaning.
    """
    weights = np.zeros(len(pairs), dtype=np.float32)
    for source in np.unique(pairs.sources):
        in_source = pairs.sources == source
        for label in (0.0, 1.0):
            members = in_source & (pairs.labels == label)
            if members.any():
                weights[members] = in_source.sum() / (2 * members.sum())
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
