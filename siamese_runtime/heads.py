"""Similarity heads: two batches of encodings to one score in [0, 1] per pair, in numpy; the learned head's
weights and the calibration of scores into probabilities."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

EPSILON = 1e-7  # Keras's backend epsilon, as in the notebook's euclidean_distance
Head = Callable[[np.ndarray, np.ndarray], np.ndarray]


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


def pair_features(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """(|u - v|, u * v): what the learned head sees, the same whichever side is which."""
    return np.concatenate([np.abs(left - right), left * right], axis=1)


@dataclass(frozen=True)
class LearnedHead:
    """The "mlp" head: sigmoid(relu(features @ hidden + hidden_bias) @ output + output_bias)."""

    hidden: np.ndarray  # [2 d, units]
    hidden_bias: np.ndarray  # [units]
    output: np.ndarray  # [units, 1]
    output_bias: np.ndarray  # [1]

    WEIGHTS = ("hidden", "hidden_bias", "output", "output_bias")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], encoding_dim: int) -> LearnedHead:
        """From named float32 arrays; ValueError says which is missing or of the wrong shape."""
        if missing := [name for name in cls.WEIGHTS if name not in arrays]:
            raise ValueError(f"lacks the arrays {', '.join(missing)}")
        head = cls(*(np.ascontiguousarray(arrays[name], np.float32) for name in cls.WEIGHTS))
        units = head.hidden_bias.shape[0] if head.hidden_bias.ndim == 1 else -1
        expected = {"hidden": (2 * encoding_dim, units), "hidden_bias": (units,), "output": (units, 1),
                    "output_bias": (1,)}
        for name, shape in expected.items():
            if getattr(head, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(head, name).shape}, expected {shape}")
            if not np.isfinite(getattr(head, name)).all():
                raise ValueError(f"{name} holds values that are not finite numbers")
        return head

    def __call__(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Each pair's score has the same bits whatever else is in the call, on every CPU: every step is done
        row by row. The hidden layer is numpy's own einsum loop, not BLAS (whose kernels, chosen by CPU and
        thread count, round a row by its position in a block: on AVX2 a pair's score moved by 1e-7 with its
        neighbours); the output unit is a row-wise sum whose order depends only on the number of units."""
        features = np.ascontiguousarray(pair_features(left, right), np.float32)
        hidden = np.einsum("pf,fu->pu", features, self.hidden, optimize=False)
        hidden = np.maximum(hidden + self.hidden_bias, 0)
        logits = (hidden * self.output[:, 0]).sum(axis=1) + self.output_bias[0]
        return (0.5 * (1 + np.tanh(0.5 * logits))).astype(np.float32)  # sigmoid, without overflow


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of a head's score s into a probability: sigmoid(slope * logit(s) + intercept), with s
    clipped to [1e-7, 1 - 1e-7]. Increasing (slope > 0): it never reorders pairs."""

    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        clipped = np.clip(scores.astype(np.float64), EPSILON, 1 - EPSILON)
        logits = np.log(clipped) - np.log1p(-clipped)
        return (0.5 * (1 + np.tanh(0.5 * (self.slope * logits + self.intercept)))).astype(np.float32)


def calibrated(head: Head, calibration: Calibration | None) -> Head:
    """`head` followed by `calibration`, or `head` itself when there is none."""
    if calibration is None:
        return head
    return lambda left, right: calibration(head(left, right))


HEADS: dict[str, Head] = {
    "manhattan": manhattan,
    "euclidean": euclidean,
    "cosine": cosine,
}
FORMULAS = {
    "manhattan": "exp(-sum(abs(u - v)))",
    "euclidean": "exp(-sqrt(max(sum((u - v)^2), 1e-7)))",
    "cosine": "(1 + dot(u, v) / max(|u| |v|, 1e-7)) / 2",
    "mlp": "sigmoid(relu([abs(u - v), u * v] @ hidden + hidden_bias) @ output + output_bias)",
}
LEARNED = "mlp"
