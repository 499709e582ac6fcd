"""The notebook's Siamese network in Keras 3: a shared encoder (mask inside) and a distance head."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from siamese_runtime.heads import EPSILON  # one epsilon for the Keras and numpy heads

ENCODER = "encoder"
EMBEDDING = "char_embedding"


@keras.saving.register_keras_serializable(package="siamese")
class ManhattanSimilarity(layers.Layer):
    """exp(-sum|u - v|), the notebook's exponent_neg_manhattan_distance."""

    def call(self, inputs):
        left, right = inputs
        return ops.exp(-ops.sum(ops.abs(left - right), axis=1, keepdims=True))


@keras.saving.register_keras_serializable(package="siamese")
class EuclideanSimilarity(layers.Layer):
    """exp(-d) of the notebook's euclidean_distance d = sqrt(max(sum (u - v)^2, eps))."""

    def call(self, inputs):
        left, right = inputs
        squared = ops.sum(ops.square(left - right), axis=1, keepdims=True)
        return ops.exp(-ops.sqrt(ops.maximum(squared, EPSILON)))


@keras.saving.register_keras_serializable(package="siamese")
class CosineSimilarity(layers.Layer):
    """(1 + cos(u, v)) / 2."""

    def call(self, inputs):
        left, right = inputs
        norms = ops.maximum(ops.norm(left, axis=1, keepdims=True) * ops.norm(right, axis=1, keepdims=True), EPSILON)
        return (1 + ops.sum(left * right, axis=1, keepdims=True) / norms) / 2


@keras.saving.register_keras_serializable(package="siamese")
def contrastive_loss(labels, scores, margin: float = 1.0):
    """Hadsell et al.'s contrastive loss on the distance d = -log(score): pulls similar pairs together,
    pushes dissimilar ones at least `margin` apart (the loss the notebook's Euclidean head goes with)."""
    labels = ops.cast(ops.reshape(labels, (-1,)), "float32")
    distance = -ops.log(ops.clip(ops.reshape(scores, (-1,)), EPSILON, 1.0))
    return labels * ops.square(distance) + (1 - labels) * ops.square(ops.relu(margin - distance))


@keras.saving.register_keras_serializable(package="siamese")
class PairDropout(layers.Layer):
    """Dropout drawing one mask for both encodings of a pair, in training only.

    Dropout inside the shared encoder draws a mask per side, so even a sentence paired with itself
    lands at a distance > 0 in training, and distances shrink at inference: the head learns a noisy,
    shifted scale. One mask for both sides keeps |u - v| unbiased and identical sentences at 0.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        left, right = inputs
        if not training or self.rate == 0:
            return left, right
        keep = keras.random.dropout(ops.ones_like(left), self.rate, seed=self.seed_generator)
        return left * keep, right * keep

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


HEADS = {"manhattan": ManhattanSimilarity, "euclidean": EuclideanSimilarity, "cosine": CosineSimilarity}
LOSSES = {"manhattan": "binary_crossentropy", "euclidean": contrastive_loss, "cosine": "binary_crossentropy"}


def build_encoder(
    embeddings: np.ndarray,
    lstm_units: Sequence[int],
    dropout: Sequence[float],
    trainable_embeddings: bool = True,
    export_graph: bool = False,
) -> keras.Model:
    """Token ids [batch, seq] -> encoding [batch, 2 * lstm_units[-1]].

    The masked Embedding lives inside the encoder, so padding never reaches the LSTMs (a nested Keras 3
    model would drop a mask handed in from outside). `export_graph=True` builds the same weights without
    mask and dropout, the last BiLSTM returning its final states: tf2onnx turns that into native ONNX LSTM
    ops, to which export/ adds the true sequence lengths.
    """
    if len(dropout) != len(lstm_units):
        raise ValueError(f"{len(dropout)} dropout rates for {len(lstm_units)} BiLSTM layers")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embedding = layers.Embedding(
        embeddings.shape[0],
        embeddings.shape[1],
        mask_zero=not export_graph,
        trainable=trainable_embeddings,
        name=EMBEDDING,
    )
    x = embedding(token_ids)
    # assigned, not passed as a Constant initializer, which .keras files would store as a huge JSON list
    embedding.embeddings.assign(embeddings)
    *inner, last = lstm_units
    for depth, (units, rate) in enumerate(zip(inner, dropout), start=1):
        x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name=f"bilstm_{depth}")(x)
        if not export_graph:
            x = layers.Dropout(rate, name=f"dropout_{depth}")(x)
    final = layers.Bidirectional(layers.LSTM(last, return_state=export_graph), name=f"bilstm_{len(lstm_units)}")
    if export_graph:
        _, forward_h, _, backward_h, _ = final(x)
        x = layers.Concatenate(name="encoding")([forward_h, backward_h])
    else:
        x = layers.Dropout(dropout[-1], name=f"dropout_{len(lstm_units)}")(final(x))
    return keras.Model(token_ids, x, name=ENCODER)


def build_pair_model(encoder: keras.Model, head: str = "manhattan", pair_dropout: float = 0.0) -> keras.Model:
    """(left ids, right ids) -> similarity [batch, 1], one encoder shared by both sides; `pair_dropout`
    drops the same encoding units on both sides in training."""
    left = keras.Input(shape=(None,), dtype="int32", name="left_ids")
    right = keras.Input(shape=(None,), dtype="int32", name="right_ids")
    encodings = [encoder(left), encoder(right)]
    if pair_dropout:
        encodings = PairDropout(pair_dropout, name="pair_dropout")(encodings)
    similarity = HEADS[head](name="similarity")(encodings)
    return keras.Model([left, right], similarity, name="siamese")
