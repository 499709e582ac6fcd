"""train/: a real (tiny) Keras 3 training run on owned pairs (tests/fixtures), and the pieces it is made of."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import BadRowError
from siamese_runtime.tokenizer import normalize

keras = pytest.importorskip("keras", reason="training needs the [train] extra")

from train.data import LabeledColumns, load_pairs, sample, split  # noqa: E402
from train.fit import best_threshold  # noqa: E402
from train.model import ENCODER  # noqa: E402


@pytest.mark.slow  # the session's tiny training run on first use
def test_run_directory_holds_model_vocab_config_metrics_history(tiny_run: Path) -> None:
    names = {p.name for p in tiny_run.iterdir()}
    assert {"model.keras", "vocab.json", "config.json", "metrics.json", "history.csv", "validation.tsv"} <= names
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["pairs"]["train"] + metrics["pairs"]["validation"] == 3000
    assert metrics["epochs_run"] == 3 and 0 <= metrics["threshold"] <= 1
    assert len((tiny_run / "history.csv").read_text().splitlines()) == 4
    history = json.loads((tiny_run / "history.json").read_text())
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert (tiny_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the session's tiny training run on first use
def test_appending_padding_leaves_the_encoding_unchanged(tiny_run: Path) -> None:
    encoder = keras.models.load_model(tiny_run / "model.keras").get_layer(ENCODER)
    ids = np.array([[5, 9, 2, 7, 0, 0], [3, 0, 0, 0, 0, 0]], dtype=np.int32)
    padded = np.concatenate([ids, np.zeros((2, 40), np.int32)], axis=1)
    np.testing.assert_allclose(np.asarray(encoder(ids)), np.asarray(encoder(padded)), atol=1e-5)


def test_pair_dropout_keeps_a_sentence_paired_with_itself_at_distance_zero(tmp_path: Path) -> None:
    """Dropout inside the shared encoder draws a mask per side, so in training a sentence is not even
    similar to itself; the pair dropout draws one mask for both sides, and survives a .keras round trip."""
    from train.model import build_encoder, build_pair_model

    ids = np.array([[5, 9, 2, 7, 0], [3, 4, 0, 0, 0]], dtype=np.int32)
    embeddings = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    # 32 units: equal masks ~2^-32
    per_side = build_pair_model(build_encoder(embeddings, (8, 16), (0.0, 0.5)), "manhattan")
    shared = build_pair_model(build_encoder(embeddings, (8, 4), (0.0, 0.0)), "manhattan", pair_dropout=0.5)
    assert np.all(np.asarray(per_side([ids, ids], training=True)) < 1)
    np.testing.assert_array_equal(np.asarray(shared([ids, ids], training=True)), 1.0)
    other = np.array([[6, 1, 8, 0, 0], [2, 2, 2, 2, 0]], dtype=np.int32)
    assert not np.allclose(
        np.asarray(shared([ids, other], training=True)), np.asarray(shared([ids, other], training=False))
    )
    shared.save(tmp_path / "pair.keras")
    loaded = keras.models.load_model(tmp_path / "pair.keras", safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded([ids, other])), np.asarray(shared([ids, other])), atol=1e-6)


def test_one_dropout_rate_per_bilstm() -> None:
    from train.model import build_encoder

    with pytest.raises(ValueError, match="1 dropout rates for 2 BiLSTM layers"):
        build_encoder(np.zeros((10, 8), np.float32), (8, 4), (0.5,))


def test_training_defaults_are_the_default_models_recorded_config() -> None:
    """`python -m train` with its defaults reproduces the shipped model's run: same data, same recipe."""
    from dataclasses import asdict

    from siamese_runtime import ModelFolder
    from siamese_runtime.bench.pair_files import file_label
    from train.run import TrainConfig

    recorded = {k: v for k, v in ModelFolder.load().manifest["training_config"].items() if k != "out"}
    recorded.setdefault("projection", None)  # the default model predates --projection: it had none
    defaults = json.loads(json.dumps({k: v for k, v in asdict(TrainConfig(out="")).items() if k != "out"}))

    def in_data_folder(files: list[str]) -> list[str]:  # where the data folder is differs between machines
        return [file_label(file) for file in files]

    assert in_data_folder(defaults.pop("train_files")) == in_data_folder(recorded.pop("train_files"))
    # options added after the model was trained, at defaults that change nothing (no teachers: no distillation)
    assert {k: v for k, v in defaults.items() if k not in recorded} in ({}, NEUTRAL_NEW_OPTIONS)
    assert {k: v for k, v in defaults.items() if k in recorded} == recorded


