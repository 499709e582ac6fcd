"""One boundary for everything a model folder holds. Folders are generated from a copy of models/default: a part
truncated, altered, replaced by other bytes (its checksum in the manifest updated, as a hostile exporter would)
or by a directory, FIFO or link; loading ends in a ModelLoadError naming the file, or in a model that scores
(exactly as the original does, wherever the part's bytes are still the checksummed ones). Never in another
exception, and never with bytes no checksum covers."""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from siamese_runtime import ModelFolder, ModelLoadError, Scorer

from .conftest import DEFAULT_MODEL, REPO, run_cli

PARTS = ("manifest.json", "vocab.json", "encoder.onnx", "head.npz")  # what scoring in fp32 reads
PAIRS = [("花呗怎么还款", "花呗如何还钱"), ("借呗额度怎么提高", "怎样提高借呗的额度"), ("今天天气很好", "信用卡逾期了")]
EXAMPLES = settings(max_examples=50, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
KINDS = ("directory", "FIFO", "link to itself", "dangling link", "link to another part")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parts of models/default that scoring reads, copied where examples can hard-link them."""
    folder = tmp_path_factory.mktemp("base")
    for name in PARTS:
        shutil.copy(DEFAULT_MODEL / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def original(base: Path) -> np.ndarray:
    scores = outcome(base)
    assert isinstance(scores, np.ndarray)
    return scores


@contextmanager
def model_copy(base: Path, root: Path) -> Iterator[Path]:
    """A fresh folder of hard links to `base`'s parts (`replace` unlinks one before writing), removed after."""
    folder = Path(tempfile.mkdtemp(dir=root))
    try:
        for name in PARTS:
            os.link(base / name, folder / name)
        yield folder
    finally:
        shutil.rmtree(folder)


def replace(folder: Path, name: str, data: bytes) -> None:
    (folder / name).unlink()
    (folder / name).write_bytes(data)


def sign(folder: Path, name: str) -> None:
    """Record the part's new checksum in the manifest."""
    manifest = json.loads((folder / "manifest.json").read_bytes())
    digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    if name == manifest["tokenizer"]["file"]:
        manifest["tokenizer"]["vocab_sha256"] = digest
    else:
        manifest["files"][name]["sha256"] = digest
    replace(folder, "manifest.json", json.dumps(manifest).encode())


def put_kind(folder: Path, name: str, kind: str) -> None:
    """Put something other than a regular file where the part was."""
    path = folder / name
    path.unlink()
    if kind == "directory":
        path.mkdir()
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to({"link to itself": name, "dangling link": "absent",
                         "link to another part": "manifest.json" if name != "manifest.json" else "vocab.json"}[kind])


def outcome(folder: Path) -> np.ndarray | ModelLoadError:
    """PAIRS scored by the folder's fp32 model, or the ModelLoadError loading it ended in; anything else raises."""
    try:
        return Scorer(folder, providers="cpu", precision="fp32", intra_op_num_threads=1).score(PAIRS)
    except ModelLoadError as error:
        return error


def assert_named(error: ModelLoadError, folder: Path, names: tuple[str, ...]) -> None:
    assert any(str(error).startswith(f"{folder / name}: ") for name in names), str(error)


def assert_named_or_scores(result: np.ndarray | ModelLoadError, folder: Path, names: tuple[str, ...],
                           expected: np.ndarray | None = None) -> None:
    """A ModelLoadError naming one of `names`, or scores: `expected` exactly, or any float32 per pair."""
    event("refused" if isinstance(result, ModelLoadError) else "scored")
    if isinstance(result, ModelLoadError):
        assert_named(result, folder, names)
    elif expected is not None:
        assert result.tobytes() == expected.tobytes()
    else:
        assert result.dtype == np.float32 and result.shape == (len(PAIRS),)


@st.composite
def byte_edits(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` cut short, one byte changed, bytes spliced in, or replaced whole."""
    at = draw(st.integers(0, len(data) - 1))
    edit = draw(st.sampled_from(["truncate", "change", "splice", "replace"]))
    if edit == "truncate":
        return data[:at]
    if edit == "change":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if edit == "splice":
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at + draw(st.integers(0, 64)) :]
    return draw(st.binary(max_size=256))


def change_part(draw: Callable[[st.SearchStrategy[Any]], Any], folder: Path, name: str) -> None:
    """Replace the part by another kind of file, or by edited bytes."""
    if draw(st.booleans()):
        put_kind(folder, name, draw(st.sampled_from(KINDS)))
    else:
        replace(folder, name, draw(byte_edits((folder / name).read_bytes())))


# Parts changed behind the manifest's back: the checksum catches every change, whatever the file became.

@EXAMPLES
@given(name=st.sampled_from(PARTS[1:]), data=st.data())
def test_a_part_changed_behind_the_manifest_is_named_or_scores_as_before(
    base: Path, original: np.ndarray, tmp_path: Path, name: str, data: st.DataObject
) -> None:
    with model_copy(base, tmp_path) as folder:
        change_part(data.draw, folder, name)
        assert_named_or_scores(outcome(folder), folder, (name,), original)


# The manifest, the root of trust: anything it may hold is checked.

JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
               | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
               | st.sampled_from(["\x00", "../x", "/etc/passwd", "x" * 300, "", "."]))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
RAW_VALUES = st.one_of(  # JSON text Python's json reads but no model may hold
    (st.sampled_from([5_000, 100_000]) | st.integers(1, 200_000)).map(lambda depth: "[" * depth + "]" * depth),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]),
    st.integers(20, 5000).map(lambda digits: "9" * digits),
)
SENTINEL = "@@raw-json@@"  # replaced by the raw text once the document is written
KEYS = st.text(max_size=8)


def paths_in(document: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every key path of a JSON document, with the value there."""
    children = document.items() if isinstance(document, dict) else enumerate(document) if isinstance(
        document, list) else []
    for key, value in children:
        yield (*prefix, key), value
        yield from paths_in(value, (*prefix, key))


@st.composite
def edited_json(draw: st.DrawFn, text: bytes, keys: st.SearchStrategy[str] = KEYS,
                focus: tuple[tuple[Any, ...], ...] = ()) -> bytes:
    """A JSON document with one value (often one at a `focus` path) replaced by any JSON, another of its values,
    or raw text such as NaN or deep nesting; or a key deleted, or one added beside it; or its text edited as
    bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(byte_edits(text))
    document = json.loads(text)
    found = dict(paths_in(document))
    path = draw(st.sampled_from([(), *found]) | st.sampled_from([p for p in focus if p in found] or [()]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    raw = draw(RAW_VALUES) if draw(st.integers(0, 2)) == 0 else None
    value = SENTINEL if raw is not None else draw(JSON_VALUES | st.sampled_from(list(found.values())))
    action = draw(st.sampled_from(["replace", "delete", "add"])) if path else "replace"
    if not path:
        document = value
    elif action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(keys)] = value
    else:
        parent[path[-1]] = value
    return json.dumps(document, ensure_ascii=False).replace(json.dumps(SENTINEL), raw or "").encode()


MANIFEST_FOCUS = (("files", "head.npz"), ("files", "encoder.onnx", "sha256"), ("tokenizer", "file"), ("head", "file"),
                  ("calibration", "slope"), ("encoding_dim",), ("threshold",), ("tokenizer", "max_length"))
FILE_NAMES = st.sampled_from(["a\x00b", "../outside.onnx", "/etc/passwd", "x" * 5000, "", ".", "loop", "dir/"])


@EXAMPLES
@given(data=st.data())
def test_any_manifest_is_named_or_gives_a_model_that_scores(base: Path, tmp_path: Path, data: st.DataObject) -> None:
    with model_copy(base, tmp_path) as folder:
        (folder / "loop").symlink_to("loop")
        if data.draw(st.integers(0, 5)) == 0:
            put_kind(folder, "manifest.json", data.draw(st.sampled_from(KINDS)))
        else:
            text = (folder / "manifest.json").read_bytes()
            replace(folder, "manifest.json", data.draw(edited_json(text, FILE_NAMES | KEYS, MANIFEST_FOCUS)))
        result = outcome(folder)
        assert_named_or_scores(result, folder, (*PARTS, ""))
        if isinstance(result, np.ndarray):
            assert np.all((result >= 0) & (result <= 1)), result


# A vocabulary signed in the manifest: its tokens must still be what the tokenizer can use.

def tokens_edits(document: dict[str, Any]) -> st.SearchStrategy[list[Any]]:
    tokens = document["tokens"]
    position = st.integers(0, len(tokens) - 1)
    odd = st.sampled_from([7, None, [1], {"a": 1}, "", "ab", "<pad>", tokens[5], "\x00"]) | JSON_VALUES
    return st.one_of(
        st.tuples(position, odd).map(lambda edit: [*tokens[: edit[0]], edit[1], *tokens[edit[0] + 1 :]]),
        st.tuples(position, odd).map(lambda edit: [*tokens[: edit[0]], edit[1], *tokens[edit[0] :]]),
        position.map(lambda cut: tokens[:cut]),
    )


@EXAMPLES
@given(data=st.data())
def test_a_signed_vocabulary_is_named_or_holds_distinct_characters(
    base: Path, tmp_path: Path, data: st.DataObject
) -> None:
    with model_copy(base, tmp_path) as folder:
        text = (folder / "vocab.json").read_bytes()
        if data.draw(st.booleans()):
            document = json.loads(text)
            document["tokens"] = data.draw(tokens_edits(document))
            edited = json.dumps(document, ensure_ascii=False).encode()
        else:
            edited = data.draw(edited_json(text))
        replace(folder, "vocab.json", edited)
        sign(folder, "vocab.json")
        try:
            tokens = ModelFolder.load(folder).tokenizer.tokens
        except ModelLoadError as error:
            assert_named(error, folder, ("vocab.json",))
            return
    assert all(isinstance(token, str) for token in tokens) and len(set(tokens)) == len(tokens)
    assert tokens[:2] == ("<pad>", "<oov>") and all(len(token) == 1 for token in tokens[2:])


# A learned head's archive, signed: exactly its four float32 arrays, each header checked before it is read.

WEIGHTS = ("hidden", "hidden_bias", "output", "output_bias")
ODD_DTYPES = ["<f8", "<f2", ">f4", "<i4", "<i8", "|u1", "<c8", "<U1", "|b1", "O", "<f4,<f4"]


def npy_bytes(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.lib.format.write_array(stream, array, allow_pickle=True)
    return stream.getvalue()


def claimed_npy(shape: tuple[int, ...], data: bytes = b"") -> bytes:
    """An .npy header claiming `shape` of float32, then `data`."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return stream.getvalue() + data


@st.composite
def head_archives(draw: st.DrawFn, arrays: dict[str, np.ndarray]) -> tuple[bytes, bool]:
    """A .npz archive of the head's weights with up to two edits, and whether its members are still exactly the
    head's (edits can undo one another)."""
    members = {f"{name}.npy": npy_bytes(array) for name, array in arrays.items()}
    extra: list[tuple[str, bytes]] = []
    edits = draw(st.lists(st.sampled_from(["drop", "extra", "twice", "dtype", "shape", "fortran", "claim", "short",
                                           "long"]), max_size=2))
    name = draw(st.sampled_from(WEIGHTS))
    array = arrays[name]
    for edit in edits:
        if edit == "drop":
            members.pop(f"{name}.npy", None)
        elif edit == "extra":
            extra.append((draw(st.sampled_from(["extra.npy", "hidden", "HIDDEN.npy", "dir/"])), npy_bytes(array)))
        elif edit == "twice":
            extra.append((f"{name}.npy", npy_bytes(array)))
        elif edit == "dtype":
            dtype = draw(st.sampled_from(ODD_DTYPES))
            odd = np.array([object()] * 2, dtype=object) if dtype == "O" else np.zeros(array.shape, dtype)
            members[f"{name}.npy"] = npy_bytes(odd)
        elif edit == "shape":
            shape = draw(st.lists(st.integers(0, 300), max_size=3).filter(lambda dims: tuple(dims) != array.shape))
            members[f"{name}.npy"] = npy_bytes(np.zeros(shape, "<f4"))
        elif edit == "fortran":
            members[f"{name}.npy"] = npy_bytes(np.asfortranarray(np.zeros((3, 4), "<f4")))
        elif edit == "claim":  # 100 GB, or more than numpy can count
            members[f"{name}.npy"] = claimed_npy(draw(st.sampled_from([(256, 100 << 20), (2**40, 2**40), (-1,)])))
        elif edit == "short":
            members[f"{name}.npy"] = members.get(f"{name}.npy", npy_bytes(array))[:-4]
        else:
            members[f"{name}.npy"] = members.get(f"{name}.npy", npy_bytes(array)) + b"\0" * 3  # never a float more
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    stream = io.BytesIO()
    entries = [*members.items(), *extra]
    with zipfile.ZipFile(stream, "w", compression) as archive:
        for member, content in entries:
            archive.writestr(member, content)
    return stream.getvalue(), sorted(entries) == sorted((f"{n}.npy", npy_bytes(a)) for n, a in arrays.items())


@EXAMPLES
@given(data=st.data())
def test_a_signed_head_archive_loads_only_as_its_four_float32_arrays(
    base: Path, tmp_path: Path, data: st.DataObject
) -> None:
    with np.load(base / "head.npz") as stored:
        arrays = {name: stored[name] for name in WEIGHTS}
    encodings = np.random.default_rng(0).standard_normal((2, 5, 128)).astype(np.float32)
    expected = ModelFolder.load(base).similarity()(*encodings)
    with model_copy(base, tmp_path) as folder:
        archive, intact = data.draw(head_archives(arrays))
        replace(folder, "head.npz", archive)
        sign(folder, "head.npz")
        try:
            scores = ModelFolder.load(folder).similarity()(*encodings)
        except ModelLoadError as error:
            assert not intact, error
            assert_named(error, folder, ("head.npz",))
            return
    assert intact and scores.tobytes() == expected.tobytes()


def claim_a_100_gb_hidden_layer(folder: Path) -> str:
    """A signed head archive whose hidden member's header claims 100 GB of float32 (and holds none)."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive, np.load(folder / "head.npz") as stored:
        for name in WEIGHTS:
            archive.writestr(f"{name}.npy", claimed_npy((256, 100 << 20)) if name == "hidden" else
                             npy_bytes(stored[name]))
    replace(folder, "head.npz", stream.getvalue())
    sign(folder, "head.npz")
    return "head.npz"


def test_a_head_member_claiming_100_gb_is_refused_without_allocating_it(base: Path, tmp_path: Path) -> None:
    with model_copy(base, tmp_path) as folder:
        claim_a_100_gb_hidden_layer(folder)
        model = ModelFolder.load(folder)
        tracemalloc.start()
        try:
            with pytest.raises(ModelLoadError, match=r"head\.npz: unusable head weights: hidden has shape"):
                model.similarity()
            assert tracemalloc.get_traced_memory()[1] < 16 << 20
        finally:
            tracemalloc.stop()


# Encoders, signed: what onnxruntime gets is a whole ONNX model, self-contained, of the inputs and outputs the
# runtime feeds and reads.

VOCAB_SIZE, ENCODING_DIM = 3184, 128
TENSOR_TYPES = {"int32": 6, "int64": 7, "int8": 3, "uint32": 12, "float32": 1, "float16": 10, "float64": 11,
                "bool": 9, "string": 8}  # onnx.TensorProto's numbers


@dataclass(frozen=True)
class EncoderSpec:
    """A tiny encoder (an embedding, averaged over the sentence), varied from what the runtime needs."""

    input_type: str = "int32"
    input_shape: tuple[str | int | None, ...] = ("batch", "length")
    inputs: tuple[str, ...] = ("token_ids",)
    output_type: str = "float32"
    output_rank: int = 2
    outputs: tuple[str, ...] = ("encoding",)
    rows: int = VOCAB_SIZE
    ep_context: bool = False

    @property
    def fits(self) -> bool:
        """What the runtime needs: one int32 input of any [batch, length], one float output [batch, 128] named as
        the manifest lists them, a row for every token id; no node that reads files."""
        return (self.input_type == "int32" and len(self.input_shape) == 2
                and not any(isinstance(size, int) for size in self.input_shape) and self.inputs == ("token_ids",)
                and self.output_type in ("float32", "float16") and self.output_rank == 2
                and self.outputs == ("encoding",) and self.rows >= VOCAB_SIZE and not self.ep_context)


VARIATIONS: dict[str, st.SearchStrategy[Any]] = {
    "input_type": st.sampled_from(["int64", "int8", "uint32", "float32"]),
    "input_shape": st.sampled_from([(1, "length"), ("batch", 2), ("batch",), ("batch", "length", "x"), (None, None)]),
    "inputs": st.sampled_from([("ids",), ("token_ids", "mask"), ("mask", "token_ids")]),
    "output_type": st.sampled_from(["float16", "float64", "int32", "bool", "string"]),
    "output_rank": st.sampled_from([1, 3]),
    "outputs": st.sampled_from([("vector",), ("encoding", "extra")]),
    "rows": st.sampled_from([VOCAB_SIZE - 1, 2, VOCAB_SIZE + 10]),
    "ep_context": st.just(True),
}
encoder_specs = st.lists(st.sampled_from(sorted(VARIATIONS)), max_size=2, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({key: VARIATIONS[key] for key in keys})).map(
    lambda changes: EncoderSpec(**changes))


def tiny_encoder(spec: EncoderSpec) -> Any:
    """The onnx.ModelProto of `spec`."""
    onnx = pytest.importorskip("onnx", reason="building ONNX models needs onnx (the [train] extra)")
    helper = onnx.helper
    embedding = np.random.default_rng(0).standard_normal((spec.rows, ENCODING_DIM)).astype(np.float32) / 8
    reduced = {1: ["batch"], 2: ["batch", ENCODING_DIM], 3: ["batch", 1, ENCODING_DIM]}[spec.output_rank]
    nodes = [
        helper.make_node("Cast", [spec.inputs[0]], ["ids"], to=TENSOR_TYPES["int64"]),
        helper.make_node("Gather", ["embedding", "ids"], ["vectors"]),
        helper.make_node("ReduceMean", ["vectors"], ["mean"], axes=[1, 2] if spec.output_rank == 1 else [1],
                         keepdims=int(spec.output_rank == 3)),
        helper.make_node("Cast", ["mean"], [spec.outputs[0]], to=TENSOR_TYPES[spec.output_type]),
        *(helper.make_node("Identity", [spec.outputs[0]], [name]) for name in spec.outputs[1:]),
    ]
    if spec.ep_context:
        nodes.append(helper.make_node("EPContext", ["mean"], ["context"], domain="com.microsoft", embed_mode=0,
                                      ep_cache_context="context.bin"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(name, TENSOR_TYPES[spec.input_type], list(spec.input_shape))
         for name in spec.inputs],
        [helper.make_tensor_value_info(name, TENSOR_TYPES[spec.output_type], reduced) for name in spec.outputs],
        [onnx.numpy_helper.from_array(embedding, "embedding")],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


@EXAMPLES
@given(data=st.data())
def test_a_signed_encoder_loads_only_if_it_is_what_the_runtime_feeds_and_reads(
    base: Path, tmp_path: Path, data: st.DataObject
) -> None:
    """Generated encoders of every variation load exactly when they fit; the real encoder cut or altered (and
    signed) is named, or scores."""
    spec = data.draw(st.none() | encoder_specs)
    with model_copy(base, tmp_path) as folder:
        encoder = (folder / "encoder.onnx").read_bytes()
        replace(folder, "encoder.onnx", data.draw(byte_edits(encoder)) if spec is None else
                tiny_encoder(spec).SerializeToString())
        sign(folder, "encoder.onnx")
        result = outcome(folder)
    assert_named_or_scores(result, folder, ("encoder.onnx",))
    if spec is not None:
        assert isinstance(result, np.ndarray) == spec.fits, result


LOCATIONS = ("embedding.bin", "weights/embedding.bin", "link.bin", "../outside.bin", "{outside}",
             "../" * 40 + "etc/passwd")


def keep_embedding_outside(folder: Path, location: str, listed: bool) -> str:
    """A signed tiny encoder whose embedding is in the external file `location` (written where it points, and
    listed in the manifest with its checksum when `listed` and it is a file of the folder)."""
    model = tiny_encoder(EncoderSpec())
    tensor = model.graph.initializer[0]
    raw = tensor.raw_data
    pytest.importorskip("onnx").external_data_helper.set_external_data(tensor, location=location, length=len(raw))
    tensor.ClearField("raw_data")  # data_location is now EXTERNAL
    outside = folder.parent / "outside.bin"
    outside.write_bytes(raw)
    inside = not location.startswith(("..", "/")) and location != "link.bin"
    if location == "link.bin":
        (folder / location).symlink_to(outside)
    elif inside:
        (folder / location).parent.mkdir(exist_ok=True)
        (folder / location).write_bytes(raw)
    replace(folder, "encoder.onnx", model.SerializeToString())
    if listed and inside:
        manifest = json.loads((folder / "manifest.json").read_bytes())
        manifest["files"][location] = {"sha256": hashlib.sha256(raw).hexdigest(), "role": "keras", "precision": "fp32"}
        replace(folder, "manifest.json", json.dumps(manifest).encode())
    sign(folder, "encoder.onnx")
    return "encoder.onnx"


@settings(EXAMPLES, max_examples=12)
@given(location=st.sampled_from(LOCATIONS), listed=st.booleans())
def test_an_encoder_keeping_its_data_in_another_file_is_refused_before_onnxruntime_reads_it(
    base: Path, tmp_path: Path, location: str, listed: bool
) -> None:
    """Inside the folder or out, listed in the manifest or not, through a link or '../../etc/passwd': no external
    data file is ever opened; the encoder is refused by the runtime's own check, before onnxruntime sees it."""
    with model_copy(base, tmp_path) as folder:
        location = location.format(outside=folder.parent / "outside.bin")
        keep_embedding_outside(folder, location, listed)
        result = outcome(folder)
    assert isinstance(result, ModelLoadError)
    assert str(result).startswith(f"{folder / 'encoder.onnx'}: its tensor 'embedding' keeps its data in the "
                                  f"external file {location!r}"), result


# Files the loader may not read, and the command line's account of a bad folder.

PR_CAPBSET_DROP = 24  # prctl(2)
LOAD_EACH = """
import json, sys
from siamese_runtime import ModelLoadError, Scorer
results = {}
for folder in sys.argv[1:]:
    try:
        Scorer(folder, providers="cpu", precision="fp32", intra_op_num_threads=1)
        results[folder] = "loaded"
    except ModelLoadError as error:
        results[folder] = f"ModelLoadError: {error}"
    except Exception as error:
        results[folder] = f"{type(error).__name__}: {error}"
print(json.dumps(results))
"""


def without_root_s_file_access() -> None:
    """Drop the capabilities by which root reads any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from what this
    process will exec, so that mode 000 means what it says."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_part_that_cannot_be_read_is_named(base: Path, tmp_path: Path) -> None:
    """Each part in turn unreadable (mode 000), loaded in a process that may not read it."""
    folders = {name: Path(shutil.copytree(base, tmp_path / name.replace(".", "-"))) for name in PARTS}
    for name, folder in folders.items():
        os.chmod(folder / name, 0)
    result = subprocess.run([sys.executable, "-c", LOAD_EACH, *map(str, folders.values())], cwd=REPO,
                            capture_output=True, timeout=300, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                            preexec_fn=without_root_s_file_access if os.geteuid() == 0 else None)
    results = json.loads(result.stdout)
    for name, folder in folders.items():
        assert results[str(folder)] == f"ModelLoadError: {folder / name}: cannot be read: Permission denied"


def nest_the_manifest(folder: Path) -> str:
    replace(folder, "manifest.json", b"[" * 100_000 + b"]" * 100_000)
    return "manifest.json"


def put_a_list_among_the_tokens(folder: Path) -> str:
    vocab = json.loads((folder / "vocab.json").read_bytes())
    vocab["tokens"][5] = [1]
    replace(folder, "vocab.json", json.dumps(vocab).encode())
    sign(folder, "vocab.json")
    return "vocab.json"


def loop_the_vocabulary(folder: Path) -> str:
    put_kind(folder, "vocab.json", "link to itself")
    return "vocab.json"


@pytest.mark.parametrize("make_bad", [
    nest_the_manifest, put_a_list_among_the_tokens, loop_the_vocabulary, claim_a_100_gb_hidden_layer,
    lambda folder: keep_embedding_outside(folder, "embedding.bin", listed=True),
], ids=["nested manifest", "list token", "vocabulary linked to itself", "100 GB head", "external data"])
def test_the_command_line_names_the_bad_file_and_exits_1_without_a_traceback(
    base: Path, tmp_path: Path, make_bad: Callable[[Path], str]
) -> None:
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{left}\t{right}\n" for left, right in PAIRS), encoding="utf-8")
    with model_copy(base, tmp_path) as folder:
        name = make_bad(folder)
        result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), "--model", str(folder))
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert f"siamese-runtime: error: {folder / name}: " in stderr and "Traceback" not in stderr, stderr
    assert not (tmp_path / "out.tsv").exists()


def encoder_broken_from(length: int, kind: str) -> Any:
    """An encoder whose every number is finite for sentences shorter than `length` tokens (the load probe's
    are 1 token) and NaN or infinite from there: sqrt(length - 0.5 - n) or 1 / max(length - n, 0), n the tokens."""
    onnx = pytest.importorskip("onnx", reason="building ONNX models needs onnx (the [train] extra)")
    helper, constant = onnx.helper, onnx.numpy_helper.from_array
    nodes = [
        helper.make_node("Cast", ["token_ids"], ["ids"], to=TENSOR_TYPES["float32"]),
        helper.make_node("Sign", ["ids"], ["present"]),  # PAD_ID is 0
        helper.make_node("ReduceSum", ["present", "axis"], ["tokens"], keepdims=1),
        helper.make_node("Sub", ["at", "tokens"], ["room"]),
        *([helper.make_node("Sqrt", ["room"], ["value"])] if kind == "nan" else
          [helper.make_node("Relu", ["room"], ["left"]), helper.make_node("Reciprocal", ["left"], ["value"])]),
        helper.make_node("Mul", ["value", "ones"], ["encoding"]),
    ]
    at = np.array([[length - 0.5 if kind == "nan" else length]], np.float32)
    graph = helper.make_graph(
        nodes, "broken", [helper.make_tensor_value_info("token_ids", TENSOR_TYPES["int32"], ["batch", "length"])],
        [helper.make_tensor_value_info("encoding", TENSOR_TYPES["float32"], ["batch", ENCODING_DIM])],
        [constant(np.array([1], np.int64), "axis"), constant(at, "at"),
         constant(np.ones((1, ENCODING_DIM), np.float32), "ones")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(length=st.integers(2, 6), kind=st.sampled_from(["nan", "inf"]))
def test_an_encoder_that_breaks_after_its_probe_is_named_and_nothing_is_written(
    base: Path, tmp_path: Path, length: int, kind: str
) -> None:
    """Loading checks a probe; every run after it is checked too: a score is never made of NaN or infinity."""
    from siamese_runtime.errors import ModelOutputError

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    with model_copy(base, tmp_path) as folder:
        replace(folder, "encoder.onnx", encoder_broken_from(length, kind).SerializeToString())
        sign(folder, "encoder.onnx")
        scorer = Scorer(folder, providers="cpu", precision="fp32")
        assert np.isfinite(scorer.encode(["花"])).all()
        with pytest.raises(ModelOutputError,
                           match=rf"encoder\.onnx: encodes '.{{{length},}}' to numbers that are not finite"):
            scorer.score(PAIRS)
        result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), "--model", str(folder))
    assert result.returncode == 1 and b"not finite" in result.stderr, result.stderr
    assert not (tmp_path / "out.tsv").exists()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scale=st.sampled_from([1e20, 1e30, 1e36, 3e38]))
def test_a_head_whose_finite_weights_overflow_is_named_and_nothing_is_written(
    base: Path, tmp_path: Path, scale: float
) -> None:
    """Weights that load (finite float32) but overflow on real encodings give NaN: never written as a score."""
    from siamese_runtime.errors import ModelOutputError

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")
    with model_copy(base, tmp_path) as folder:
        arrays = dict(np.load(folder / "head.npz"))
        arrays["hidden"] = (arrays["hidden"] * np.float32(scale)).astype(np.float32)
        arrays["output"] = np.where(np.arange(64)[:, None] % 2 == 0, 3e38, -3e38).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        replace(folder, "head.npz", buffer.getvalue())
        sign(folder, "head.npz")
        with pytest.raises(ModelOutputError, match=r"head\.npz: its head scores the pair \('.+', '.+'\) nan"):
            Scorer(folder, providers="cpu", precision="fp32").score(PAIRS)
        result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), "--model", str(folder))
    assert result.returncode == 1 and b"not a probability" in result.stderr and b"overflow" not in result.stderr
    assert not (tmp_path / "out.tsv").exists()
