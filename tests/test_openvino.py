"""The OpenVINO execution provider (the siamese-runtime-openvino distribution, `pip install ./openvino`): it
really runs, at fp32 unless told otherwise, and scores as the CPU provider does; on a build without it, asking
for it is a clear error. .ci/run runs this file in a venv with that distribution installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from siamese_runtime import ProviderUnavailableError, Scorer
from siamese_runtime.providers import CPU, OPENVINO

from .conftest import run_cli

HAS_OPENVINO = OPENVINO in ort.get_available_providers()
needs_openvino = pytest.mark.skipif(
    not HAS_OPENVINO, reason=f"no {OPENVINO} in this onnxruntime build (the ./openvino distribution has it)"
)


@pytest.fixture(scope="module")
def openvino() -> Scorer:
    return Scorer(providers="openvino")


@needs_openvino
def test_the_session_really_runs_on_openvino_at_fp32(openvino: Scorer) -> None:
    assert openvino.providers[0] == OPENVINO
    assert openvino.provider_options[OPENVINO]["precision"] == "FP32"
    assert openvino.precision == "fp32"  # CPU-class for auto: the fp32 encoder
    assert openvino.encoder.precision_reason.startswith(f"auto: fp32 on {OPENVINO}")


@needs_openvino
def test_openvino_scores_2000_pairs_as_the_cpu_provider_does(
    openvino: Scorer, owned_pairs: Callable[..., Path]
) -> None:
    lines = owned_pairs(2000).read_text(encoding="utf-8").splitlines()
    pairs = [(left, right) for left, right, _ in (line.split("\t") for line in lines)]
    assert len(pairs) == 2000
    cpu = Scorer(providers="cpu").score(pairs)
    difference = np.abs(openvino.score(pairs) - cpu).max()
    assert difference < 1e-4, difference


@needs_openvino
def test_explicit_openvino_options_are_passed_through_over_the_fp32_default() -> None:
    accuracy = Scorer(providers=[(OPENVINO, {"precision": "ACCURACY"}), CPU])
    assert accuracy.providers[0] == OPENVINO and accuracy.provider_options[OPENVINO]["precision"] == "ACCURACY"
    threads = Scorer(providers=[(OPENVINO, {"num_of_threads": "1"}), CPU])
    assert threads.providers[0] == OPENVINO
    assert threads.provider_options[OPENVINO] == {"precision": "FP32", "num_of_threads": "1"}
    # an option OpenVINO refuses reaches it (it refuses it), and is an error, never a silent run on CPU
    with pytest.raises(ProviderUnavailableError, match=f"{OPENVINO} was requested but onnxruntime fell back"):
        Scorer(providers=[(OPENVINO, {"precision": "NO_SUCH_PRECISION"}), CPU])


@needs_openvino
def test_bench_measures_openvino_beside_cpu(tmp_path: Path) -> None:
    result = run_cli("bench", "--quick", "--providers", OPENVINO, CPU, "--precisions", "fp32",
                     "--out", str(tmp_path), "--no-plots")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(next(tmp_path.glob("runtime-*.json")).read_text(encoding="utf-8"))
    rows = report["rows"]
    assert {row["provider"] for row in rows} == {OPENVINO, CPU}
    assert all(row["pairs_per_second"] > 0 for row in rows)
    assert {(row["provider"], row["batch_size"]) for row in rows} == {(p, b) for p in (OPENVINO, CPU) for b in (1, 8)}


@pytest.mark.skipif(HAS_OPENVINO, reason="this onnxruntime build has OpenVINO")
def test_openvino_request_on_another_build_fails_clearly(pairs_500: Path, tmp_path: Path) -> None:
    result = run_cli("score", str(pairs_500), "-o", str(tmp_path / "o.tsv"), "--provider", "openvino")
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert f"{OPENVINO} was requested but this onnxruntime build offers only" in stderr
    assert "pip install ./openvino from a checkout" in stderr
    assert not (tmp_path / "o.tsv").exists()
    with pytest.raises(ProviderUnavailableError, match="pip install ./openvino"):
        Scorer(providers="openvino")
