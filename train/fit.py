"""Training: length-bucketed batches, Nadam with binary cross-entropy, early stopping, threshold choice."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from siamese_runtime.tokenizer import Tokenizer

from .data import Pairs


class BucketedPairs:
    """Batches of pairs with similar lengths, each padded only to its own longest sentence."""

    def __init__(self, pairs: Pairs, tokenizer: Tokenizer, batch_size: int, seed: int, shuffle: bool) -> None:
        self.left, _ = tokenizer.ids_batch(pairs.left)
        self.right, _ = tokenizer.ids_batch(pairs.right)
        self.labels = pairs.labels
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
        return (left, right), self.labels[batch]

    def as_dataset(self) -> tf.data.Dataset:
        """A tf.data pipeline with free batch and length axes; each pass reshuffles the buckets."""
        def generate():
            if self.shuffle:
                self.batches = self._make_batches()
            for index in range(len(self)):
                yield self[index]

        ids = tf.TensorSpec((None, None), tf.int32)
        signature = ((ids, ids), tf.TensorSpec((None,), tf.float32))
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


def fit(
    model: keras.Model,
    train: BucketedPairs,
    validation: BucketedPairs,
    epochs: int,
    patience: int,
    learning_rate: float,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Nadam + binary cross-entropy; stops early on validation loss and restores the best weights."""
    model.compile(
        optimizer=keras.optimizers.Nadam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    return model.fit(train.as_dataset(), validation_data=validation.as_dataset(), epochs=epochs, shuffle=False,
                     callbacks=[stop, *callbacks], verbose=2)


def predict_scores(model: keras.Model, pairs: BucketedPairs) -> np.ndarray:
    """Scores for every pair of an unshuffled BucketedPairs, in the pairs' original order."""
    scores = np.empty(len(pairs.labels), dtype=np.float32)
    for index in range(len(pairs)):
        (left, right), _ = pairs[index]
        scores[pairs.batches[index]] = model.predict_on_batch([left, right]).reshape(-1)
    return scores


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The score threshold that maximizes accuracy (midpoint between neighbouring scores)."""
    order = np.argsort(scores)
    sorted_scores, sorted_labels = scores[order], labels[order]
    # predicting positive for every index >= k: correct = negatives below k + positives from k
    negatives_below = np.concatenate([[0], np.cumsum(sorted_labels == 0)])
    positives_from = np.concatenate([np.cumsum((sorted_labels == 1)[::-1])[::-1], [0]])
    k = int(np.argmax(negatives_below + positives_from))
    if k == 0:
        return float(sorted_scores[0])
    if k == len(scores):
        return math.nextafter(float(sorted_scores[-1]), math.inf)
    return float((sorted_scores[k - 1] + sorted_scores[k]) / 2)