NEUTRAL_NEW_OPTIONS = {"split_seed": None, "teachers": None, "teacher_weight": 0.5}


def test_default_training_files_are_read_from_the_data_folder_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from train.data_home import TRAIN_FILES
    from train.run import TrainConfig

    monkeypatch.setenv("SIAMESE_DATA", str(tmp_path))
    assert TrainConfig(out="").train_files == [str(tmp_path / name) for name in TRAIN_FILES]


def test_implied_pairs_follow_one_shared_sentence_and_skip_labeled_or_contradicted_ones() -> None:
    from train.augment import implied_pairs
    from train.data import Pairs

    rows = [
        ("花呗怎么还款", "花呗如何还款", 1, 0),   # a ~ b
        ("花呗如何还款", "花呗还款方法?", 1, 1),  # b ~ c      => a ~ c
        ("花呗如何还款", "借呗怎么还款", 0, 0),   # b !~ d     => a !~ d, c !~ d
        ("花呗还款方法？", "花呗还款方法?", 1, 0),  # c ~ c: the same sentence after normalization
        ("借呗怎么还款", "借呗额度", 1, 0),       # d ~ e: e is two hops from a, nothing implied about a, e
        ("ＡＢＣ", "abc", 1, 0),                 # one sentence after normalization: nothing implied
    ]
    pairs = Pairs([r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], np.float32),
                  np.array([r[3] for r in rows], np.int64))
    implied = implied_pairs(pairs)
    found = {(frozenset((normalize(a), normalize(b))), int(label))
             for a, b, label in zip(implied.left, implied.right, implied.labels)}
    assert found == {
        (frozenset(("花呗怎么还款", "花呗还款方法?")), 1),
        (frozenset(("花呗怎么还款", "借呗怎么还款")), 0),
        (frozenset(("花呗还款方法?", "借呗怎么还款")), 0),
        (frozenset(("花呗如何还款", "借呗额度")), 0),
    }
    assert set(implied.sources) <= {0, 1} and len(implied.left) == len(implied.sources) == 4
    # 甲 ~ 乙, 甲 ~ 丙 imply 乙 ~ 丙 but 丁 ~ 乙, 丁 !~ 丙 imply 乙 !~ 丙 (and likewise for 甲, 丁): both dropped
    contradicting = Pairs(["甲", "甲", "丁", "丁"], ["乙", "丙", "乙", "丙"],
                          np.array([1, 1, 1, 0], np.float32), np.zeros(4, np.int64))
    assert len(implied_pairs(contradicting)) == 0


def test_training_file_without_label_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("花呗\t借呗\t1\n花呗\t借呗\t2\n", encoding="utf-8")
    with pytest.raises(BadRowError, match=r"train\.tsv:2: training rows need a label 0 or 1"):
        load_pairs([str(path)])


def test_csv_with_header_by_column_names_and_skipped_rows_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("id,question,answer,is_same\n1,花呗怎么还,花呗如何还款,1\n2,借呗,,0\n3,额度,提额,x\n4,还款,还钱,0\n",
                    encoding="utf-8")
    columns = LabeledColumns(left="question", right="answer", label="is_same")
    with pytest.raises(BadRowError, match=r"pairs\.csv:3: sentence2 is empty"):
        load_pairs([str(path)], columns)
    rejects = tmp_path / "rejects.jsonl"
    pairs = load_pairs([str(path)], columns, on_bad_row="skip", reject_file=str(rejects))
    assert pairs.left == ["花呗怎么还", "还款"] and list(pairs.labels) == [1, 0] and pairs.skipped == 2
    assert [json.loads(line)["line"] for line in rejects.read_text().splitlines()] == [3, 4]


def test_several_files_keep_their_source_index(owned_pairs: Callable[..., Path]) -> None:
    pairs = load_pairs([str(owned_pairs(700, seed=2)), str(owned_pairs(400, seed=3))])
    assert np.bincount(pairs.sources).tolist() == [700, 400]


