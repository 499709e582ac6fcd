"""export/: a real tf2onnx conversion to native LSTMs with sequence lengths, parity-checked against Keras."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import ModelFolder, Scorer
from siamese_runtime.errors import SiameseRuntimeError
from siamese_runtime.model_folder import sha256_of

keras = pytest.importorskip("keras", reason="export needs the [train] extra")
onnx = pytest.importorskip("onnx", reason="export needs the [train] extra")

from export.parity import TOLERANCE, check_parity  # noqa: E402
from export.sequence_lengths import FORBIDDEN_OPS, op_types  # noqa: E402
from train.data import load_pairs  # noqa: E402

from .conftest import DEFAULT_MODEL, TINY_REPORTS, strings_in  # noqa: E402

# Every test here trains: the session's tiny run and model on first use, or a run of its own.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("folder", ["tiny", "default"])
def test_encoder_graph_uses_native_lstm_with_sequence_lengths(folder: str, tiny_model: Path) -> None:
    path = (tiny_model if folder == "tiny" else DEFAULT_MODEL) / "encoder.onnx"
    graph = onnx.load(str(path))
    ops = op_types(graph)
    assert "LSTM" in ops and not ops & FORBIDDEN_OPS
    assert all(node.input[4] == "sequence_lens" for node in graph.graph.node if node.op_type == "LSTM")


def test_manifest_lists_every_file_with_its_checksum_and_recorded_parity(tiny_run: Path, tiny_model: Path) -> None:
    model = ModelFolder.load(tiny_model)
    files = model.manifest["files"]
    assert set(files) == {"encoder.onnx", "encoder.int8.onnx", "encoder.fp16.onnx", "pair.onnx", "model.keras"}
    assert {p.name for p in tiny_model.iterdir()} == {
        *files, "manifest.json", "vocab.json", "MODEL_CARD.md", "reliability.png"}
    card = (tiny_model / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| int8 |" in card and all(report in card for report in TINY_REPORTS)
    for name, entry in files.items():
        assert sha256_of(tiny_model / name) == entry["sha256"]
    assert files["pair.onnx"]["inputs"] == ["left_ids", "right_ids"] and files["pair.onnx"]["outputs"] == ["score"]
    parity = model.manifest["metrics"]["parity"]
    assert parity["pairs"] == len((tiny_run / "validation.tsv").read_text(encoding="utf-8").splitlines())
    assert max(parity["max_abs_encoding_diff"], parity["max_abs_score_diff"], parity["max_abs_pair_diff"]) <= TOLERANCE


def test_the_manifest_and_card_hold_no_path_of_the_machine_that_built_them(tiny_run: Path, tiny_model: Path) -> None:
    built_under = str(tiny_run.parents[1])  # the test session's temporary folder: the "machine" here
    manifest = json.loads((tiny_model / "manifest.json").read_text(encoding="utf-8"))
    assert [text for text in strings_in(manifest) if built_under in text or text.startswith("/")] == []
    assert built_under not in (tiny_model / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert manifest["training_config"]["train_files"] == ["owned/train.tsv"] and manifest["source_run"] == "tiny"


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_variants_load_score_close_to_fp32_and_record_their_bound(
    tiny_model: Path, precision: str, pairs_500: Path
) -> None:
    pairs = load_pairs([str(pairs_500)])
    reference = Scorer(tiny_model, providers="cpu").score(pairs.left, pairs.right)
    variant = Scorer(tiny_model, providers="cpu", precision=precision)
    stretch = max(1.0, variant.model.calibration.slope)  # the calibration's slope stretches score differences
    assert np.abs(variant.score(pairs.left, pairs.right) - reference).max() < 0.05 * stretch
    metrics = variant.model.manifest["metrics"]
    bound = metrics["variant_bounds"][precision]
    drops = {
        d: 100 * (metrics["accuracy"]["fp32"][d]["at_threshold"]["accuracy"]
                  - metrics["accuracy"][precision][d]["at_threshold"]["accuracy"])
        for d in metrics["accuracy"]["fp32"]
    }
    assert set(drops) == {"validation", *TINY_REPORTS}
    assert bound["judged_on"] == list(TINY_REPORTS)  # the tiny run's validation split is too small
    assert bound["max_drop_points"] == pytest.approx(max(drops[d] for d in bound["judged_on"]), abs=1e-3)
    assert bound["within_bound"], bound
    # dynamic int8 scales each batch's activations: export measures it, and that fp32 and fp16 do not move
    moved = bound["max_score_change_by_batching"]
    assert moved > 0 if precision == "int8" else moved == 0.0
    assert metrics["variant_bounds"]["fp32"] == {"max_score_change_by_batching": 0.0}
    ops = op_types(onnx.load(str(variant.model.encoder_path(precision))))
    assert ("DynamicQuantizeLSTM" if precision == "int8" else "LSTM") in ops and not ops & FORBIDDEN_OPS


def test_keras_copy_in_the_folder_predicts_like_the_run(tiny_run: Path, tiny_model: Path, pairs_500: Path) -> None:
    pairs = load_pairs([str(pairs_500)])
    scorer = Scorer(tiny_model, providers="cpu")
    tokenizer = scorer.model.tokenizer
    left = tokenizer.pad(tokenizer.ids_batch(pairs.left)[0])
    right = tokenizer.pad(tokenizer.ids_batch(pairs.right)[0])
    original = keras.models.load_model(tiny_run / "model.keras")
    copy = keras.models.load_model(tiny_model / "model.keras")
    np.testing.assert_array_equal(np.asarray(original([left, right])), np.asarray(copy([left, right])))


def test_parity_on_varied_pairs_with_edge_lengths_and_oov(
    tiny_run: Path, tiny_model: Path, owned_pairs: Callable[..., Path]
) -> None:
    pairs = load_pairs([str(owned_pairs(1000, seed=7))])
    scorer = Scorer(tiny_model, providers="cpu")
    max_length = scorer.model.tokenizer.max_length
    edge = ["花", "?", "借" * max_length, "还款" * max_length, "😀龘𠀀 unseen ⅷ", "ＡＢＣ全角"]
    left = pairs.left[:1000] + edge
    right = pairs.right[:1000] + edge[::-1]
    report = check_parity(keras.models.load_model(tiny_run / "model.keras"), scorer, left, right)
    assert report.passed, report
    assert report.pairs == 1006


def test_exported_model_scores_through_the_cli(tiny_model: Path, pairs_500: Path, tmp_path: Path) -> None:
    from .conftest import run_cli

    out = tmp_path / "scores.tsv"
    result = run_cli("score", str(pairs_500), "-o", str(out), "--model", str(tiny_model), "--provider", "cpu")
    assert result.returncode == 0, result.stderr.decode()
    scores = np.array([float(line.rsplit("\t", 1)[1]) for line in out.read_text(encoding="utf-8").splitlines()])
    expected = Scorer(tiny_model, providers="cpu").score(
        *zip(*(line.split("\t")[:2] for line in pairs_500.read_text(encoding="utf-8").splitlines()))
    )
    np.testing.assert_allclose(scores, expected, atol=1e-7)


@pytest.mark.parametrize("head", ["euclidean", "cosine"])
def test_other_heads_train_export_and_keep_parity(head: str, owned_pairs: Callable[..., Path], tmp_path: Path) -> None:
    from export.folder import export_run
    from train.run import TrainConfig, train_run

    run = train_run(TrainConfig(
        out=str(tmp_path / "run"), train_files=[str(owned_pairs(800, seed=8))], max_pairs=800, epochs=1,
        warmup_epochs=0, embedding_dim=8, lstm_units=(8, 4), head=head,
    ))
    manifest = export_run(run, tmp_path / "model", report_files=[])
    assert manifest["head"]["name"] == head
    parity = manifest["metrics"]["parity"]
    assert max(parity["max_abs_encoding_diff"], parity["max_abs_score_diff"], parity["max_abs_pair_diff"]) <= TOLERANCE
    scorer = Scorer(tmp_path / "model", providers="cpu")
    scores = scorer.score(["花呗怎么还款", "借呗"], ["花呗怎么还款", "今天天气"])
    encoding = scorer.encode(["花呗怎么还款"])
    identical = scorer.model.similarity()(encoding, encoding)  # the head's score of a sentence with itself, calibrated
    assert scores[0] == pytest.approx(identical[0], abs=1e-6) and 0 <= scores[1] < scores[0]


def test_pooled_encoder_with_learned_head_exports_with_parity_and_scores_symmetrically(tiny_mlp_model: Path) -> None:
    model = ModelFolder.load(tiny_mlp_model)
    assert model.head == "mlp" and model.manifest["head"]["file"] == "head.npz"
    assert model.manifest["files"]["head.npz"]["role"] == "head" and model.encoding_dim == 4 * 4
    parity = model.manifest["metrics"]["parity"]
    assert max(parity["max_abs_encoding_diff"], parity["max_abs_score_diff"], parity["max_abs_pair_diff"]) <= TOLERANCE
    scorer = Scorer(tiny_mlp_model, providers="cpu")
    left, right = ["花呗怎么还款", "借呗额度", "今天天气"], ["花呗如何还", "借呗额度怎么提升", "花呗"]
    np.testing.assert_array_equal(scorer.score(left, right), scorer.score(right, left))
    assert np.all((scorer.score(left, right) > 0) & (scorer.score(left, right) < 1))


def test_a_char_projection_is_folded_into_the_embedding_table_with_parity(
    owned_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    """The exported graph has no projection MatMul: its table is [vocab, width] and the first LSTM reads
    `width` inputs, and it scores as the Keras model with the projection does."""
    import onnx
    from onnx import numpy_helper

    from export.folder import export_run
    from train.run import TrainConfig, train_run

    run = train_run(TrainConfig(
        out=str(tmp_path / "run"), train_files=[str(owned_pairs(800, seed=8))], max_pairs=800, epochs=1,
        warmup_epochs=0, embedding_dim=8, projection=3, lstm_units=(8, 4),
    ))
    manifest = export_run(run, tmp_path / "model", report_files=[])
    parity = manifest["metrics"]["parity"]
    assert max(parity["max_abs_encoding_diff"], parity["max_abs_score_diff"], parity["max_abs_pair_diff"]) <= TOLERANCE
    graph = onnx.load(str(tmp_path / "model" / "encoder.onnx")).graph
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    table = next(weights[node.input[0]] for node in graph.node if node.op_type == "Gather" and node.input[0] in weights)
    first_lstm = next(node for node in graph.node if node.op_type == "LSTM")
    assert table.shape == (manifest["tokenizer"]["vocab_size"], 3) and weights[first_lstm.input[1]].shape[-1] == 3
    assert not any(node.op_type == "MatMul" and weights.get(node.input[1], np.empty(0)).shape == (8, 3)
                   for node in graph.node)


def test_attention_pooling_exports_with_parity_and_encodes_a_sentence_the_same_in_any_batch(
    owned_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    """max-mean-attention: a [batch, 6 d] encoding through the same pipeline, its weights trained under the
    same layer name the export graph reads; a sentence's bits do not depend on what it is batched with."""
    from export.folder import export_run
    from train.run import TrainConfig, train_run

    pairs = owned_pairs(800, seed=9)
    run = train_run(TrainConfig(
        out=str(tmp_path / "run"), train_files=[str(pairs)], max_pairs=800, epochs=1, warmup_epochs=0,
        embedding_dim=8, projection=3, lstm_units=(8, 4), pooling="max-mean-attention", head="mlp", head_units=6,
    ))
    manifest = export_run(run, tmp_path / "model", report_files=[])
    parity = manifest["metrics"]["parity"]
    assert max(parity["max_abs_encoding_diff"], parity["max_abs_score_diff"], parity["max_abs_pair_diff"]) <= TOLERANCE
    scorer = Scorer(tmp_path / "model", providers="cpu", cache_size=0)
    assert scorer.model.encoding_dim == 6 * 4 and "attention" in (tmp_path / "model" / "MODEL_CARD.md").read_text()
    sentences = list(dict.fromkeys(line.split("\t")[0] for line in pairs.read_text(encoding="utf-8").splitlines()))
    sentences = sentences[:97] + ["好", "花" * 64]  # the shortest and a full-length one among them
    together = scorer.encode(sentences)
    alone = np.concatenate([scorer.encode([sentence]) for sentence in sentences])
    in_sevens = Scorer(tmp_path / "model", providers="cpu", cache_size=0, batch_size=7).encode(sentences[::-1])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, in_sevens[::-1])
    assert np.isfinite(together).all() and np.ptp(together[:, -8:], axis=0).max() > 0  # the attended part varies


