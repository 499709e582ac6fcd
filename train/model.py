"""The notebook's Siamese network in Keras 3: a shared encoder (mask inside) and a distance head."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from siamese_runtime.heads import EPSILON  # one epsilon for the Keras and numpy heads

ENCODER = "encoder"
EMBEDDING = "char_embedding"
PROJECTION = "char_projection"
POOLING = "pooling"


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


@keras.saving.register_keras_serializable(package="siamese")
class MaxMeanPooling(layers.Layer):
    """Max and mean of a BiLSTM's states over each sentence's real characters (token id > 0): [batch, 2 d].

    The mask is taken from the token ids, not from Keras's mask, so the exported graph (no mask, padded
    states zero) computes the same. LSTM states lie in (-1, 1): -1 stands in for padding in the max.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        states, token_ids = inputs
        real = ops.expand_dims(ops.cast(ops.greater(token_ids, 0), states.dtype), -1)
        maximum = ops.max(ops.where(real > 0, states, -1.0), axis=1)
        # summed with time as the leading axis: onnxruntime adds a leading axis's rows one by one, in order, so
        # a sentence's sum does not depend on its batch's padding (over a middle axis it does, by ~1e-7)
        total = ops.sum(ops.transpose(states * real, (1, 0, 2)), axis=0)
        mean = total / ops.maximum(ops.sum(real, axis=1), 1.0)
        return ops.concatenate([maximum, mean], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="siamese")
