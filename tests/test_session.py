"""Execution providers: explicit requests that cannot be met fail clearly, auto falls back and says so."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import onnxruntime as ort
import pytest

from siamese_runtime import ProviderUnavailableError, Scorer, session
from siamese_runtime.errors import UsageError
from siamese_runtime.providers import (
    CPU,
    CUDA,
    OPENVINO,
    checked_request,
    resolve_providers,
    with_default_options,
)
from siamese_runtime.session import check_single_onnxruntime, installed_onnxruntime_distributions
from siamese_runtime.settings import ScorerSettings

from .conftest import DEFAULT_MODEL, run_cli

HAS_CUDA = CUDA in ort.get_available_providers()


def cuda_start_failure() -> str | None:
    """Why a CUDA session cannot start here (None: it starts). A GPU build without a GPU lists CUDA yet falls back."""
    try:
        Scorer(providers="cuda")
    except ProviderUnavailableError as error:
        return str(error)
    return None


CUDA_FAILURE = cuda_start_failure() if HAS_CUDA else "no CUDA execution provider in this onnxruntime build"


def test_cpu_request_runs_on_cpu() -> None:
    assert Scorer(providers="cpu").providers == [CPU]


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime build has CUDA")
def test_cuda_request_without_cuda_build_is_an_error_with_the_fix() -> None:
    with pytest.raises(
        ProviderUnavailableError, match="CUDAExecutionProvider was requested.*pip install ./gpu from a checkout"
    ):
        Scorer(providers="cuda")


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime build has CUDA")
def test_auto_falls_back_to_cpu_and_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="siamese_runtime.providers"):
        scorer = Scorer(providers="auto")
    assert scorer.providers == [CPU]
    assert "no CUDA" in caplog.text


def test_unknown_provider_names_the_choices() -> None:
    with pytest.raises(ProviderUnavailableError, match="use auto, cpu, cuda"):
        resolve_providers("tpu")
    with pytest.raises(ProviderUnavailableError, match="NoSuchExecutionProvider was requested"):
        resolve_providers(["NoSuchExecutionProvider", CPU])


@pytest.mark.parametrize("request_", [[], (), {}, 0, [1], [("cpu",)], [(CPU, "arena")], ["cpu", "cpu"],
                                      [CPU, "cpu"], "cpu,CPUExecutionProvider", [("cpu", {}), CPU], b"cpu",
                                      "auto,cpu", "AzureExecutionProvider", ["AzureExecutionProvider", CPU]])
def test_a_request_that_names_no_provider_or_one_twice_is_refused_before_any_session(request_: object) -> None:
    with pytest.raises(UsageError, match="providers .*: give 'auto'|expected a name|requested twice|stands alone|"
                                         "computes nothing on this machine"):
        ScorerSettings(providers=request_)  # type: ignore[arg-type]


def test_a_provider_list_takes_the_aliases_the_text_takes() -> None:
    assert ScorerSettings(providers=None).providers == "auto"  # type: ignore[arg-type]
    assert resolve_providers(["cpu"]) == resolve_providers("cpu") == [CPU]
    assert resolve_providers([("cpu", {"arena_extend_strategy": "kSameAsRequested"})])[0][0] == CPU
    assert checked_request(["cuda:1", ("openvino", {"x": 1}), "cpu"]) == (
        (CUDA, {"device_id": 1}), (OPENVINO, {"x": 1}), CPU)


def test_explicit_provider_list_with_options_is_passed_through() -> None:
    scorer = Scorer(providers=[(CPU, {"arena_extend_strategy": "kSameAsRequested"})])
    assert scorer.providers == [CPU]


def test_single_onnxruntime_distribution_installed() -> None:
    found = installed_onnxruntime_distributions()
    assert len(found) == 1, f"exactly one onnxruntime build must be installed, found {found}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_single_onnxruntime()


def test_several_onnxruntime_builds_warn_with_the_general_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "installed_onnxruntime_distributions", lambda: ["onnxruntime", "onnxruntime-openvino"])
    with pytest.warns(RuntimeWarning) as caught:
        check_single_onnxruntime()
    message = str(caught[0].message)
    assert "2 onnxruntime builds are installed (onnxruntime, onnxruntime-openvino)" in message
    assert "pip uninstall -y onnxruntime onnxruntime-gpu onnxruntime-openvino" in message
    assert "pip install . (CPU), ./gpu (CUDA) or ./openvino (OpenVINO)" in message


def test_openvino_gets_fp32_precision_under_the_callers_own_options() -> None:
    assert with_default_options(OPENVINO) == (OPENVINO, {"precision": "FP32"})
    assert with_default_options((OPENVINO, {"num_of_threads": "2"})) == (
        OPENVINO, {"precision": "FP32", "num_of_threads": "2"})
    assert with_default_options((OPENVINO, {"precision": "ACCURACY"})) == (OPENVINO, {"precision": "ACCURACY"})
    assert with_default_options(CPU) == CPU


def test_cuda_gets_no_tf32_unless_the_caller_asks() -> None:
    assert with_default_options(CUDA) == (CUDA, {"use_tf32": "0"})
    assert with_default_options((CUDA, {"use_tf32": "1", "device_id": 1})) == (CUDA, {"use_tf32": "1", "device_id": 1})


def test_cuda_with_a_device_number_reaches_the_provider_options() -> None:
    if HAS_CUDA:
        assert resolve_providers("cuda:1")[0] == (CUDA, {"use_tf32": "0", "device_id": 1})
    else:
        with pytest.raises(ProviderUnavailableError, match="CUDAExecutionProvider was requested"):
            resolve_providers("cuda:1")
    with pytest.raises(ProviderUnavailableError, match=r"unknown provider 'cuda:x'; use .*cuda:N"):
        resolve_providers("cuda:x")


@pytest.mark.skipif(not HAS_CUDA or CUDA_FAILURE is None, reason="needs a GPU build whose CUDA cannot start here")
def test_a_gpu_build_without_a_gpu_fails_clearly_and_auto_falls_back_to_the_cpu_precision(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert CUDA_FAILURE is not None and "fell back to CPUExecutionProvider" in CUDA_FAILURE
    assert "pip install './gpu[cuda]'" in CUDA_FAILURE
    with caplog.at_level(logging.WARNING):
        scorer = Scorer(providers="auto")
    assert scorer.providers[0] == CPU and scorer.precision == "fp32"
    assert "could not start; reopening the encoder in fp32" in caplog.text
    pairs = [("花呗怎么还款", "花呗如何还款"), ("借呗额度", "今天天气")]
    assert abs(scorer.score(pairs) - Scorer(providers="cpu").score(pairs)).max() == 0


def test_only_sessions_asking_for_another_provider_swap_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime-gpu prints why a provider fell back; that is captured, but CPU sessions (opened while jobs
    write to stdout from other threads) must leave sys.stdout alone."""
    seen = []
    real = ort.InferenceSession

    def observed(*args: object, **kwargs: object) -> ort.InferenceSession:
        seen.append(sys.stdout)
        return real(*args, **kwargs)

    monkeypatch.setattr(session.ort, "InferenceSession", observed)
    encoder = DEFAULT_MODEL / "encoder.onnx"
    session.new_session(encoder, [CPU])
    session.new_session(encoder, [OPENVINO, CPU])
    assert seen[0] is sys.stdout and seen[1] is not sys.stdout


