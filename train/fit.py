"""Training: length-bucketed batches, Nadam with binary cross-entropy, early stopping, threshold choice."""

from __future__ import annotations

import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from siamese_runtime.tokenizer import Tokenizer

from .data import Pairs
from .model import EMBEDDING, ENCODER, LOSSES


class EpochSeconds(keras.callbacks.Callback):
    """Adds each epoch's wall-clock seconds to the logs, like the notebook's per-epoch line."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.started


class BucketedPairs:
    """Batches of pairs with similar lengths, each padded only to its own longest sentence."""

    def __init__(
        self,
        pairs: Pairs,
        tokenizer: Tokenizer,
        batch_size: int,
        seed: int,
        shuffle: bool,
        weights: np.ndarray | None = None,
    ) -> None:
        self.left, _ = tokenizer.ids_batch(pairs.left)
        self.right, _ = tokenizer.ids_batch(pairs.right)
        self.labels = pairs.labels
        self.weights = np.ones(len(pairs), np.float32) if weights is None else weights.astype(np.float32)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.batches = self._make_batches()

    def _make_batches(self) -> list[np.ndarray]:
        longest = np.array([max(len(a), len(b)) for a, b in zip(self.left, self.right)], dtype=np.float64)
        jitter = self.rng.random(len(longest)) if self.shuffle else np.zeros(len(longest))
        order = np.lexsort((jitter, longest))
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            self.rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        batch = self.batches[index]
        left = self.tokenizer.pad([self.left[i] for i in batch])
        right = self.tokenizer.pad([self.right[i] for i in batch])
        return (left, right), self.labels[batch], self.weights[batch]

    def as_dataset(self) -> tf.data.Dataset:
        """A tf.data pipeline with free batch and length axes; each pass reshuffles the buckets."""
        def generate():
            if self.shuffle:
                self.batches = self._make_batches()
            for index in range(len(self)):
                yield self[index]

        ids = tf.TensorSpec((None, None), tf.int32)
        per_pair = tf.TensorSpec((None,), tf.float32)
        signature = ((ids, ids), per_pair, per_pair)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


def fit(
    model: keras.Model,
    train: BucketedPairs,
    validation: BucketedPairs,
    epochs: int,
    warmup_epochs: int,
    patience: int,
    learning_rate: float,
    head: str = "manhattan",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Nadam + binary cross-entropy (contrastive loss for the Euclidean head), as the notebook; returns the
    per-epoch history.

    The first `warmup_epochs` train with the char embeddings frozen (the fresh LSTMs must not wreck the
    pretrained vectors), then the embeddings are fine-tuned too. The learning rate halves when the
    validation loss stalls; training stops early on it and restores the best weights.
    """
    embedding = model.get_layer(ENCODER).get_layer(EMBEDDING)
    fine_tune = embedding.trainable
    phases = [(warmup_epochs, False), (epochs, fine_tune)] if fine_tune and warmup_epochs else [(epochs, fine_tune)]
    history: dict[str, list[float]] = {}
    done = 0
    for until, trainable in phases:
        embedding.trainable = trainable
        model.compile(
            optimizer=keras.optimizers.Nadam(learning_rate=learning_rate),
            loss=LOSSES[head],
            weighted_metrics=["accuracy"],
        )
        schedule = [
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=max(1, patience - 1)),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        ]
        phase = model.fit(train.as_dataset(), validation_data=validation.as_dataset(), initial_epoch=done,
                          epochs=until, shuffle=False, callbacks=[*schedule, *callbacks, EpochSeconds()], verbose=2)
        for key, values in phase.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        done += len(phase.history["loss"])
    return history


def predict_scores(model: keras.Model, pairs: BucketedPairs) -> np.ndarray:
    """Scores for every pair of an unshuffled BucketedPairs, in the pairs' original order."""
    scores = np.empty(len(pairs.labels), dtype=np.float32)
    for index in range(len(pairs)):
        (left, right), _, _ = pairs[index]
        scores[pairs.batches[index]] = model.predict_on_batch([left, right]).reshape(-1)
    return scores


def best_threshold(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The threshold maximizing class-balanced accuracy (the mean of the recalls of both classes),
    averaged over `groups` (e.g. source files) when given.

    The loss balances the classes of each file, so the scores carry no file's prior; the threshold
    must not reintroduce one (ATEC's 22% positives would push it up, costing every balanced file).
    Candidates are midpoints between neighbouring distinct scores.
    """
    groups = np.zeros(len(scores), np.int64) if groups is None else groups
    distinct = np.unique(scores)
    candidates = np.concatenate(
        [[distinct[0]], (distinct[:-1] + distinct[1:]) / 2, [np.nextafter(distinct[-1], np.inf)]]
    )
    balanced_accuracy = np.zeros(len(candidates))
    for group in np.unique(groups):
        member = groups == group
        positives = np.sort(scores[member & (labels == 1)])
        negatives = np.sort(scores[member & (labels == 0)])
        if len(positives):
            balanced_accuracy += (1 - np.searchsorted(positives, candidates, "left") / len(positives)) / 2
        if len(negatives):
            balanced_accuracy += np.searchsorted(negatives, candidates, "left") / len(negatives) / 2
    return float(min(candidates[int(np.argmax(balanced_accuracy))], 1.0))