class MaxMeanAttentionPooling(MaxMeanPooling):
    """Max, mean and an attention-weighted mean of a BiLSTM's states over each sentence's real characters:
    [batch, 3 d]. The attention stays inside one sentence (weights softmax(v . tanh(W h_t + b)) over its own
    characters), so each distinct sentence is still encoded once, alone.

    Batch-invariant by construction, as MaxMeanPooling: every reduction runs over time as the leading axis
    (onnxruntime reduces a leading axis row by row, in order), padding gets weight exactly 0, and the softmax
    is normalized after the weighted sum.
    """

    def __init__(self, attention_units: int = 64, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attention_units = attention_units

    def build(self, input_shape) -> None:
        width = input_shape[0][-1]
        self.kernel = self.add_weight(name="kernel", shape=(width, self.attention_units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.attention_units,), initializer="zeros")
        self.query = self.add_weight(name="query", shape=(self.attention_units, 1), initializer="glorot_uniform")

    def call(self, inputs, mask=None):
        states, token_ids = inputs
        max_mean = super().call(inputs)
        by_time = ops.transpose(states, (1, 0, 2))  # [time, batch, d]
        real = ops.transpose(ops.cast(ops.greater(token_ids, 0), states.dtype))  # [time, batch]
        scores = ops.squeeze(ops.matmul(ops.tanh(ops.matmul(by_time, self.kernel) + self.bias), self.query), -1)
        top = ops.max(ops.where(real > 0, scores, -1e9), axis=0)
        weights = ops.exp(ops.minimum(scores - top, 0.0)) * real  # <= 1 where real, exactly 0 on padding
        attended = ops.sum(by_time * ops.expand_dims(weights, -1), axis=0)
        attended = attended / ops.expand_dims(ops.maximum(ops.sum(weights, axis=0), 1e-9), -1)
        return ops.concatenate([max_mean, attended], axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "attention_units": self.attention_units}


@keras.saving.register_keras_serializable(package="siamese")
class PairFeatures(layers.Layer):
    """(|u - v|, u * v): features of a pair of encodings that do not depend on which side is which."""

    def call(self, inputs):
        left, right = inputs
        return ops.concatenate([ops.abs(left - right), left * right], axis=-1)


HEADS: dict[str, type[layers.Layer]] = {
    "manhattan": ManhattanSimilarity, "euclidean": EuclideanSimilarity, "cosine": CosineSimilarity,
}
LEARNED_HEAD = "mlp"  # (|u - v|, u * v) -> Dense(relu) -> Dense(sigmoid); weights exported to the model folder
HEAD_NAMES = (*HEADS, LEARNED_HEAD)
POOLING_LAYERS: dict[str, type[MaxMeanPooling]] = {"max-mean": MaxMeanPooling,
                                                  "max-mean-attention": MaxMeanAttentionPooling}
POOLINGS = ("last", *POOLING_LAYERS)
LOSSES = {"manhattan": "binary_crossentropy", "euclidean": contrastive_loss, "cosine": "binary_crossentropy",
          LEARNED_HEAD: "binary_crossentropy"}
HIDDEN, OUTPUT = "head_hidden", "head_output"


def build_encoder(
    embeddings: np.ndarray,
    lstm_units: Sequence[int],
    dropout: Sequence[float],
    trainable_embeddings: bool = True,
    export_graph: bool = False,
    pooling: str = "last",
    projection: int | None = None,
) -> keras.Model:
    """Token ids [batch, seq] -> encoding [batch, 2 * lstm_units[-1]] (pooling "last": the final states, as the
    notebook), [batch, 4 * lstm_units[-1]] ("max-mean": max and mean over all states of the last BiLSTM) or
    [batch, 6 * lstm_units[-1]] ("max-mean-attention": and an attention-weighted mean, within each sentence).

    The masked Embedding lives inside the encoder, so padding never reaches the LSTMs (a nested Keras 3
    model would drop a mask handed in from outside). `export_graph=True` builds the same weights without
    mask and dropout, the last BiLSTM returning its final states: tf2onnx turns that into native ONNX LSTM
    ops, to which export/ adds the true sequence lengths.

    `projection`: a bias-free linear map of the char vectors to that width before the first BiLSTM, which
    then does a fraction of the work per character; being linear on a lookup, export folds it into the
    embedding table (export.convert.rebuild_encoder), so the exported graph only has a narrower table.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r}: expected one of {', '.join(POOLINGS)}")
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
    if projection is not None:
        x = layers.Dense(projection, use_bias=False, name=PROJECTION)(x)
    *inner, last = lstm_units
    for depth, (units, rate) in enumerate(zip(inner, dropout), start=1):
        x = layers.Bidirectional(layers.LSTM(units, return_sequences=True), name=f"bilstm_{depth}")(x)
        if not export_graph:
            x = layers.Dropout(rate, name=f"dropout_{depth}")(x)
    name = f"bilstm_{len(lstm_units)}"
    if pooling in POOLING_LAYERS:
        states = layers.Bidirectional(layers.LSTM(last, return_sequences=True), name=name)(x)
        x = POOLING_LAYERS[pooling](name=POOLING)([states, token_ids])
        if export_graph:
            x = layers.Identity(name="encoding")(x)  # the graph's output name; the weights stay under POOLING
    elif export_graph:
        _, forward_h, _, backward_h, _ = layers.Bidirectional(layers.LSTM(last, return_state=True), name=name)(x)
        x = layers.Concatenate(name="encoding")([forward_h, backward_h])
    else:
        x = layers.Bidirectional(layers.LSTM(last), name=name)(x)
    if not export_graph:
        x = layers.Dropout(dropout[-1], name=f"dropout_{len(lstm_units)}")(x)
    return keras.Model(token_ids, x, name=ENCODER)


def encoder_projection(encoder: keras.Model) -> np.ndarray | None:
    """The kernel [char vector width, projection width] of an encoder's char projection, or None."""
    names = {layer.name for layer in encoder.layers}
    return keras.ops.convert_to_numpy(encoder.get_layer(PROJECTION).kernel) if PROJECTION in names else None


def encoder_pooling(encoder: keras.Model) -> str:
    """The pooling an encoder built by build_encoder uses."""
    kinds = {layer: name for name, layer in POOLING_LAYERS.items()}
    return next((kinds[type(layer)] for layer in encoder.layers if type(layer) in kinds), "last")


def pair_head_name(pair_model: keras.Model) -> str:
    """The head of a pair model built by build_pair_model."""
    if any(layer.name == HIDDEN for layer in pair_model.layers):
        return LEARNED_HEAD
    similarity = pair_model.get_layer("similarity")
    return next(name for name, layer in HEADS.items() if isinstance(similarity, layer))


def build_pair_model(
    encoder: keras.Model,
    head: str = "manhattan",
    pair_dropout: float = 0.0,
    head_units: int = 64,
    head_dropout: float = 0.0,
) -> keras.Model:
    """(left ids, right ids) -> similarity [batch, 1], one encoder shared by both sides; `pair_dropout`
    drops the same encoding units on both sides in training. The "mlp" head learns the similarity from
    (|u - v|, u * v) through `head_units` relu units, `head_dropout` on them in training."""
    if head not in HEAD_NAMES:
        raise ValueError(f"head {head!r}: expected one of {', '.join(HEAD_NAMES)}")
    left = keras.Input(shape=(None,), dtype="int32", name="left_ids")
    right = keras.Input(shape=(None,), dtype="int32", name="right_ids")
    encodings = [encoder(left), encoder(right)]
    if pair_dropout:
        encodings = PairDropout(pair_dropout, name="pair_dropout")(encodings)
    if head == LEARNED_HEAD:
        hidden = layers.Dense(head_units, activation="relu", name=HIDDEN)(PairFeatures(name="pair_features")(encodings))
        similarity = layers.Dense(1, activation="sigmoid", name=OUTPUT)(layers.Dropout(head_dropout)(hidden))
    else:
        similarity = HEADS[head](name="similarity")(encodings)
    return keras.Model([left, right], similarity, name="siamese")