def test_split_and_sample_are_seeded_and_disjoint(owned_pairs: Callable[..., Path]) -> None:
    pairs = load_pairs([str(owned_pairs(3000, seed=4))])  # a quarter of the pairs share a sentence with another
    train_a, validation_a = split(sample(pairs, 1000, seed=3), 0.2, seed=3)
    train_b, validation_b = split(sample(pairs, 1000, seed=3), 0.2, seed=3)
    assert train_a.left == train_b.left and validation_a.right == validation_b.right
    assert len(train_a) + len(validation_a) == 1000 and 190 <= len(validation_a) <= 215
    train_sentences = {normalize(s) for s in train_a.sentences()}
    assert not train_sentences & {normalize(s) for s in validation_a.sentences()}


def _balanced_accuracy(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, threshold: float) -> float:
    predicted = scores >= threshold
    per_group = [
        (np.mean(predicted[(groups == g) & (labels == 1)]) + np.mean(~predicted[(groups == g) & (labels == 0)])) / 2
        for g in np.unique(groups)
    ]
    return float(np.mean(per_group))


def test_best_threshold_maximizes_class_balanced_accuracy_per_group() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        groups = rng.integers(0, 3, 80)
        labels = (rng.random(80) < np.where(groups == 0, 0.2, 0.5)).astype(np.float32)
        labels[:6] = [0, 1, 0, 1, 0, 1]
        groups[:6] = [0, 0, 1, 1, 2, 2]
        scores = np.round(rng.random(80) * 0.5 + labels * 0.3, 2).astype(np.float32)
        threshold = best_threshold(scores, labels, groups)
        best_possible = max(_balanced_accuracy(scores, labels, groups, t) for t in [*scores, 1.1])
        assert _balanced_accuracy(scores, labels, groups, threshold) == pytest.approx(best_possible)


def test_best_threshold_ignores_a_skewed_class_prior() -> None:
    """Nine negatives at 0.6 and one positive at 0.7: plain accuracy would put the threshold above 0.7
    (90% by calling everything negative); balanced accuracy keeps the positive."""
    scores = np.array([0.6] * 9 + [0.7, 0.1], dtype=np.float32)
    labels = np.array([0] * 9 + [1, 0], dtype=np.float32)
    assert 0.6 < best_threshold(scores, labels) <= 0.7


def test_roc_auc_matches_pairwise_definition_with_ties() -> None:
    from train.evaluate import roc_auc

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(np.float32)
    labels = rng.integers(0, 2, 60)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    pairwise = np.mean([(p > n) + 0.5 * (p == n) for p in positives for n in negatives])
    assert roc_auc(scores, labels) == pytest.approx(pairwise)


@pytest.mark.slow  # the session's tiny training run on first use
def test_short_training_learns_beyond_the_majority_class(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    labels = [
        int(line.rsplit("\t", 1)[1]) for line in (tiny_run / "validation.tsv").read_text(encoding="utf-8").splitlines()
    ]
    majority = max(np.mean(labels), 1 - np.mean(labels))
    validation = metrics["validation"]
    assert validation["roc_auc"] > 0.6, validation
    assert validation["at_threshold"]["accuracy"] > majority + 0.05, (validation, majority)


@pytest.mark.slow
def test_distillation_mixes_the_teachers_scores_into_the_targets_and_refuses_a_teacher_that_saw_validation(
    tiny_run: Path, tmp_path: Path
) -> None:
    from train.run import TrainConfig, train_run
    from train.run_directory import RunDirectoryError

    recorded = json.loads((tiny_run / "config.json").read_text(encoding="utf-8"))
    settings = {**recorded, "lstm_units": tuple(recorded["lstm_units"]), "dropout": tuple(recorded["dropout"]),
                "epochs": 1, "teachers": [str(tiny_run)], "teacher_weight": 0.5}
    student = train_run(TrainConfig(**{**settings, "out": str(tmp_path / "student")}))
    distillation = json.loads((student / "metrics.json").read_text(encoding="utf-8"))["distillation"]
    assert distillation["teachers"] == [str(tiny_run)] and distillation["teacher_weight"] == 0.5
    assert 0 < distillation["mean_target_change"] < 0.5  # soft targets: half a label, half the teacher's score
    with pytest.raises(RunDirectoryError, match="held out other validation pairs"):
        train_run(TrainConfig(**{**settings, "out": str(tmp_path / "other-split"), "seed": 2}))
