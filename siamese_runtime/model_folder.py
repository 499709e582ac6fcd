"""The model folder contract: manifest schema, checksums, and load errors that name the file.

Every part of a folder is untrusted until checked. A part is read whole from a regular file of bounded size
(a directory, FIFO or device in its place is refused, never waited on), its sha256 checked against the manifest,
and those very bytes are what numpy and onnxruntime get; whatever reading or parsing one part raises is a
ModelLoadError naming its file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import ModelLoadError
from .heads import HEADS, LEARNED, Calibration, Head, LearnedHead, calibrated
from .model_checks import check_self_contained, head_arrays, strict_json, vocabulary
from .schemas import SchemaError, validate
from .tokenizer import NORMALIZERS, Tokenizer

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
MIB = 1 << 20
# The most bytes a part may hold: a manifest and its metrics; a vocabulary of every Unicode code point, each
# escaped; an ONNX model whole (protobuf's own limit); a learned head of millions of weights (its arrays too).
MAX_BYTES = {"manifest": 16 * MIB, "vocabulary": 16 * MIB, "encoder": 2048 * MIB - 1, "head": 256 * MIB}
MISSING = "listed in the manifest but missing"
FILE_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
              stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}


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


@contextmanager
def model_part(path: Path, what: str = "") -> Iterator[None]:
    """The boundary around reading or parsing one part: whatever the block raises is a ModelLoadError naming
    `path`, its reason after `what`."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 (a hostile file can make a parser raise anything)
        raise ModelLoadError(f"{path}: {what}{_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, OSError):
        return f"cannot be read: {error.strerror or error}"
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    return str(error) if isinstance(error, ValueError) and str(error) else f"{type(error).__name__}: {error}"


@contextmanager
def _opened_part(path: Path, missing: str) -> Iterator[tuple[IO[bytes], int]]:
    """The regular file `path` open for reading, and its size. Opened without blocking, so that a FIFO in its
    place is refused rather than waited on; ModelLoadError saying `missing` where there is no such file."""
    with model_part(path):
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: {missing}") from None
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            os.close(descriptor)
            kind = next((name for test, name in FILE_KINDS.items() if test(info.st_mode)), "not a file")
            raise ModelLoadError(f"{path}: {kind}, not a regular file")
        with os.fdopen(descriptor, "rb") as stream:
            yield stream, info.st_size


def read_part(path: Path, limit: int, missing: str = MISSING) -> bytes:
    """The whole content of the regular file `path`, refused (ModelLoadError naming it) beyond `limit` bytes."""
    with _opened_part(path, missing) as (stream, size):
        data = stream.read(size + 1) if size <= limit else b""  # a byte more than it said: did it grow?
    if max(size, len(data)) > limit:
        raise ModelLoadError(f"{path}: holds {max(size, len(data)):,} bytes or more, beyond the {limit:,} this "
                             "part may hold")
    return data


def _verified_bytes(path: Path, expected: str, limit: int) -> bytes:
    data = read_part(path, limit)
    _check_digest(path, hashlib.sha256(data).hexdigest(), expected)
    return data


def _verify_checksum(path: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with _opened_part(path, MISSING) as (stream, _):
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    _check_digest(path, digest.hexdigest(), expected)


def _check_digest(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise ModelLoadError(
            f"{path}: sha256 {actual} does not match the manifest ({expected}); the file is truncated or altered"
        )


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked manifest of `folder`: strict JSON, the schema, file names inside the folder, a known
    normalization."""
    manifest_path = folder / MANIFEST
    data = read_part(manifest_path, MAX_BYTES["manifest"], missing=f"no such file; is {folder} a model folder?")
    with model_part(manifest_path):
        manifest = strict_json(data)
        validate_manifest(manifest, str(manifest_path))
        tokenizer_info = manifest["tokenizer"]
        for name in [*manifest["files"], tokenizer_info["file"]]:
            _check_inside(folder, name, manifest_path)
        if tokenizer_info["normalization"] not in NORMALIZERS:
            raise ModelLoadError(
                f"{manifest_path}: unknown tokenizer normalization {tokenizer_info['normalization']!r}; "
                f"this runtime implements {', '.join(NORMALIZERS)}"
            )
    return manifest


def read_tokenizer(folder: Path, tokenizer_info: dict[str, Any]) -> Tokenizer:
    """The vocabulary the manifest's `tokenizer` entry names, checksum verified, matching the entry."""
    vocab_path = folder / tokenizer_info["file"]
    data = _verified_bytes(vocab_path, tokenizer_info["vocab_sha256"], MAX_BYTES["vocabulary"])
    with model_part(vocab_path, "unusable vocabulary: "):
        tokenizer = vocabulary(data)
    if tokenizer.vocab_size != tokenizer_info["vocab_size"]:
        raise ModelLoadError(
            f"{vocab_path}: holds {tokenizer.vocab_size} tokens, the manifest says {tokenizer_info['vocab_size']}"
        )
    for key in ("normalization", "max_length"):
        if getattr(tokenizer, key) != tokenizer_info[key]:
            raise ModelLoadError(
                f"{vocab_path}: {key} is {getattr(tokenizer, key)!r}, the manifest says {tokenizer_info[key]!r}"
            )
    return tokenizer


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
        if path is not None and not str(path):  # Path("") would be the current folder
            raise ModelLoadError("the model path is empty; give a model folder, or none for the embedded default")
        folder = Path(path) if path is not None else default_model_path()
        manifest = read_manifest(folder)
        return cls(folder, manifest, read_tokenizer(folder, manifest["tokenizer"]))

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

    def encoder_outputs(self, precision: str) -> list[str] | None:
        """The output names the manifest lists for the encoder of `precision` (None where it lists none)."""
        return self.manifest["files"][self.encoder_file(precision)].get("outputs")

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
        weights are read as plain float32 arrays (never pickles) from the checksum-verified bytes of its .npz,
        each array's header checked before it is read."""
        if self.head != LEARNED:
            return calibrated(HEADS[self.head], self.calibration)
        file = self.manifest["head"].get("file")
        if file is None or file not in self.manifest["files"]:
            raise ModelLoadError(f"{self.path / MANIFEST}: the {LEARNED} head needs its weights file named in "
                                 "head.file and listed in files")
        data = self.verified_bytes(file, MAX_BYTES["head"])
        with model_part(self.path / file, "unusable head weights: "):
            head = LearnedHead.from_arrays(head_arrays(data, self.encoding_dim, MAX_BYTES["head"]), self.encoding_dim)
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

    def encoder_bytes(self, precision: str = "fp32") -> bytes:
        """The encoder of `precision` as onnxruntime is to get it: read now, its checksum verified, and refused
        unless it holds all its data (an external data file is covered by no checksum)."""
        name = self.encoder_file(precision)
        data = self.verified_bytes(name, MAX_BYTES["encoder"])
        with model_part(self.path / name):
            check_self_contained(data)
        return data

    def verified_path(self, name: str) -> Path:
        """The path of the manifest's file `name`, after checking it is whole and unaltered."""
        if name not in self._verified:
            self._check_shipped(name)
            _verify_checksum(self.path / name, self.manifest["files"][name]["sha256"])
            self._verified.add(name)
        return self.path / name

    def verified_bytes(self, name: str, limit: int) -> bytes:
        """The content of the manifest's file `name` (at most `limit` bytes), read once and checked whole and
        unaltered: the bytes to parse, never the path to open again."""
        self._check_shipped(name)
        data = _verified_bytes(self.path / name, self.manifest["files"][name]["sha256"], limit)
        self._verified.add(name)
        return data

    def _check_shipped(self, name: str) -> None:
        if not (self.path / name).exists() and self.path.resolve().is_relative_to(PACKAGE):
            raise ModelLoadError(f"{self.path / name}: not shipped with the installed package, which carries "
                                 "only what its runtime loads; the repository's models/default has every file")


def _check_inside(folder: Path, name: str, manifest_path: Path) -> None:
    """Refuse a file name that is absolute, holds '..' or NUL, or resolves (links followed) outside the folder."""
    if Path(name).is_absolute() or ".." in Path(name).parts or "\0" in name:
        raise ModelLoadError(f"{manifest_path}: file {name!r} must be named relative to the model folder, "
                             "without '..' or NUL")
    with model_part(folder / name):
        root, resolved = folder.resolve(), (folder / name).resolve()
    if not resolved.is_relative_to(root):
        raise ModelLoadError(f"{folder / name}: resolves to {resolved}, outside the model folder {root}")
