"""The pair model as one ONNX graph: the encoder applied to both sides (weights shared) plus the head."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from siamese_runtime.heads import EPSILON, LEARNED, Calibration

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


def learned_head(left: str, right: str) -> list[onnx.NodeProto]:
    """The mlp head on (|u - v|, u * v); its weights are the initializers named head/<array name>."""
    return [
        helper.make_node("Sub", [left, right], ["head/difference"]),
        helper.make_node("Abs", ["head/difference"], ["head/absolute"]),
        helper.make_node("Mul", [left, right], ["head/product"]),
        helper.make_node("Concat", ["head/absolute", "head/product"], ["head/features"], axis=1),
        helper.make_node("MatMul", ["head/features", "head/hidden"], ["head/hidden_linear"]),
        helper.make_node("Add", ["head/hidden_linear", "head/hidden_bias"], ["head/hidden_biased"]),
        helper.make_node("Relu", ["head/hidden_biased"], ["head/hidden_units"]),
        helper.make_node("MatMul", ["head/hidden_units", "head/output"], ["head/output_linear"]),
        helper.make_node("Add", ["head/output_linear", "head/output_bias"], ["head/logit"]),
        helper.make_node("Sigmoid", ["head/logit"], ["head/probability"]),
        *_constant_ints("head/flat", [-1]),
        helper.make_node("Reshape", ["head/probability", "head/flat"], [SCORE]),
    ]


def calibration_nodes(source: str, calibration: Calibration) -> list[onnx.NodeProto]:
    """sigmoid(slope * logit(clip(source, eps, 1 - eps)) + intercept), as heads.Calibration computes it."""
    return [
        _constant("calibration/low", EPSILON),
        _constant("calibration/high", 1 - EPSILON),
        _constant("calibration/one", 1.0),
        _constant("calibration/slope", calibration.slope),
        _constant("calibration/intercept", calibration.intercept),
        helper.make_node("Clip", [source, "calibration/low", "calibration/high"], ["calibration/clipped"]),
        helper.make_node("Sub", ["calibration/one", "calibration/clipped"], ["calibration/complement"]),
        helper.make_node("Div", ["calibration/clipped", "calibration/complement"], ["calibration/odds"]),
        helper.make_node("Log", ["calibration/odds"], ["calibration/logit"]),
        helper.make_node("Mul", ["calibration/logit", "calibration/slope"], ["calibration/scaled"]),
        helper.make_node("Add", ["calibration/scaled", "calibration/intercept"], ["calibration/shifted"]),
        helper.make_node("Sigmoid", ["calibration/shifted"], [SCORE]),
    ]


def _constant_ints(name: str, values: list[int]) -> list[onnx.NodeProto]:
    tensor = helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
    return [helper.make_node("Constant", [], [name], value=tensor)]


HEADS = {"manhattan": manhattan_head, "euclidean": euclidean_head, "cosine": cosine_head}


def build_pair_graph(
    encoder: onnx.ModelProto,
    head: str,
    head_weights: Mapping[str, np.ndarray] | None = None,
    calibration: Calibration | None = None,
) -> onnx.ModelProto:
    """(left_ids, right_ids) -> score, from an encoder graph with one input and one output; the mlp head
    takes `head_weights`, and `calibration`, when given, maps the head's score to a probability."""
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
    head_output = SCORE if calibration is None else "head/score"
    initializers = list(graph.initializer)
    if head == LEARNED:
        if head_weights is None:
            raise ValueError(f"the {LEARNED} head needs its weights")
        initializers += [numpy_helper.from_array(np.asarray(value, np.float32), f"head/{name}")
                         for name, value in head_weights.items()]
    head_nodes = (learned_head if head == LEARNED else HEADS[head])(f"left/{encoding}", f"right/{encoding}")
    nodes += [_renamed_output(node, head_output) for node in head_nodes]
    if calibration is not None:
        nodes += calibration_nodes(head_output, calibration)
    # each side has its own length axis: sharing the encoder's dim names would tell onnxruntime they are equal
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", f"{name}_length"]) for name in (LEFT, RIGHT)
    ]
    output = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["batch"])
    pair = helper.make_graph(nodes, "siamese_pair", inputs, [output], initializer=initializers)
    model = helper.make_model(pair, opset_imports=list(encoder.opset_import), producer_name="siamese-runtime export")
    model.ir_version = encoder.ir_version
    onnx.checker.check_model(model)
    return model


def _renamed_output(node: onnx.NodeProto, output: str) -> onnx.NodeProto:
    """`node`, writing `output` where it wrote the graph's score."""
    node.output[:] = [output if name == SCORE else name for name in node.output]
    return node
