"""Parity: the exported model folder, run by the runtime, against the Keras model it came from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from siamese_runtime.scorer import Scorer
from train.model import ENCODER

TOLERANCE = 1e-5
BATCH = 256


@dataclass(frozen=True)
class ParityReport:
    pairs: int
    max_abs_encoding_diff: float
    max_abs_score_diff: float

    @property
    def passed(self) -> bool:
        return max(self.max_abs_encoding_diff, self.max_abs_score_diff) <= TOLERANCE


def check_parity(pair_model: keras.Model, scorer: Scorer, left: Sequence[str], right: Sequence[str]) -> ParityReport:
    """Keras on batches padded to their longest sentence vs the runtime's length-bucketed ONNX path."""
    tokenizer = scorer.model.tokenizer
    left_ids = tokenizer.pad(tokenizer.ids_batch(left)[0])
    right_ids = tokenizer.pad(tokenizer.ids_batch(right)[0])
    encoder = pair_model.get_layer(ENCODER)
    def encode(ids):
        return encoder(ids, training=False)

    def score(left_batch, right_batch):
        return pair_model([left_batch, right_batch], training=False)

    expected_encodings = np.concatenate([_in_batches(encode, left_ids), _in_batches(encode, right_ids)])
    expected_scores = _in_batches(score, left_ids, right_ids).reshape(-1)
    return ParityReport(
        pairs=len(left),
        max_abs_encoding_diff=float(np.max(np.abs(expected_encodings - scorer.encode([*left, *right])))),
        max_abs_score_diff=float(np.max(np.abs(expected_scores - scorer.score(left, right)))),
    )


def _in_batches(call: Callable[..., Any], *inputs: np.ndarray) -> np.ndarray:
    """`call` on consecutive slices of the inputs (Keras runs it eagerly), outputs concatenated."""
    return np.concatenate([np.asarray(call(*(x[i : i + BATCH] for x in inputs))) for i in range(0, len(inputs[0]), BATCH)])
