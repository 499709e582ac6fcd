"""What a model folder's parts must hold, checked before anything trusts them: the JSON of its manifest and
vocabulary, the learned head's .npz archive (each .npy header before any array is read), each ONNX file's
self-containment (before onnxruntime sees it), and the opened encoder against the manifest."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Hashable, Iterable, Iterator
from contextlib import ExitStack
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy

from .heads import LearnedHead
from .tokenizer import OOV_ID, PAD_ID, Tokenizer

MAX_INTEGER = 2**63 - 1  # the largest integer a model's JSON may hold: int64, what any consumer of it can store


def strict_json(data: bytes) -> Any:
    """Parse UTF-8 JSON as a model may hold it: ValueError for NaN or Infinity (which Python reads by default),
    a number beyond float or int64 range, a key given twice, or nesting deeper than the parser can follow."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError("not valid JSON a model may hold: nested too deeply") from None


def _refuse_constant(name: str) -> float:
    """json's hook for NaN and Infinity, which no schema bound would catch."""
    raise ValueError(f"{name} is not a number a model may hold (JSON has no {name})")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a number a model may hold (beyond a float's range)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > len(str(MAX_INTEGER)) or abs(value := int(text)) > MAX_INTEGER:
        raise ValueError(f"{text[:30]}{'...' if len(text) > 30 else ''} is not a number a model may hold "
                         "(beyond 64 bits)")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError(f"the key {_first_repeated(key for key, _ in pairs)!r} is given twice in one object")
    return document


def _first_repeated(items: Iterable[Hashable]) -> Hashable:
    seen: set[Hashable] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


VOCAB_KEYS = ("format", "normalization", "max_length", "pad_id", "oov_id", "tokens")


def vocabulary(data: bytes) -> Tokenizer:
    """The tokenizer a vocab.json holds: an object of Tokenizer.to_json's keys, typed as it writes them; its tokens
    distinct strings, each one character after the padding and out-of-vocabulary tokens (as Tokenizer.fit
    makes them)."""
    document = strict_json(data)
    if not isinstance(document, dict):
        raise ValueError(f"must be a JSON object, found {type(document).__name__}")
    if unknown := sorted(set(document) - set(VOCAB_KEYS)):
        raise ValueError(f"unknown keys {', '.join(unknown)}; a vocabulary holds {', '.join(VOCAB_KEYS)}")
    for key in ("format", "max_length"):
        _integer(document, key)
    for key, fixed in (("pad_id", PAD_ID), ("oov_id", OOV_ID)):
        if key in document and _integer(document, key) != fixed:
            raise ValueError(f"{key} is {document[key]}; this runtime's tokenizer has {key} {fixed}")
    if not isinstance(document.get("normalization"), str):
        raise ValueError("normalization must be a string")
    tokens = document.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise ValueError("tokens must be a list of strings")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"the token {_first_repeated(tokens)!r} has two ids")
    if (odd := next((token for token in tokens[2:] if len(token) != 1), None)) is not None:
        raise ValueError(f"the token {odd[:20]!r} is not one character")
    return Tokenizer.from_json(document)


def _integer(document: dict[str, Any], key: str) -> int:
    value = document.get(key)
    if type(value) is not int:
        raise ValueError(f"{key} must be an integer, found {json.dumps(value)[:40]}")
    return value


HEAD_DTYPE = np.dtype("<f4")


def head_arrays(data: bytes, encoding_dim: int, max_bytes: int) -> dict[str, np.ndarray]:
    """The learned head's float32 arrays from the bytes of its .npz archive: exactly one member per weight, each
    .npy header (dtype, C order, shape: what `encoding_dim` and the hidden units imply, `max_bytes` in all)
    checked before its data is inflated, and no member holding a byte more than its header says."""
    with _zip_archive(data) as archive, ExitStack() as stack:
        members = _head_members(archive)
        streams = {name: stack.enter_context(archive.open(member)) for name, member in members.items()}
        shapes = {name: _npy_shape(stream) for name, stream in streams.items()}
        _check_head_shapes(shapes, encoding_dim, max_bytes)
        return {name: _npy_data(stream, shapes[name]) for name, stream in streams.items()}


def _zip_archive(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise ValueError(f"not an .npz archive of named arrays ({error})") from None


def _head_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    expected = sorted(f"{name}.npy" for name in LearnedHead.WEIGHTS)
    found = sorted(info.filename for info in archive.infolist())
    if found != expected:
        raise ValueError(f"holds the members {', '.join(found)[:200] or 'none'}; a learned head's archive holds "
                         f"exactly {', '.join(expected)}")
    return {info.filename.removesuffix(".npy"): info for info in archive.infolist()}


def _npy_shape(stream: IO[bytes]) -> tuple[int, ...]:
    """The shape an .npy header declares, after checking it describes a C-ordered little-endian float32 array."""
    version = npy.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version} (this runtime reads 1.0 and 2.0)")
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ValueError("an array of Python objects, stored as a pickle: refused unread")
    if dtype != HEAD_DTYPE or fortran_order:
        raise ValueError(f"an array of {dtype}{' in Fortran order' if fortran_order else ''}; the head's weights "
                         "are float32 (little-endian, C order)")
    return shape


