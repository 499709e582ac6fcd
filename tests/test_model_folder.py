"""Model folders load only when whole and unaltered; every failure names the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from siamese_runtime import ModelFolder, ModelLoadError, Scorer
from siamese_runtime.model_folder import default_model_path

from .conftest import DEFAULT_MODEL


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_MODEL, tmp_path / "model"))


def test_default_model_loads_and_verifies_every_checksum() -> None:
    model = ModelFolder.load()
    assert model.path.resolve() == default_model_path().resolve()
    assert model.head == "manhattan" and 0 < model.threshold < 1
    assert model.encoder_path().is_file()


def test_missing_manifest_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"manifest\.json: no such file"):
        ModelFolder.load(tmp_path)


def test_truncated_onnx_is_refused_before_onnxruntime_sees_it(model_copy: Path) -> None:
    encoder = model_copy / "encoder.onnx"
    encoder.write_bytes(encoder.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"encoder\.onnx: sha256 .* truncated or altered"):
        Scorer(model_copy, providers="cpu")


def test_missing_listed_file_is_named(model_copy: Path) -> None:
    (model_copy / "encoder.onnx").unlink()
    with pytest.raises(ModelLoadError, match=r"encoder\.onnx: listed in the manifest but missing"):
        ModelFolder.load(model_copy)


def test_unknown_manifest_version_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"manifest\.json: unknown manifest format_version 99"):
        ModelFolder.load(model_copy)


def test_manifest_against_schema(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["head"]["name"] = "hamming"
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"invalid manifest at head/name"):
        ModelFolder.load(model_copy)


def test_vocabulary_that_does_not_fit_the_model_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["tokenizer"]["vocab_size"] += 1
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"vocab\.json: holds \d+ tokens, the manifest says"):
        ModelFolder.load(model_copy)


def test_default_model_ships_every_precision_and_names_them_when_one_is_missing() -> None:
    model = ModelFolder.load()
    assert model.precisions() == ["fp16", "fp32", "int8"]
    with pytest.raises(ModelLoadError, match="no bf16 encoder in this model; available: fp16, fp32, int8"):
        model.encoder_path("bf16")
