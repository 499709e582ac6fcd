"""tf2onnx conversion of a trained run's encoder into a native-LSTM ONNX graph."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

from train.model import (  # noqa: E402
    EMBEDDING,
    ENCODER,
    HIDDEN,
    LEARNED_HEAD,
    OUTPUT,
    build_encoder,
    build_pair_model,
    encoder_pooling,
    encoder_projection,
)

from .sequence_lengths import add_sequence_lengths, check_native_lstm  # noqa: E402

OPSET = 17
TOKEN_IDS = "token_ids"
ENCODING = "encoding"


def rebuild_encoder(encoder: keras.Model, export_graph: bool) -> keras.Model:
    """The same weights in a freshly built encoder; `export_graph`: without mask or dropout, ending in
    the final LSTM states (what tf2onnx turns into native LSTM ops), and with a char projection folded into
    the embedding table (a lookup then a linear map is a lookup in the mapped table)."""
    table = keras.ops.convert_to_numpy(encoder.get_layer(EMBEDDING).embeddings)
    projection = encoder_projection(encoder)
    units = [layer.forward_layer.units for layer in encoder.layers if isinstance(layer, keras.layers.Bidirectional)]
    rates = [layer.rate for layer in encoder.layers if isinstance(layer, keras.layers.Dropout)]
    folded = export_graph and projection is not None
    clone = build_encoder(
        (table @ projection).astype(np.float32) if folded else table, units, rates, export_graph=export_graph,
        pooling=encoder_pooling(encoder), projection=None if folded or projection is None else projection.shape[1],
    )
    for layer in clone.layers:  # by name: the folded clone has no projection layer
        if layer.weights and layer.name != EMBEDDING:
            layer.set_weights(encoder.get_layer(layer.name).get_weights())
    return clone


def clean_pair_model(pair_model: keras.Model, head: str) -> keras.Model:
    """The pair model rebuilt from its weights: no optimizer state, no stale config, for the model folder."""
    encoder = rebuild_encoder(pair_model.get_layer(ENCODER), export_graph=False)
    if head != LEARNED_HEAD:
        return build_pair_model(encoder, head)
    clone = build_pair_model(encoder, head, head_units=pair_model.get_layer(HIDDEN).units)
    for name in (HIDDEN, OUTPUT):
        clone.get_layer(name).set_weights(pair_model.get_layer(name).get_weights())
    return clone


def head_arrays(pair_model: keras.Model) -> dict[str, np.ndarray]:
    """The learned head's weights under the names the runtime's LearnedHead reads."""
    hidden, hidden_bias = pair_model.get_layer(HIDDEN).get_weights()
    output, output_bias = pair_model.get_layer(OUTPUT).get_weights()
    return {"hidden": hidden, "hidden_bias": hidden_bias, "output": output, "output_bias": output_bias}


def convert_encoder(encoder: keras.Model) -> onnx.ModelProto:
    """tf2onnx conversion with dynamic batch and sequence axes, then true sequence lengths."""
    signature = (tf.TensorSpec((None, None), tf.int32, name=TOKEN_IDS),)
    model, _ = tf2onnx.convert.from_keras(
        rebuild_encoder(encoder, export_graph=True), input_signature=signature, opset=OPSET
    )
    model = add_sequence_lengths(model, TOKEN_IDS)
    check_native_lstm(model)
    if [o.name for o in model.graph.output] != [ENCODING]:
        raise ValueError(f"expected one output named {ENCODING!r}, got {[o.name for o in model.graph.output]}")
    return model

