"""The manifest of an exported model folder, validated against the runtime's schema before it is written."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx

from siamese_runtime.heads import FORMULAS
from siamese_runtime.model_folder import FORMAT_VERSION, MANIFEST, sha256_of, validate_manifest
from siamese_runtime.tokenizer import Tokenizer

LIBRARIES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "gensim")


def onnx_file_entry(path: Path, role: str, precision: str) -> dict[str, Any]:
    model = onnx.load(str(path), load_external_data=False)
    return {
        "sha256": sha256_of(path),
        "role": role,
        "precision": precision,
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
    }


def write_manifest(
    folder: Path,
    name: str,
    source_run: str,
    tokenizer: Tokenizer,
    vocab_file: str,
    head: str,
    threshold: float,
    encoding_dim: int,
    files: dict[str, dict[str, Any]],
    metrics: dict[str, Any],
    training_config: dict[str, Any] | None = None,
    head_file: str | None = None,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_run": source_run,
        "tokenizer": {
            "file": vocab_file,
            "normalization": tokenizer.to_json()["normalization"],
            "max_length": tokenizer.max_length,
            "vocab_size": tokenizer.vocab_size,
            "vocab_sha256": sha256_of(folder / vocab_file),
        },
        "head": {"name": head, "formula": FORMULAS[head], **({"file": head_file} if head_file else {})},
        "threshold": threshold,
        **({"calibration": calibration} if calibration else {}),
        "encoding_dim": encoding_dim,
        "files": files,
        "metrics": metrics,
        "training_config": training_config or {},
        "versions": {lib: metadata.version(lib) for lib in LIBRARIES if _installed(lib)},
    }
    validate_manifest(manifest, str(folder / MANIFEST))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def _installed(library: str) -> bool:
    try:
        metadata.version(library)
    except metadata.PackageNotFoundError:
        return False
    return True
