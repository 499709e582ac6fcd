"""Distillation: the averaged scores of finished runs (teachers) on the training pairs, mixed into the targets.

A teacher must have held out exactly the student's validation pairs and tokenized with its vocabulary: else it
has trained on pairs the student is judged on, and its scores would leak them into the targets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np

from siamese_runtime.tokenizer import Tokenizer

from .data import Pairs
from .fit import BucketedPairs, predict_scores
from .run_directory import RunDirectory, RunDirectoryError, validation_text

log = logging.getLogger(__name__)
PREDICT_BATCH = 256


def teacher_scores(teachers: Sequence[str], train: Pairs, validation: Pairs, tokenizer: Tokenizer) -> np.ndarray:
    """The mean of the teachers' scores on `train`, after checking each held out `validation` and shares the
    vocabulary."""
    data = BucketedPairs(train, tokenizer, PREDICT_BATCH, seed=0, shuffle=False)
    total = np.zeros(len(train), dtype=np.float64)
    for path in teachers:
        run = RunDirectory.load(path)
        _check_teacher(run, validation, tokenizer)
        model = keras.models.load_model(run.model_path, safe_mode=True, compile=False)
        scores = predict_scores(model, data)
        log.info("teacher %s: mean score %.3f on %d training pairs", path, float(scores.mean()), len(scores))
        total += scores
    return (total / len(teachers)).astype(np.float32)


def _check_teacher(run: RunDirectory, validation: Pairs, tokenizer: Tokenizer) -> None:
    ours = validation_text(validation.left, validation.right, validation.labels)
    if run.validation_path.read_text(encoding="utf-8") != ours:
        raise RunDirectoryError(f"{run.path}: held out other validation pairs than this run (train it with the "
                                "same data, --validation-fraction and --seed or --split-seed); it may have trained "
                                "on this run's")
    if run.tokenizer().to_json() != tokenizer.to_json():
        raise RunDirectoryError(f"{run.path}: its vocabulary differs from this run's; a teacher must share it")


def soft_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x the 0/1 labels + weight x the teachers' mean score."""
    return ((1.0 - weight) * labels + weight * teacher).astype(np.float32)