def test_validation_pairs_are_told_apart_by_the_training_file_they_came_from(
    owned_pairs: Callable[..., Path], tmp_path: Path
) -> None:
    """validation.tsv holds no source: export finds each pair's file by its sentences (as read from one file,
    every pair's source is 0)."""
    from export.folder import with_sources
    from train.data import load_pairs

    files = [owned_pairs(300, seed=21), owned_pairs(200, seed=22)]
    both = [load_pairs([str(file)]) for file in files]
    picks = [(1, 7), (0, 5), (1, 0), (0, 299)]
    text = "".join(f"{both[source].left[row]}\t{both[source].right[row]}\t{int(both[source].labels[row])}\n"
                   for source, row in picks)
    (tmp_path / "validation.tsv").write_text(text, encoding="utf-8")
    validation = load_pairs([str(tmp_path / "validation.tsv")])
    assert validation.sources.tolist() == [0, 0, 0, 0]
    assert with_sources(validation, [str(file) for file in files]).sources.tolist() == [1, 0, 1, 0]
    assert with_sources(validation, [str(tmp_path / "gone.tsv")]).sources.tolist() == [0, 0, 0, 0]


def test_export_calibrates_scores_on_validation_and_reports_the_error(tiny_run: Path, tiny_model: Path) -> None:
    """Platt scaling fitted on the validation split; the stored threshold predicts what the run's threshold did
    on raw scores; the calibration error and the reliability diagram are in the manifest and the card."""
    from siamese_runtime.heads import HEADS

    model = ModelFolder.load(tiny_model)
    calibration = model.calibration
    assert calibration is not None and calibration.slope > 0
    run_threshold = json.loads((tiny_run / "metrics.json").read_text())["threshold"]
    assert model.threshold == pytest.approx(float(calibration(np.float32(run_threshold))), abs=1e-6)
    validation = load_pairs([str(tiny_run / "validation.tsv")])
    scorer = Scorer(tiny_model, providers="cpu")
    encodings = scorer.encode([*validation.left, *validation.right])
    raw = HEADS["manhattan"](encodings[: len(validation)], encodings[len(validation) :])
    np.testing.assert_allclose(scorer.score(validation.left, validation.right), calibration(raw), atol=1e-6)
    np.testing.assert_array_equal(scorer.predict(validation.left, validation.right), raw >= run_threshold)
    report = model.manifest["metrics"]["calibration"]
    assert set(report["expected_calibration_error"]) >= {"validation", *TINY_REPORTS}
    assert (tiny_model / report["diagram"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![reliability diagram](reliability.png)" in (tiny_model / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_export_reports_every_variant_on_the_official_test_files(tiny_run: Path, data: Path, tmp_path: Path) -> None:
    """The manifest and card of an export report the official tests (the default for `python -m export`)."""
    from export.folder import export_run

    official = {"bq/test.tsv": 10_000, "lcqmc/test.tsv": 12_500}
    manifest = export_run(tiny_run, tmp_path / "model", report_files=[str(data / name) for name in official])
    metrics = manifest["metrics"]
    for precision in ("fp32", "int8", "fp16"):
        assert {d: metrics["accuracy"][precision][d]["pairs"] for d in official} == official
    for precision in ("int8", "fp16"):
        bound = metrics["variant_bounds"][precision]
        assert bound["judged_on"] == list(official)
        assert set(bound["drop_points_by_dataset"]) == {"validation", *official}
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert all(name in card for name in official)


def _listing(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder): what a failed export must leave unchanged."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def _failing_export(tiny_run: Path, pairs_500: Path, tmp_path: Path, step: int) -> tuple[Path, list[str], str]:
    """A run and report files that make export fail at `step`, once the staging folder holds converted files:
    2, a metrics.json threshold the manifest schema refuses (raised at the first manifest write, right after
    tf2onnx's raw file is saved and optimized); 4, a report file with a bad row (every variant written)."""
    if step == 2:
        run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        (run / "metrics.json").write_text(json.dumps({**metrics, "threshold": 1.5}), encoding="utf-8")
        return run, [], r"invalid manifest at threshold"
    report = tmp_path / "report.tsv"
    report.write_text(pairs_500.read_text(encoding="utf-8") + "花呗\t借呗\t2\n", encoding="utf-8")
    return tiny_run, [str(report)], r"report\.tsv:501: training rows need a label 0 or 1"


@pytest.mark.parametrize("step", [2, 4])
def test_a_failed_export_leaves_the_parent_folder_as_it_was(
    tiny_run: Path, pairs_500: Path, tmp_path: Path, step: int
) -> None:
    """The old model folder stays, and no staging folder, raw ONNX file or backup is left beside it."""
    from export.folder import export_run

    run, reports, message = _failing_export(tiny_run, pairs_500, tmp_path, step)
    models = tmp_path / "models"
    old = models / "tiny"
    old.mkdir(parents=True)
    (old / "manifest.json").write_text('{"old": true}', encoding="utf-8")
    (models / "notes.txt").write_text("kept", encoding="utf-8")
    before = _listing(models)
    with pytest.raises(SiameseRuntimeError, match=message):
        export_run(run, old, report_files=reports)
    assert _listing(models) == before


def test_a_failed_export_removes_the_parent_folders_it_made(tiny_run: Path, pairs_500: Path, tmp_path: Path) -> None:
    from export.folder import export_run

    run, reports, message = _failing_export(tiny_run, pairs_500, tmp_path, 2)
    with pytest.raises(SiameseRuntimeError, match=message):
        export_run(run, tmp_path / "new" / "deeper" / "tiny", report_files=reports)
    assert not (tmp_path / "new").exists()


def test_export_over_an_existing_folder_replaces_it_and_leaves_no_backup_or_staging(
    tiny_run: Path, tmp_path: Path
) -> None:
    from export.folder import export_run

    models = tmp_path / "models"
    target = models / "tiny"
    target.mkdir(parents=True)
    (target / "stale.onnx").write_bytes(b"from an older export")
    manifest = export_run(tiny_run, target, report_files=[])
    assert [p.name for p in models.iterdir()] == ["tiny"]
    assert not (target / "stale.onnx").exists()
    assert ModelFolder.load(target).manifest == manifest
    assert {p.name for p in target.iterdir()} == {
        *manifest["files"], "manifest.json", "vocab.json", "MODEL_CARD.md", "reliability.png"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_a_failed_swap_puts_the_old_folder_back(tmp_path: Path) -> None:
    """Renaming the staging folder into place fails (here it has vanished): the old folder is renamed back."""
    from export.folder import _move_into_place

    target = tmp_path / "tiny"
    target.mkdir()
    (target / "manifest.json").write_text("old", encoding="utf-8")
    with pytest.raises(FileNotFoundError):
        _move_into_place(tmp_path / ".tiny.export-gone", target)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]
    assert (target / "manifest.json").read_text(encoding="utf-8") == "old"


def test_a_broken_run_directory_is_named_before_anything_is_written(tiny_run: Path, tmp_path: Path) -> None:
    from export.folder import export_run
    from train.run_directory import RunDirectoryError

    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (run / "metrics.json").write_text('{"threshold": 0.5', encoding="utf-8")
    with pytest.raises(RunDirectoryError, match=r"run/metrics\.json: not valid JSON"):
        export_run(run, tmp_path / "models" / "tiny", report_files=[])
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
