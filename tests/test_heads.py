"""The three similarity heads agree across Keras, ONNX (pair.onnx) and the runtime's numpy."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from siamese_runtime.heads import HEADS

keras = pytest.importorskip("keras", reason="the Keras heads need the [train] extra")
onnx = pytest.importorskip("onnx", reason="the ONNX heads need the [train] extra")

from onnx import TensorProto, helper  # noqa: E402

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


def learned_weights(encoding_dim: int = 16, units: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {"hidden": rng.normal(size=(2 * encoding_dim, units)).astype(np.float32),
            "hidden_bias": rng.normal(size=units).astype(np.float32),
            "output": rng.normal(size=(units, 1)).astype(np.float32),
            "output_bias": rng.normal(size=1).astype(np.float32)}


def run_graph(nodes: list, inputs: dict[str, np.ndarray], initializers: list | None = None) -> np.ndarray:
    values = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", *v.shape[1:]]) for n, v in inputs.items()]
    output = helper.make_tensor_value_info(SCORE, TensorProto.FLOAT, ["batch"])
    model = helper.make_model(helper.make_graph(nodes, "head", values, [output], initializer=initializers or []),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)[0]


def test_learned_head_agrees_across_keras_onnx_and_numpy_and_ignores_the_side() -> None:
    from onnx import numpy_helper

    from export.pair_graph import learned_head
    from siamese_runtime.heads import LearnedHead
    from train.model import HIDDEN, OUTPUT, build_pair_model

    weights = learned_weights()
    numpy_scores = LearnedHead.from_arrays(weights, encoding_dim=16)(LEFT, RIGHT)
    identity = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(4, 16)], name="encoder")
    pair = build_pair_model(identity, "mlp", head_units=8)
    pair.get_layer(HIDDEN).set_weights([weights["hidden"], weights["hidden_bias"]])
    pair.get_layer(OUTPUT).set_weights([weights["output"], weights["output_bias"]])
    features = [LEFT, RIGHT]
    for layer in pair.layers[pair.layers.index(pair.get_layer("pair_features")):]:
        features = layer(features)
    np.testing.assert_allclose(np.asarray(features).reshape(-1), numpy_scores, atol=1e-6)
    initializers = [numpy_helper.from_array(value, f"head/{name}") for name, value in weights.items()]
    onnx_scores = run_graph(learned_head("u", "v"), {"u": LEFT, "v": RIGHT}, initializers)
    np.testing.assert_allclose(onnx_scores, numpy_scores, atol=1e-6)
    np.testing.assert_array_equal(LearnedHead.from_arrays(weights, 16)(RIGHT, LEFT), numpy_scores)
    assert np.all((numpy_scores >= 0) & (numpy_scores <= 1))


def test_learned_head_weights_of_the_wrong_shape_are_named() -> None:
    from siamese_runtime.heads import LearnedHead

    with pytest.raises(ValueError, match=r"hidden has shape \(32, 8\), expected \(64, 8\)"):
        LearnedHead.from_arrays(learned_weights(), encoding_dim=32)
    with pytest.raises(ValueError, match="lacks the arrays output_bias"):
        LearnedHead.from_arrays({k: v for k, v in learned_weights().items() if k != "output_bias"}, 16)


def test_calibration_in_onnx_matches_numpy_and_never_reorders() -> None:
    from export.pair_graph import calibration_nodes
    from siamese_runtime.heads import Calibration

    calibration = Calibration(slope=1.7, intercept=-0.4)
    scores = np.concatenate([np.linspace(0, 1, 1001), [1e-9, 1 - 1e-9]]).astype(np.float32)
    probabilities = calibration(scores)
    onnx_probabilities = run_graph(calibration_nodes("raw", calibration), {"raw": scores})
    np.testing.assert_allclose(onnx_probabilities, probabilities, atol=1e-6)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(probabilities[order]) >= 0)
    assert calibration(np.float32(0.5)) == pytest.approx(1 / (1 + np.exp(0.4)), abs=1e-7)
