"""The three similarity heads agree across Keras, ONNX (pair.onnx) and the runtime's numpy."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from siamese_runtime.heads import HEADS

keras = pytest.importorskip("keras", reason="the Keras heads need the [train] extra")

from export.pair_graph import HEADS as ONNX_HEADS  # noqa: E402
from export.pair_graph import SCORE  # noqa: E402
from train.model import HEADS as KERAS_HEADS  # noqa: E402
from train.model import contrastive_loss  # noqa: E402

RNG = np.random.default_rng(7)
LEFT = RNG.normal(size=(64, 16)).astype(np.float32)
RIGHT = np.concatenate([LEFT[:8], RNG.normal(size=(56, 16)).astype(np.float32)])


def onnx_head(name: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 16]) for n in ("u", "v")]
    output = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["batch"])
    graph = helper.make_graph(ONNX_HEADS[name]("u", "v"), "head", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"u": left, "v": right})[0]


@pytest.mark.parametrize("name", sorted(HEADS))
def test_heads_agree_stay_in_unit_interval_and_score_identity_one(name: str) -> None:
    numpy_scores = HEADS[name](LEFT, RIGHT)
    keras_scores = np.asarray(KERAS_HEADS[name]()([LEFT, RIGHT])).reshape(-1)
    np.testing.assert_allclose(keras_scores, numpy_scores, atol=1e-6)
    np.testing.assert_allclose(onnx_head(name, LEFT, RIGHT), numpy_scores, atol=1e-6)
    assert np.all((numpy_scores >= 0) & (numpy_scores <= 1))
    np.testing.assert_allclose(numpy_scores[:8], 1.0, atol=1e-3)


def test_contrastive_loss_pulls_similar_and_pushes_dissimilar_pairs() -> None:
    close, far = np.array([0.95], np.float32), np.array([0.05], np.float32)
    similar, dissimilar = np.array([1.0], np.float32), np.array([0.0], np.float32)
    assert float(contrastive_loss(similar, close)[0]) < float(contrastive_loss(similar, far)[0])
    assert float(contrastive_loss(dissimilar, far)[0]) == pytest.approx(0.0)
    assert float(contrastive_loss(dissimilar, close)[0]) > 0.5
