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
    assert scorer.precision == "fp32" and scorer.encoder.session.get_providers()[0] == "CPUExecutionProvider"
    change = model.variant_record("int8")["max_score_change_by_batching"]
    assert change > 0.001  # export measured the default model's int8 scores moving with batching
    assert scorer.encoder.precision_reason == ("auto: fp32 on CPUExecutionProvider; not int8: its scores change with "
                                       f"batching (by up to {change:.2g})")
    assert Scorer(model, providers="cpu", precision="int8").encoder.precision_reason == "requested"


def model_with_int8_record(tmp_path: Path, record: dict[str, float] | None) -> ModelFolder:
    """A copy of the default model whose manifest says `record` of its int8 encoder (None: nothing)."""
    folder = Path(shutil.copytree(ModelFolder.load().path, tmp_path / "model"))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if record is None:
        del manifest["metrics"]["variant_bounds"]["int8"]
    else:
        manifest["metrics"]["variant_bounds"]["int8"] = record
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return ModelFolder.load(folder)


def test_auto_runs_int8_on_cpu_where_export_recorded_it_costs_nothing(tmp_path: Path) -> None:
    model = model_with_int8_record(tmp_path, {"max_drop_points": 0.12, "max_score_change_by_batching": 0.0})
    scorer = Scorer(model, providers="cpu")
    assert scorer.precision == "int8" and scorer.encoder.session.get_providers()[0] == "CPUExecutionProvider"
    assert scorer.encoder.precision_reason == ("auto: int8 on CPUExecutionProvider; it loses 0.12 accuracy points "
                                               "at most and its scores do not depend on batching")
    assert choose_precision("auto", "OpenVINOExecutionProvider", model).precision == "int8"
    assert choose_precision("auto", "CUDAExecutionProvider", model).precision == "fp16"
    assert choose_precision("fp32", "CPUExecutionProvider", model).precision == "fp32"  # parity, on request


@pytest.mark.parametrize(("record", "reason"), [
    ({"max_drop_points": 0.25, "max_score_change_by_batching": 0.0},
     "it loses 0.25 accuracy points (at most 0.2 allowed)"),
    ({"max_drop_points": 0.1, "max_score_change_by_batching": 0.03}, "its scores change with batching (by up to 0.03)"),
    ({"max_drop_points": 0.3, "max_score_change_by_batching": 0.03},
     "it loses 0.30 accuracy points (at most 0.2 allowed) and its scores change with batching (by up to 0.03)"),
    ({"max_drop_points": 0.1}, "its scores were not checked against batching"),
    ({"max_score_change_by_batching": 0.0}, "its accuracy was not recorded"),
])
def test_auto_keeps_fp32_on_cpu_naming_each_test_int8_failed(
    tmp_path: Path, record: dict[str, float], reason: str
) -> None:
    choice = choose_precision("auto", "CPUExecutionProvider", model_with_int8_record(tmp_path, record))
    assert (choice.precision, choice.reason) == ("fp32", f"auto: fp32 on CPUExecutionProvider; not int8: {reason}")


def test_auto_without_an_int8_record_is_fp32_and_a_malformed_record_is_refused(tmp_path: Path) -> None:
    choice = choose_precision("auto", "CPUExecutionProvider", model_with_int8_record(tmp_path, None))
    assert choice.reason == "auto: fp32 on CPUExecutionProvider; export recorded no int8 encoder and its accuracy"
    refusal = r"manifest.json: invalid manifest at metrics/variant_bounds/int8/max_score_change_by_batching: must be"
    with pytest.raises(ModelLoadError, match=refusal):
        model_with_int8_record(tmp_path / "bad", {"max_drop_points": 0.1, "max_score_change_by_batching": -1})


def test_int8_scores_depend_on_the_batch_which_is_why_auto_does_not_pick_it() -> None:
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
