"""The pair model as one ONNX graph: the encoder applied to both sides (weights shared) plus the head."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from siamese_runtime.heads import EPSILON

LEFT, RIGHT = "left_ids", "right_ids"
SCORE = "score"


def _constant(name: str, value: float) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [], [value]))


def _sum_over_encoding(source: str, target: str) -> list[onnx.NodeProto]:
    axes = f"{target}/axes"
    return [
        helper.make_node("Constant", [], [axes], value=helper.make_tensor(axes, TensorProto.INT64, [1], [1])),
        helper.make_node("ReduceSum", [source, axes], [target], keepdims=0),
    ]


def manhattan_head(left: str, right: str) -> list[onnx.NodeProto]:
    """exp(-sum|u - v|) over the encoding axis: [batch, d] x 2 -> [batch]."""
    return [
        helper.make_node("Sub", [left, right], ["head/difference"]),
        helper.make_node("Abs", ["head/difference"], ["head/absolute"]),
        *_sum_over_encoding("head/absolute", "head/distance"),
        helper.make_node("Neg", ["head/distance"], ["head/negative"]),
        helper.make_node("Exp", ["head/negative"], [SCORE]),
    ]


def euclidean_head(left: str, right: str) -> list[onnx.NodeProto]:
    """exp(-sqrt(max(sum (u - v)^2, eps)))."""
    return [
        helper.make_node("Sub", [left, right], ["head/difference"]),
        helper.make_node("Mul", ["head/difference", "head/difference"], ["head/squares"]),
        *_sum_over_encoding("head/squares", "head/squared_distance"),
        _constant("head/epsilon", EPSILON),
        helper.make_node("Max", ["head/squared_distance", "head/epsilon"], ["head/clipped"]),
        helper.make_node("Sqrt", ["head/clipped"], ["head/distance"]),
        helper.make_node("Neg", ["head/distance"], ["head/negative"]),
        helper.make_node("Exp", ["head/negative"], [SCORE]),
    ]


def cosine_head(left: str, right: str) -> list[onnx.NodeProto]:
    """(1 + dot(u, v) / max(|u| |v|, eps)) / 2."""
    nodes = [
        helper.make_node("Mul", [left, right], ["head/products"]),
        *_sum_over_encoding("head/products", "head/dot"),
    ]
    for side, name in (("left", left), ("right", right)):
        nodes += [
            helper.make_node("Mul", [name, name], [f"head/{side}_squares"]),
            *_sum_over_encoding(f"head/{side}_squares", f"head/{side}_squared_norm"),
            helper.make_node("Sqrt", [f"head/{side}_squared_norm"], [f"head/{side}_norm"]),
        ]
    return nodes + [
        helper.make_node("Mul", ["head/left_norm", "head/right_norm"], ["head/norms"]),
        _constant("head/epsilon", EPSILON),
        helper.make_node("Max", ["head/norms", "head/epsilon"], ["head/clipped_norms"]),
        helper.make_node("Div", ["head/dot", "head/clipped_norms"], ["head/cosine"]),
        _constant("head/one", 1.0),
        _constant("head/half", 0.5),
        helper.make_node("Add", ["head/cosine", "head/one"], ["head/shifted"]),
        helper.make_node("Mul", ["head/shifted", "head/half"], [SCORE]),
    ]


HEADS = {"manhattan": manhattan_head, "euclidean": euclidean_head, "cosine": cosine_head}


def build_pair_graph(encoder: onnx.ModelProto, head: str) -> onnx.ModelProto:
    """(left_ids, right_ids) -> score, from an encoder graph with one input and one output."""
    graph = encoder.graph
    shared = {init.name for init in graph.initializer}
    (token_ids,), (encoding,) = [i.name for i in graph.input], [o.name for o in graph.output]
    nodes: list[onnx.NodeProto] = []
    for side, side_input in (("left", LEFT), ("right", RIGHT)):
        def rename(name: str, side: str = side, side_input: str = side_input) -> str:
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
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", f"{name}_length"]) for name in (LEFT, RIGHT)
    ]
    output = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["batch"])
    pair = helper.make_graph(nodes, "siamese_pair", inputs, [output], initializer=list(graph.initializer))
    model = helper.make_model(pair, opset_imports=list(encoder.opset_import), producer_name="siamese-runtime export")
    model.ir_version = encoder.ir_version
    onnx.checker.check_model(model)
    return model
