"""Model folders load only when whole and unaltered; every failure names the file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import ModelFolder, ModelLoadError, Scorer
from siamese_runtime.model_folder import default_model_path, sha256_of

from .conftest import DEFAULT_MODEL, strings_in


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFAULT_MODEL, tmp_path / "model"))


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def save_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_default_model_loads_and_verifies_every_checksum() -> None:
    model = ModelFolder.load()
    assert model.path.resolve() == default_model_path().resolve()
    assert model.head == "mlp" and model.calibration is not None and 0 < model.threshold < 1
    encoding = np.ones((1, model.encoding_dim), np.float32)
    assert model.similarity()(encoding, -encoding).shape == (1,)
    assert model.encoder_path().is_file()


def test_the_shipped_model_names_no_path_of_the_machine_that_built_it() -> None:
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text(encoding="utf-8"))
    assert [text for text in strings_in(manifest) if text.startswith(("/", "~")) or ":\\" in text] == []
    assert not re.search(r"`/(tmp|work|home)/", (DEFAULT_MODEL / "MODEL_CARD.md").read_text(encoding="utf-8"))


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
        Scorer(model_copy, providers="cpu")


def test_only_the_files_a_session_opens_are_hashed(model_copy: Path) -> None:
    """Start-up verifies what it uses: an altered training-side file does not stop scoring, yet asking for it fails."""
    (model_copy / "model.keras").write_bytes(b"altered")
    scorer = Scorer(model_copy, providers="cpu", precision="fp32")
    assert scorer.score([("花呗怎么还款", "花呗如何还钱")]).shape == (1,)
    with pytest.raises(ModelLoadError, match=r"model\.keras: sha256 .* truncated or altered"):
        scorer.model.verified_path("model.keras")


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


def test_file_name_climbing_out_of_the_folder_is_refused(model_copy: Path) -> None:
    shutil.copy(model_copy / "encoder.onnx", model_copy.parent / "outside.onnx")
    manifest = manifest_of(model_copy)
    manifest["files"]["../outside.onnx"] = dict(manifest["files"]["encoder.onnx"])
    manifest["files"]["encoder.onnx"]["role"] = "keras"  # still listed (the schema wants it), no longer the encoder
    save_manifest(model_copy, manifest)
    with pytest.raises(ModelLoadError, match=r"manifest\.json: file '\.\./outside\.onnx' must be named relative"):
        ModelFolder.load(model_copy)


def test_absolute_file_name_is_refused(model_copy: Path) -> None:
    outside = Path(shutil.copy(model_copy / "vocab.json", model_copy.parent / "vocab.json"))
    manifest = manifest_of(model_copy)
    manifest["tokenizer"]["file"] = str(outside)
    save_manifest(model_copy, manifest)
    message = rf"manifest\.json: file '{re.escape(str(outside))}' must be named relative"
    with pytest.raises(ModelLoadError, match=message):
        ModelFolder.load(model_copy)


def test_symlink_leaving_the_folder_is_refused(model_copy: Path) -> None:
    encoder = model_copy / "encoder.onnx"
    outside = Path(shutil.copy(encoder, model_copy.parent / "other.onnx"))
    encoder.unlink()
    encoder.symlink_to(outside)
    with pytest.raises(ModelLoadError, match=r"encoder\.onnx: resolves to .*other\.onnx, outside the model folder"):
        ModelFolder.load(model_copy)


def test_symlink_within_the_folder_is_followed(model_copy: Path) -> None:
    (model_copy / "weights").mkdir()
    encoder = model_copy / "encoder.onnx"
    encoder.rename(model_copy / "weights" / "encoder.onnx")
    encoder.symlink_to(Path("weights") / "encoder.onnx")
    assert Scorer(model_copy, providers="cpu").score([("花呗怎么还款", "花呗如何还款")]).shape == (1,)


def test_vocabulary_larger_than_the_embedding_is_refused(model_copy: Path) -> None:
    vocab_path = model_copy / "vocab.json"
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    vocab["tokens"] += ["\ue000", "\ue001"]  # private-use characters, in no vocabulary
    vocab_path.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    manifest = manifest_of(model_copy)
    manifest["tokenizer"].update(vocab_size=len(vocab["tokens"]), vocab_sha256=sha256_of(vocab_path))
    save_manifest(model_copy, manifest)
    with pytest.raises(ModelLoadError, match=r"encoder\.onnx: fails on token id 3185, the largest of vocab\.json"):
        Scorer(model_copy, providers="cpu")


def test_encoding_dim_the_encoder_does_not_produce_is_refused(model_copy: Path) -> None:
    manifest = manifest_of(model_copy)
    manifest["encoding_dim"] = 32
    save_manifest(model_copy, manifest)
    message = r"encoder\.onnx: encodes 2 sentences to shape \[2, 128\], the manifest's encoding_dim is 32"
    with pytest.raises(ModelLoadError, match=message):
        Scorer(model_copy, providers="cpu")


def test_pair_model_installed_as_the_encoder_is_refused(model_copy: Path) -> None:
    encoder = model_copy / "encoder.onnx"
    shutil.copy(model_copy / "pair.onnx", encoder)
    manifest = manifest_of(model_copy)
    manifest["files"]["encoder.onnx"]["sha256"] = sha256_of(encoder)
    save_manifest(model_copy, manifest)
    message = r"encoder\.onnx: takes inputs left_ids, right_ids; an encoder takes one: token_ids"
    with pytest.raises(ModelLoadError, match=message):
        Scorer(model_copy, providers="cpu")


def test_unknown_normalization_is_refused(model_copy: Path) -> None:
    manifest = manifest_of(model_copy)
    manifest["tokenizer"]["normalization"] = "nfkd-v9"
    save_manifest(model_copy, manifest)
    with pytest.raises(ModelLoadError, match=r"manifest\.json: unknown tokenizer normalization 'nfkd-v9'"):
        ModelFolder.load(model_copy)


@pytest.mark.parametrize(
    ("max_length", "message"),
    [
        (0, r"manifest\.json: invalid manifest at tokenizer/max_length"),
        (32, r"vocab\.json: max_length is 64, the manifest says 32"),
    ],
)
def test_max_length_unusable_or_unlike_the_vocabulary_s_is_refused(
    model_copy: Path, max_length: int, message: str
) -> None:
    manifest = manifest_of(model_copy)
    manifest["tokenizer"]["max_length"] = max_length
    save_manifest(model_copy, manifest)
    with pytest.raises(ModelLoadError, match=message):
        ModelFolder.load(model_copy)


@pytest.mark.parametrize("content", ["[]", "null", '"encoder.onnx"'])
def test_manifest_that_is_not_an_object_is_refused(model_copy: Path, content: str) -> None:
    (model_copy / "manifest.json").write_text(content)
    with pytest.raises(ModelLoadError, match=r"manifest\.json: the manifest must be a JSON object, found "):
        ModelFolder.load(model_copy)


def test_model_without_any_encoder_says_so(model_copy: Path) -> None:
    manifest = manifest_of(model_copy)
    for entry in manifest["files"].values():
        entry["role"] = "keras"
    save_manifest(model_copy, manifest)
    with pytest.raises(ModelLoadError, match=r"manifest\.json: no fp32 encoder in this model; available: none$"):
        Scorer(model_copy, providers="cpu")


@pytest.fixture
def mlp_copy(tiny_mlp_model: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_mlp_model, tmp_path / "mlp"))


def replace_head_weights(folder: Path, write) -> None:
    """Write new head weights with `write(path)` and record their checksum, as a tampering exporter would."""
    write(folder / "head.npz")
    manifest = manifest_of(folder)
    manifest["files"]["head.npz"]["sha256"] = sha256_of(folder / "head.npz")
    save_manifest(folder, manifest)


@pytest.mark.slow  # trains the session's tiny mlp model on first use
def test_head_weights_holding_a_pickle_are_refused_without_running_it(mlp_copy: Path, tmp_path: Path) -> None:

    marker = tmp_path / "executed"
    weights = {**np.load(mlp_copy / "head.npz"), "hidden": np.array([_Exploit(str(marker))], dtype=object)}
    replace_head_weights(mlp_copy, lambda path: np.savez(path, **weights))
    with pytest.raises(ModelLoadError, match=r"head\.npz: unusable head weights: .*pickle"):
        Scorer(mlp_copy, providers="cpu")
    assert not marker.exists()


@pytest.mark.slow
def test_head_weights_that_do_not_fit_the_encoder_are_named(mlp_copy: Path) -> None:

    weights = dict(np.load(mlp_copy / "head.npz"))
    weights["hidden"] = weights["hidden"][:-1]
    replace_head_weights(mlp_copy, lambda path: np.savez(path, **weights))
    with pytest.raises(ModelLoadError, match=r"head\.npz: unusable head weights: hidden has shape"):
        Scorer(mlp_copy, providers="cpu")


@pytest.mark.slow
def test_altered_head_weights_fail_their_checksum(mlp_copy: Path) -> None:
    with (mlp_copy / "head.npz").open("ab") as stream:
        stream.write(b"x")
    with pytest.raises(ModelLoadError, match=r"head\.npz: sha256 .* does not match"):
        Scorer(mlp_copy, providers="cpu")


class _Exploit:
    """Unpickling it would create a file: proof that loading ran code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_manifest_holding_nan_or_infinity_is_refused(model_copy: Path, constant: str) -> None:
    """Python's json reads NaN and Infinity, and no schema bound catches NaN: a NaN threshold would predict
    nothing, a NaN calibration would score NaN."""
    text = (model_copy / "manifest.json").read_text()
    threshold = f'"threshold": {manifest_of(model_copy)["threshold"]!r}'
    assert threshold in text
    (model_copy / "manifest.json").write_text(text.replace(threshold, f'"threshold": {constant}'))
    with pytest.raises(ModelLoadError, match=rf"manifest\.json: {constant} is not a number a model may hold"):
        ModelFolder.load(model_copy)


@pytest.mark.slow
def test_head_weights_that_are_not_finite_are_named(mlp_copy: Path) -> None:

    weights = dict(np.load(mlp_copy / "head.npz"))
    weights["output_bias"] = np.array([np.nan], np.float32)
    replace_head_weights(mlp_copy, lambda path: np.savez(path, **weights))
    with pytest.raises(ModelLoadError, match=r"head\.npz: unusable head weights: output_bias holds values that are"):
        Scorer(mlp_copy, providers="cpu")


@pytest.mark.slow
def test_head_weights_that_are_one_bare_array_are_named(mlp_copy: Path) -> None:
    def save_one_array(path: Path) -> None:
        with path.open("wb") as stream:  # np.save given a name would append .npy to it
            np.save(stream, np.zeros((4, 4), np.float32))

    replace_head_weights(mlp_copy, save_one_array)
    with pytest.raises(ModelLoadError, match=r"head\.npz: unusable head weights: not an \.npz archive"):
        Scorer(mlp_copy, providers="cpu")
