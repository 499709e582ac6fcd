"""Precision per provider: auto picks what the provider runs well; explicit choices must exist."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import ModelFolder, ModelLoadError, Scorer
from siamese_runtime.precision import choose_precision

from .conftest import REPO


def test_auto_is_fp32_on_cpu_and_fp16_on_gpu_providers_with_the_reason() -> None:
    model = ModelFolder.load()
    assert choose_precision("auto", "CUDAExecutionProvider", model).precision == "fp16"
    assert choose_precision("auto", "OpenVINOExecutionProvider", model).precision == "fp32"  # CPU-class
    scorer = Scorer(model, providers="cpu")
    assert scorer.precision == "fp32" and scorer.session.get_providers()[0] == "CPUExecutionProvider"
    assert scorer.precision_reason == "auto: fp32 on CPUExecutionProvider; int8 scores would depend on batching"
    assert Scorer(model, providers="cpu", precision="int8").precision_reason == "requested"


def test_int8_scores_depend_on_the_batch_which_is_why_auto_never_picks_it() -> None:
    """Dynamic quantization scales each batch's activations: the same sentence encodes differently beside others."""
    pairs = [line.split("\t") for line in (REPO / "examples" / "pairs.tsv").read_text(encoding="utf-8").splitlines()]
    sentences = [pair[0] for pair in pairs] + [pair[1] for pair in pairs]
    for precision, varies in (("int8", True), ("fp32", False)):
        scorer = Scorer(providers="cpu", precision=precision, cache_size=0)
        together = scorer.encode(sentences)
        alone = np.concatenate([scorer.encode([s]) for s in sentences])
        assert bool(np.abs(together - alone).max() > 1e-4) is varies, precision


@pytest.mark.slow  # the session's tiny model: a training run and an export on first use
def test_explicit_int8_runs_the_quantized_encoder(tiny_model: Path) -> None:
    scorer = Scorer(tiny_model, providers="cpu", precision="int8")
    assert scorer.precision == "int8"
    assert scorer.model.encoder_path("int8").name == "encoder.int8.onnx"


@pytest.mark.slow  # the session's tiny model: a training run and an export on first use
def test_fp16_on_cpu_warns_that_it_only_costs_time(tiny_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="siamese_runtime.precision"):
        Scorer(tiny_model, providers="cpu", precision="fp16")
    assert "fp16 on CPUExecutionProvider runs through casts and is slower than fp32" in caplog.text


@pytest.mark.slow  # the session's tiny model: a training run and an export on first use
def test_precision_missing_from_the_folder_names_what_exists(tiny_model: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["files"]["encoder.int8.onnx"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match="no int8 encoder in this model; available: fp16, fp32"):
        Scorer(folder, providers="cpu", precision="int8")
