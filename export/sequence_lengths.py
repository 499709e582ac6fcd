"""Graph edit: feed every ONNX LSTM the true length of each sentence, counted from its token ids."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

SEQUENCE_LENS = "sequence_lens"
FORBIDDEN_OPS = {"Loop", "Scan"}


def add_sequence_lengths(model: onnx.ModelProto, token_ids: str = "token_ids") -> onnx.ModelProto:
    """Give each LSTM node `sequence_lens` = the count of non-zero ids per row of `token_ids`.

    With it, onnxruntime's LSTM stops each forward pass at the sentence's end, starts each reverse pass
    at its last real character, and returns in Y_h the state at the true end: what Keras's mask does.
    """
    graph = model.graph
    lstms = [node for node in graph.node if node.op_type == "LSTM"]
    if not lstms:
        raise ValueError("the graph has no LSTM op: was the encoder converted without its mask?")
    count_nodes = [
        helper.make_node(
            "Constant", [], ["seqlen_zero"], value=helper.make_tensor("seqlen_zero", TensorProto.INT32, [], [0])
        ),
        helper.make_node(
            "Constant", [], ["seqlen_axes"], value=helper.make_tensor("seqlen_axes", TensorProto.INT64, [1], [1])
        ),
        helper.make_node("Greater", [token_ids, "seqlen_zero"], ["seqlen_is_token"]),
        helper.make_node("Cast", ["seqlen_is_token"], ["seqlen_is_token_int"], to=TensorProto.INT32),
        helper.make_node("ReduceSum", ["seqlen_is_token_int", "seqlen_axes"], [SEQUENCE_LENS], keepdims=0),
    ]
    for node in lstms:
        inputs = list(node.input) + [""] * (5 - len(node.input))
        if inputs[4]:
            raise ValueError(f"LSTM node {node.name} already has sequence_lens {inputs[4]!r}")
        inputs[4] = SEQUENCE_LENS
        del node.input[:]
        node.input.extend(inputs)
    for position, node in enumerate(count_nodes):
        graph.node.insert(position, node)
    onnx.checker.check_model(model)
    return model


def op_types(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


def check_native_lstm(model: onnx.ModelProto) -> None:
    """Raise unless the graph runs its recurrences as native LSTM ops, with no Loop or Scan."""
    ops = op_types(model)
    if "LSTM" not in ops or ops & FORBIDDEN_OPS:
        raise ValueError(f"encoder graph must use native LSTM ops and no Loop/Scan; it has {sorted(ops)}")
