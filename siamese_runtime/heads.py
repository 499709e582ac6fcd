"""Similarity heads: two batches of encodings to one score in [0, 1] per pair, in numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPSILON = 1e-7  # Keras's backend epsilon, as in the notebook's euclidean_distance


def manhattan(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """exp(-sum|u - v|): the notebook's exponent_neg_manhattan_distance."""
    return np.exp(-np.abs(left - right).sum(axis=1)).astype(np.float32)


def euclidean(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """exp(-d) of the notebook's euclidean_distance d = sqrt(max(sum (u - v)^2, eps))."""
    return np.exp(-np.sqrt(np.maximum(np.square(left - right).sum(axis=1), EPSILON))).astype(np.float32)


def cosine(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(1 + cos(u, v)) / 2."""
    norms = np.maximum(np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1), EPSILON)
    return ((1 + (left * right).sum(axis=1) / norms) / 2).astype(np.float32)


HEADS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "manhattan": manhattan,
    "euclidean": euclidean,
    "cosine": cosine,
}
FORMULAS = {
    "manhattan": "exp(-sum(abs(u - v)))",
    "euclidean": "exp(-sqrt(max(sum((u - v)^2), 1e-7)))",
    "cosine": "(1 + dot(u, v) / max(|u| |v|, 1e-7)) / 2",
}
