"""The pair model as one ONNX graph: the encoder applied to both sides (weights shared) plus the head."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

LEFT, RIGHT = "left_ids", "right_ids"
SCORE = "score"


def manhattan_head(left: str, right: str) -> list[onnx.NodeProto]:
    """exp(-sum|u - v|) over the encoding axis: [batch, d] x 2 -> [batch]."""
    return [
        helper.make_node("Sub", [left, right], ["head/difference"]),
        helper.make_node("Abs", ["head/difference"], ["head/absolute"]),
        helper.make_node("Constant", [], ["head/axes"], value=helper.make_tensor("head/axes", TensorProto.INT64, [1], [1])),
        helper.make_node("ReduceSum", ["head/absolute", "head/axes"], ["head/distance"], keepdims=0),
        helper.make_node("Neg", ["head/distance"], ["head/negative"]),
        helper.make_node("Exp", ["head/negative"], [SCORE]),
    ]


HEADS = {"manhattan": manhattan_head}


def build_pair_graph(encoder: onnx.ModelProto, head: str) -> onnx.ModelProto:
    """(left_ids, right_ids) -> score, from an encoder graph with one input and one output."""
    graph = encoder.graph
    shared = {init.name for init in graph.initializer}
    (token_ids,), (encoding,) = [i.name for i in graph.input], [o.name for o in graph.output]
    nodes: list[onnx.NodeProto] = []
    for side, side_input in (("left", LEFT), ("right", RIGHT)):
        def rename(name: str) -> str:
            if not name or name in shared:
                return name
            return side_input if name == token_ids else f"{side}/{name}"

        for node in graph.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.name = f"{side}/{node.name or node.output[0]}"
            copy.input[:] = [rename(n) for n in node.input]
            copy.output[:] = [rename(n) for n in node.output]
            nodes.append(copy)
    nodes += HEADS[head](f"left/{encoding}", f"right/{encoding}")
    # each side has its own length axis: sharing the encoder's dim names would tell onnxruntime they are equal
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", f"{name}_length"]) for name in (LEFT, RIGHT)]
    output = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["batch"])
    pair = helper.make_graph(nodes, "siamese_pair", inputs, [output], initializer=list(graph.initializer))
    model = helper.make_model(pair, opset_imports=list(encoder.opset_import), producer_name="siamese-runtime export")
    model.ir_version = encoder.ir_version
    onnx.checker.check_model(model)
    return model
