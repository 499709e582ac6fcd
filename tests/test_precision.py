"""Precision per provider: auto picks what the provider runs well; explicit choices must exist."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from siamese_runtime import ModelFolder, ModelLoadError, Scorer
from siamese_runtime.precision import choose_precision


def test_auto_is_fp32_on_cpu_and_fp16_on_cuda_when_the_model_has_it(tiny_model: Path) -> None:
    model = ModelFolder.load(tiny_model)
    assert choose_precision("auto", "CPUExecutionProvider", model) == "fp32"
    assert choose_precision("auto", "CUDAExecutionProvider", model) == "fp16"
    assert Scorer(model, providers="cpu").precision == "fp32"


def test_explicit_int8_runs_the_quantized_encoder(tiny_model: Path) -> None:
    scorer = Scorer(tiny_model, providers="cpu", precision="int8")
    assert scorer.precision == "int8"
    assert scorer.model.encoder_path("int8").name == "encoder.int8.onnx"


def test_fp16_on_cpu_warns_that_it_only_costs_time(tiny_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="siamese_runtime.precision"):
        Scorer(tiny_model, providers="cpu", precision="fp16")
    assert "slower than fp32" in caplog.text


def test_precision_missing_from_the_folder_names_what_exists(tiny_model: Path, tmp_path: Path) -> None:
    import json
    import shutil

    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["encoder.int8.onnx"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="no int8 encoder in this model; available: fp16, fp32"):
        Scorer(folder, providers="cpu", precision="int8")
