"""Parity: the exported model folder, run by the runtime, against the Keras model it came from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from siamese_runtime.scorer import Scorer
from siamese_runtime.session import new_session
from train.model import ENCODER

from .pair_graph import LEFT, RIGHT

TOLERANCE = 1e-5
BATCH = 256


@dataclass(frozen=True)
class ParityReport:
    pairs: int
    max_abs_encoding_diff: float
    max_abs_score_diff: float
    max_abs_pair_diff: float | None = None

    @property
    def passed(self) -> bool:
        diffs = [self.max_abs_encoding_diff, self.max_abs_score_diff, self.max_abs_pair_diff or 0.0]
        return max(diffs) <= TOLERANCE

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def check_parity(
    pair_model: keras.Model, scorer: Scorer, left: Sequence[str], right: Sequence[str], pair_path: Path | None = None
) -> ParityReport:
    """Keras on batches padded to their longest sentence vs the runtime's length-bucketed ONNX path,
    and, given `pair_path`, vs pair.onnx on the same padded batches."""
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
    if (calibration := scorer.model.calibration) is not None:  # the runtime's score is the calibrated probability
        expected_scores = calibration(expected_scores)
    pair_diff = None
    if pair_path is not None:
        session = new_session(pair_path)

        def pair_onnx(left_batch, right_batch):
            return session.run(None, {LEFT: left_batch, RIGHT: right_batch})[0]

        pair_diff = float(np.max(np.abs(expected_scores - _in_batches(pair_onnx, left_ids, right_ids))))
    return ParityReport(
        pairs=len(left),
        max_abs_encoding_diff=float(np.max(np.abs(expected_encodings - scorer.encode([*left, *right])))),
        max_abs_score_diff=float(np.max(np.abs(expected_scores - scorer.score(left, right)))),
        max_abs_pair_diff=pair_diff,
    )


def _in_batches(call: Callable[..., Any], *inputs: np.ndarray) -> np.ndarray:
    """`call` on consecutive slices of the inputs (Keras runs it eagerly), outputs concatenated."""
    starts = range(0, len(inputs[0]), BATCH)
    return np.concatenate([np.asarray(call(*(x[i : i + BATCH] for x in inputs))) for i in starts])
