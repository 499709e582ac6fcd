"""The model folder contract: manifest schema, checksums, and load errors that name the file."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError
from .heads import HEADS, LEARNED, Calibration, Head, LearnedHead, calibrated
from .schemas import SchemaError, validate
from .tokenizer import NORMALIZERS, Tokenizer

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def validate_manifest(manifest: dict[str, Any], source: str) -> None:
    """Raise ModelLoadError naming `source` unless the manifest matches the schema."""
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{source}: the manifest must be a JSON object, found {json.dumps(manifest)[:40]}")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelLoadError(
            f"{source}: unknown manifest format_version {version!r}; this runtime reads version {FORMAT_VERSION}"
        )
    try:
        validate(manifest, "manifest")
    except SchemaError as error:
        raise ModelLoadError(f"{source}: invalid manifest {error}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


PACKAGE = Path(__file__).resolve().parent


def default_model_path() -> Path:
    """The model shipped with the package (wheel), or the repository's models/default in a checkout."""
    packaged = PACKAGE / "models" / "default"  # not importlib.resources: 5 ms of every start-up
    if (packaged / MANIFEST).is_file():
        return packaged
    return PACKAGE.parent / "models" / "default"


@dataclass(frozen=True)
class ModelFolder:
    """A checked model folder: its manifest, tokenizer and the paths of its ONNX files.

    Each file's checksum is verified when it is first asked for (the vocabulary at load, an encoder when
    a session opens it), so start-up hashes what it uses, not every file of the folder.
    """

    path: Path
    manifest: dict[str, Any]
    tokenizer: Tokenizer
    _verified: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path | None = None) -> ModelFolder:
        """Read and check a model folder; the embedded default model when `path` is None."""
        folder = Path(path) if path is not None else default_model_path()
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise ModelLoadError(f"{manifest_path}: no such file; is {folder} a model folder?")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelLoadError(f"{manifest_path}: not valid JSON: {error}") from None
        except ValueError as error:
            raise ModelLoadError(f"{manifest_path}: {error}") from None
        validate_manifest(manifest, str(manifest_path))
        tokenizer_info = manifest["tokenizer"]
        for name in [*manifest["files"], tokenizer_info["file"]]:
            _check_inside(folder, name, manifest_path)
        if tokenizer_info["normalization"] not in NORMALIZERS:
            raise ModelLoadError(
                f"{manifest_path}: unknown tokenizer normalization {tokenizer_info['normalization']!r}; "
                f"this runtime implements {', '.join(NORMALIZERS)}"
            )
        vocab_path = folder / tokenizer_info["file"]
        _verify_checksum(vocab_path, tokenizer_info["vocab_sha256"])
        try:
            tokenizer = Tokenizer.load(vocab_path)
        except (ValueError, KeyError, json.JSONDecodeError) as error:
            raise ModelLoadError(f"{vocab_path}: unusable vocabulary: {error}") from None
        if tokenizer.vocab_size != tokenizer_info["vocab_size"]:
            raise ModelLoadError(
                f"{vocab_path}: holds {tokenizer.vocab_size} tokens, the manifest says {tokenizer_info['vocab_size']}"
            )
        for key in ("normalization", "max_length"):
            if getattr(tokenizer, key) != tokenizer_info[key]:
                raise ModelLoadError(
                    f"{vocab_path}: {key} is {getattr(tokenizer, key)!r}, the manifest says {tokenizer_info[key]!r}"
                )
        return cls(folder, manifest, tokenizer)

    @property
    def digest(self) -> str:
        """The model's identity: a hash of its whole manifest (files and checksums, vocabulary, head, threshold)."""
        return hashlib.sha256(json.dumps(self.manifest, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    @property
    def vocab_file(self) -> str:
        return self.manifest["tokenizer"]["file"]

    def encoder_inputs(self, precision: str) -> list[str] | None:
        """The input names the manifest lists for the encoder of `precision` (None where it lists none)."""
        return self.manifest["files"][self.encoder_file(precision)].get("inputs")

    def variant_record(self, precision: str) -> dict[str, float] | None:
        """What export measured of the `precision` encoder against fp32 (accuracy points lost, largest score
        change with batching), or None where it recorded nothing."""
        return self.manifest.get("metrics", {}).get("variant_bounds", {}).get(precision)

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def head(self) -> str:
        return self.manifest["head"]["name"]

    @property
    def calibration(self) -> Calibration | None:
        """The Platt scaling export fitted on the validation split (None in folders exported before it)."""
        entry = self.manifest.get("calibration")
        return None if entry is None else Calibration(float(entry["slope"]), float(entry["intercept"]))

    def similarity(self) -> Head:
        """The model's head, then its calibration: two batches of encodings to probabilities. A learned head's
        weights are read as plain numpy arrays (never pickles), checksum verified."""
        if self.head != LEARNED:
            return calibrated(HEADS[self.head], self.calibration)
        manifest_path = self.path / MANIFEST
        file = self.manifest["head"].get("file")
        if file is None or file not in self.manifest["files"]:
            raise ModelLoadError(f"{manifest_path}: the {LEARNED} head needs its weights file named in head.file "
                                 "and listed in files")
        path = self.verified_path(file)
        try:
            arrays = np.load(path, allow_pickle=False)
            if not isinstance(arrays, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive of named arrays")
            with arrays:
                head = LearnedHead.from_arrays(arrays, self.encoding_dim)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise ModelLoadError(f"{path}: unusable head weights: {error}") from None
        return calibrated(head, self.calibration)

    @property
    def encoding_dim(self) -> int:
        return int(self.manifest["encoding_dim"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    def precisions(self) -> list[str]:
        """The precisions of the encoders this folder holds."""
        return sorted(e["precision"] for e in self.manifest["files"].values() if e["role"] == "encoder")

    def encoder_file(self, precision: str = "fp32") -> str:
        """The manifest's name of the encoder of `precision`."""
        for name, entry in self.manifest["files"].items():
            if entry["role"] == "encoder" and entry["precision"] == precision:
                return name
        raise ModelLoadError(
            f"{self.path / MANIFEST}: no {precision} encoder in this model; "
            f"available: {', '.join(self.precisions()) or 'none'}"
        )

    def encoder_path(self, precision: str = "fp32") -> Path:
        """The encoder of `precision`, its checksum verified (once per ModelFolder)."""
        return self.verified_path(self.encoder_file(precision))

    def verified_path(self, name: str) -> Path:
        """The path of the manifest's file `name`, after checking it is whole and unaltered."""
        if name not in self._verified:
            if not (self.path / name).is_file() and self.path.resolve().is_relative_to(PACKAGE):
                raise ModelLoadError(f"{self.path / name}: not shipped with the installed package, which carries "
                                     "only what its runtime loads; the repository's models/default has every file")
            _verify_checksum(self.path / name, self.manifest["files"][name]["sha256"])
            self._verified.add(name)
        return self.path / name


def _refuse_constant(name: str) -> float:
    """json's hook for NaN and Infinity, which Python reads by default and no schema bound would catch."""
    raise ValueError(f"{name} is not a number a model may hold (JSON has no {name})")


def _check_inside(folder: Path, name: str, manifest_path: Path) -> None:
    """Refuse a file name that is absolute, holds '..' or resolves (symlinks followed) outside the folder."""
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ModelLoadError(f"{manifest_path}: file {name!r} must be named relative to the model folder, without '..'")
    root, resolved = folder.resolve(), (folder / name).resolve()
    if not resolved.is_relative_to(root):
        raise ModelLoadError(f"{folder / name}: resolves to {resolved}, outside the model folder {root}")


def _verify_checksum(path: Path, expected: str) -> None:
    if not path.is_file():
        raise ModelLoadError(f"{path}: listed in the manifest but missing")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelLoadError(
            f"{path}: sha256 {actual} does not match the manifest ({expected}); the file is truncated or altered"
        )
