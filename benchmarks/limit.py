"""The machine's limit: the encoder's floating-point operations per token, and this CPU's sgemm peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from siamese_runtime.bench.pair_files import read_pair_rows
from siamese_runtime.heads import LEARNED
from siamese_runtime.model_folder import ModelFolder
from siamese_runtime.session import default_session_options, new_session
from siamese_runtime.tokenizer import Tokenizer

FORMULA = (
    "per token and direction of an LSTM with input size i and hidden size h: 8h(i+h) for the four gates' "
    "matrix products (2 FLOPs per multiply-add) + 8h for the two bias vectors + 4h for c = f*c + i*g and "
    "h = o*tanh(c); the 5h sigmoid/tanh evaluations are not counted. Head: 3d per pair for a distance (|u - v|, "
    "sum), 3d + 2(2d units + units) for the learned head. "
    "Needed work = FLOPs/token x the true token count of each distinct sentence (what the runtime encodes); "
    "padded work = FLOPs/token x every sentence at the file's padded width (what (a) and (b) encode)."
)
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
NUMPY_PEAK = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info
n, repeats = int(sys.argv[1]), int(sys.argv[2])
a, b = (np.random.default_rng(s).random((n, n), dtype=np.float32) for s in (0, 1))
a @ b
times = []
for _ in range(repeats):
    started = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - started)
best = min(times)
keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
blas = [{k: v for k, v in info.items() if k in keep} for info in threadpool_info() if info["user_api"] == "blas"]
print(json.dumps({"n": n, "gflops": 2 * n**3 / best / 1e9, "blas": blas}))
"""


def lstm_layers(encoder: Path) -> list[dict[str, int]]:
    """Input size, hidden size and directions of each LSTM node of an ONNX encoder, read from its weights."""
    model = onnx.load(str(encoder))
    weights = {t.name: t.dims for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type == "LSTM":
            directions, four_h, inputs = weights[node.input[1]]
            layers.append({"input_size": inputs, "hidden_size": four_h // 4, "directions": directions})
    return layers


def flops_per_token(layers: list[dict[str, int]]) -> int:
    return sum(
        layer["directions"] * (8 * h * (layer["input_size"] + h) + 12 * h)
        for layer in layers
        for h in (layer["hidden_size"],)
    )


def head_flops(model: ModelFolder) -> int:
    """FLOPs of the head per pair: 3d for the distance heads (|u - v|, sum); for the learned head, 3d for
    (|u - v|, u * v) and 2 x (2d x units + units) for its two dense layers."""
    d = model.encoding_dim
    if model.head != LEARNED:
        return 3 * d
    with np.load(model.verified_path(model.manifest["head"]["file"]), allow_pickle=False) as weights:
        units = int(weights["hidden_bias"].shape[0])
    return 3 * d + 2 * (2 * d * units + units)


def numpy_sgemm_peak(n: int = 4096, repeats: int = 5) -> dict[str, Any]:
    """numpy float32 n x n matmul in a subprocess without this machine's OPENBLAS overrides, and its kernel."""
    env = {key: value for key, value in os.environ.items() if key not in BLAS_ENV}
    result = subprocess.run([sys.executable, "-c", NUMPY_PEAK, str(n), str(repeats)], env=env, capture_output=True,
                            text=True, check=True, timeout=600)
    return {**json.loads(result.stdout), "unset": list(BLAS_ENV)}


def onnxruntime_matmul_peak(n: int = 2048, repeats: int = 5, threads: int | None = None) -> dict[str, Any]:
    """onnxruntime's own float32 MatMul on n x n operands: the kernel family the LSTM runs on."""
    weight = numpy_helper.from_array(np.random.default_rng(1).random((n, n), dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = new_session(model.SerializeToString(), options=default_session_options(threads))
    feed = {"a": np.random.default_rng(0).random((n, n), dtype=np.float32)}
    session.run(None, feed)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - started)
    threads_used = session.get_session_options().intra_op_num_threads
    return {"n": n, "threads": threads_used, "gflops": 2 * n**3 / best / 1e9}


def file_work(path: Path, tokenizer: Tokenizer, per_token: int, per_pair: int) -> dict[str, Any]:
    """Sentence and token counts of a file: what the runtime must encode, and what padded inference encodes."""
    rows = list(read_pair_rows(str(path)))
    sentences = [row.columns[side] for row in rows for side in (0, 1)]
    distinct = list(dict.fromkeys(sentences))
    lengths = [len(ids) for ids in tokenizer.ids_batch(sentences)[0]]
    needed_tokens = sum(len(ids) for ids in tokenizer.ids_batch(distinct)[0])
    padded_tokens = len(sentences) * max(lengths)
    return {
        "pairs": len(rows),
        "sentences": len(sentences),
        "distinct_sentences": len(distinct),
        "padded_width": max(lengths),
        "needed_tokens": needed_tokens,
        "padded_tokens": padded_tokens,
        "needed_flops": per_token * needed_tokens + per_pair * len(rows),
        "padded_flops": per_token * padded_tokens + per_pair * len(rows),
    }
