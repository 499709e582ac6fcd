"""Packaging: the CPU and GPU distributions ship the same package with one onnxruntime build each."""

from __future__ import annotations

import tomllib

from .conftest import REPO


def project(path: str) -> dict:
    return tomllib.loads((REPO / path).read_text())["project"]


def test_gpu_distribution_swaps_only_the_onnxruntime_build() -> None:
    cpu, gpu = project("pyproject.toml"), project("gpu/pyproject.toml")
    assert [d.replace("onnxruntime", "onnxruntime-gpu", 1) if d.startswith("onnxruntime") else d
            for d in cpu["dependencies"]] == gpu["dependencies"]
    assert cpu["scripts"] == gpu["scripts"]


def test_runtime_dependencies_exclude_training_libraries() -> None:
    heavy = ("tensorflow", "keras", "tf2onnx", "gensim", "pandas", "onnx>", "onnx=")
    assert not [d for d in project("pyproject.toml")["dependencies"] if d.startswith(heavy)]


def test_gpu_distribution_offers_the_runtime_extras() -> None:
    cpu, gpu = project("pyproject.toml"), project("gpu/pyproject.toml")
    for extra in ("parquet", "ray"):
        assert cpu["optional-dependencies"][extra] == gpu["optional-dependencies"][extra], extra
