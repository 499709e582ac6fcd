"""Encoder variants: int8 by onnxruntime dynamic quantization, fp16 weights for GPUs, offline optimization."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort
from onnxconverter_common import float16
from onnxruntime.quantization import QuantType, quantize_dynamic

from siamese_runtime.session import default_session_options, new_session

from .sequence_lengths import op_types

# Accuracy points a variant may lose against fp32 on any dataset before export marks it.
MAX_ACCURACY_DROP = {"int8": 0.5, "fp16": 0.1}
FP16_OPS = ("LSTM", "Gather")


def quantize_int8(source: Path, destination: Path) -> None:
    """Dynamic int8: LSTM weights as DynamicQuantizeLSTM, the embedding table dequantized on lookup."""
    quantize_dynamic(str(source), str(destination), weight_type=QuantType.QInt8)


def convert_fp16(source: Path, destination: Path) -> None:
    """fp16 weights and compute for the LSTMs and the embedding lookup; shape and index ops stay fp32.

    Converting every op breaks tf2onnx's index-clipping Cast nodes (onnxconverter-common leaves their
    `to` attribute at float), so only the heavy ops are converted and casts are inserted around them.
    """
    model = onnx.load(str(source))
    keep_fp32 = [node.name for node in model.graph.node if node.op_type not in FP16_OPS]
    converted = float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=keep_fp32)
    onnx.checker.check_model(converted, full_check=True)
    onnx.save(converted, str(destination))


def optimize_offline(source: Path, destination: Path) -> dict[str, int]:
    """onnxruntime's basic (provider-independent) graph optimizations saved to a file; returns node counts."""
    options = default_session_options()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(destination)
    new_session(source, options=options)
    before, after = onnx.load(str(source)), onnx.load(str(destination))
    if "LSTM" not in op_types(after):
        raise ValueError("offline optimization removed the native LSTM ops")
    return {"nodes_before": len(before.graph.node), "nodes_after": len(after.graph.node)}
