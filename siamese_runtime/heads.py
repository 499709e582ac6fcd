"""Similarity heads: two batches of encodings to one score per pair, in numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def manhattan(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """exp(-sum|u - v|): the notebook's exponent_neg_manhattan_distance, in [0, 1]."""
    return np.exp(-np.abs(left - right).sum(axis=1)).astype(np.float32)


HEADS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"manhattan": manhattan}
FORMULAS = {"manhattan": "exp(-sum(abs(u - v)))"}