def _check_head_shapes(shapes: dict[str, tuple[int, ...]], encoding_dim: int, max_bytes: int) -> None:
    units = shapes["hidden_bias"][0] if len(shapes["hidden_bias"]) == 1 else 0
    expected = {"hidden": (2 * encoding_dim, units), "hidden_bias": (units,), "output": (units, 1),
                "output_bias": (1,)}
    for name, shape in shapes.items():
        if units < 1 or shape != expected[name]:
            raise ValueError(f"{name} has shape {shape}, expected {expected[name]} (encoding_dim {encoding_dim}, "
                             "one or more hidden units)")
    if (size := sum(math.prod(shape) for shape in shapes.values()) * HEAD_DTYPE.itemsize) > max_bytes:
        raise ValueError(f"its arrays would take {size:,} bytes, more than the {max_bytes:,} a head may")


def _npy_data(stream: IO[bytes], shape: tuple[int, ...]) -> np.ndarray:
    size = math.prod(shape) * HEAD_DTYPE.itemsize
    data = stream.read(size)
    if len(data) != size or stream.read(1):
        raise ValueError(f"an array of shape {shape} {'ends early' if len(data) != size else 'has bytes after it'}")
    return np.frombuffer(data, HEAD_DTYPE).reshape(shape)


# Where ONNX's protobuf messages hold tensors or further messages: {message: {field number: message}}, after
# onnx/onnx.proto (ModelProto, TrainingInfoProto, GraphProto, FunctionProto, NodeProto, AttributeProto,
# SparseTensorProto, TensorProto).
ONNX_MESSAGES: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 8, 13, 14, 1
NODE_OP_TYPE = 4
EP_CONTEXT = b"EPContext"  # a node whose attribute may name a provider's file for onnxruntime to read
FIXED_SIZES = {1: 8, 5: 4}  # protobuf wire types of fixed size (64 and 32 bits)


def check_self_contained(data: bytes) -> None:
    """ValueError unless `data` parses as an ONNX model whose every tensor holds its own data: none kept in an
    external file (onnxruntime would read bytes no checksum covers), and no EPContext node."""
    _check_onnx_message(memoryview(data), "model")


def _check_onnx_message(message: int | memoryview, kind: str) -> None:
    fields = _message_fields(message)
    if kind == "tensor":
        _check_tensor_data_inside(fields)
    if kind == "node" and any(number == NODE_OP_TYPE and value == EP_CONTEXT for number, value in fields):
        raise ValueError("holds an EPContext node, which makes onnxruntime read a provider's file from beside it")
    for number, value in fields:
        if (child := ONNX_MESSAGES[kind].get(number)) is not None:
            _check_onnx_message(value, child)


def _check_tensor_data_inside(fields: list[tuple[int, int | memoryview]]) -> None:
    external = [value for number, value in fields if number == TENSOR_EXTERNAL_DATA]
    if not external and (TENSOR_DATA_LOCATION, EXTERNAL) not in fields:
        return
    name = _text(fields, TENSOR_NAME)
    entries = dict((_text(entry, 1), _text(entry, 2)) for entry in map(_message_fields, external))
    raise ValueError(f"its tensor {name!r} keeps its data in the external file {entries.get('location', '')!r}; "
                     "a model folder's ONNX files hold all their data (no checksum covers external files)")


def _message_fields(value: int | memoryview) -> list[tuple[int, int | memoryview]]:
    if not isinstance(value, memoryview):
        raise ValueError("not an ONNX model: a number where a message belongs")
    return list(_protobuf_fields(value))


def _text(fields: list[tuple[int, int | memoryview]], number: int) -> str:
    """The string field `number` of a message's fields ('' where absent)."""
    found = [value for n, value in fields if n == number and isinstance(value, memoryview)]
    return found[-1].tobytes().decode(errors="replace") if found else ""


def _protobuf_fields(message: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """The (field number, value) pairs of a protobuf message: an int for a varint, else the field's bytes."""
    at = 0
    while at < len(message):
        key, at = _varint(message, at)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, at = _varint(message, at)
        elif wire in FIXED_SIZES or wire == 2:
            size, at = (FIXED_SIZES[wire], at) if wire in FIXED_SIZES else _varint(message, at)
            value, at = message[at : at + size], at + size
        else:
            raise ValueError(f"not an ONNX model: protobuf wire type {wire}")
        if number == 0 or at > len(message):
            raise ValueError("not a whole ONNX model: it ends inside a field" if number else
                             "not an ONNX model: a protobuf field numbered 0")
        yield number, value


def _varint(message: memoryview, at: int) -> tuple[int, int]:
    value = 0
    for shift in range(0, 64, 7):
        if at >= len(message):
            raise ValueError("not a whole ONNX model: it ends inside a number")
        byte = message[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
    raise ValueError("not an ONNX model: a protobuf number longer than 64 bits")