def test_a_provider_that_names_nothing_is_a_usage_error_on_the_command_line(tmp_path: Path) -> None:
    pairs, output = tmp_path / "one.tsv", tmp_path / "scores.tsv"
    pairs.write_text("花呗怎么还款\t花呗如何还款\n", encoding="utf-8")
    result = run_cli("score", str(pairs), "-o", str(output), "--provider", "cuda:x")
    assert result.returncode == 2 and b"unknown provider 'cuda:x'" in result.stderr
    assert not output.exists()


ORT_WARNING = r'''
import logging, sys
import numpy as np, onnx, onnx.helper as h
from siamese_runtime.session import new_session
if sys.argv[1] == "-v":
    logging.basicConfig(level=logging.INFO)
x, y = (h.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1]) for name in "xy")
unused = onnx.numpy_helper.from_array(np.zeros(1, np.float32), "unused")  # onnxruntime warns it removes it
graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "g", [x], [y], [unused])
model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
new_session(model.SerializeToString())
'''


@pytest.mark.parametrize("verbose", [False, True])
def test_onnxruntime_logs_its_warnings_only_where_the_runtime_logs_details(verbose: bool) -> None:
    pytest.importorskip("onnx")
    flag = "-v" if verbose else "-q"
    result = subprocess.run([sys.executable, "-c", ORT_WARNING, flag], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("[W:onnxruntime" in result.stderr and "Removing initializer 'unused'" in result.stderr) == verbose


@pytest.mark.parametrize(("request_", "gpus"), [
    ("cuda", 1), ("cuda:1", 1), (["cuda:1", "cpu"], 1), ("CUDAExecutionProvider,CPUExecutionProvider", 1),
    ([("TensorrtExecutionProvider", {}), "cuda"], 1), ("cpu", 0), ("auto", 0), ("openvino", 0),
])
def test_a_ray_job_reserves_one_gpu_per_actor_for_any_request_that_starts_with_a_gpu(request_: object, gpus: int,
                                                                                      ) -> None:
    from siamese_runtime.ray.job import ClusterOptions

    settings = ScorerSettings(providers=request_)  # type: ignore[arg-type]
    assert ClusterOptions.for_scorer(settings).num_gpus == gpus
    assert ClusterOptions.for_scorer(settings, num_gpus=0.5).num_gpus == 0.5
