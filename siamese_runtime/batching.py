"""Batching for the encoder: each distinct sentence once, length-sorted batches, input order restored."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def distinct(sentences: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct sentences in first-seen order, and for each input its index among them."""
    index: dict[str, int] = {}
    positions = np.fromiter((index.setdefault(s, len(index)) for s in sentences), dtype=np.int64, count=len(sentences))
    return list(index), positions


def length_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, each padded size within `token_budget`.

    Sorting by length means a batch pads to its own longest sentence, not the file's.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        end = start + 1
        # lengths ascend, so the last member is the longest and sets the padded width
        while end < len(order) and end - start < max_batch_size and (end - start + 1) * max(lengths[order[end]], 1) <= token_budget:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
