"""The training run directory contract (train/run_directory.py): file names, reading back, errors naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from siamese_runtime.tokenizer import Tokenizer, normalize
from train.data import load_pairs
from train.run_directory import (
    CONFIG_FILE,
    METRICS_FILE,
    REQUIRED_FILES,
    VALIDATION_FILE,
    VOCAB_FILE,
    RunDirectory,
    RunDirectoryError,
)

from .conftest import REPO

METRICS = {"threshold": 0.42, "validation": {"pairs": 3}, "validation_per_file": {"a.tsv": {"pairs": 3}}}


@pytest.fixture
def run(tmp_path: Path) -> RunDirectory:
    """A run directory holding every file export needs (the model file only in name)."""
    run = RunDirectory(tmp_path / "run")
    run.path.mkdir()
    run.model_path.write_bytes(b"not read here")
    Tokenizer.fit(["花呗怎么还款"], 8, 1).save(run.vocab_path)
    run.write_config({"head": "cosine", "max_length": 8})
    run.write_metrics(METRICS)
    run.write_validation(["花呗"], ["借呗"], [1.0])
    return run


def test_a_finished_run_reads_back_what_training_wrote(run: RunDirectory) -> None:
    loaded = RunDirectory.load(run.path)
    assert loaded.head == "cosine" and loaded.threshold == 0.42
    assert loaded.config() == {"head": "cosine", "max_length": 8} and loaded.metrics() == METRICS
    assert loaded.validation_metrics == {"pairs": 3}
    assert loaded.validation_metrics_per_file == {"a.tsv": {"pairs": 3}}
    assert loaded.tokenizer().max_length == 8
    assert loaded.validation_path == run.path / VALIDATION_FILE


def test_validation_pairs_with_tabs_and_line_breaks_read_back_as_one_row_each(tmp_path: Path) -> None:
    """Training files in JSONL or CSV may hold a tab or line break inside a sentence; validation.tsv is written by
    the runtime's TSV writer, so each pair reads back through the runtime's reader as one row, same tokens."""
    source = tmp_path / "train.jsonl"
    rows = [("花呗\t怎么还款", "花呗如何\n还款", 1), ("借呗\r\n额度", "提额", 0), ("还款", "还钱\t\t", 1)]
    source.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "label": c}, ensure_ascii=False) + "\n"
                              for a, b, c in rows), encoding="utf-8")
    pairs = load_pairs([str(source)])
    assert pairs.left[0] == "花呗\t怎么还款"  # the loader keeps the tab

    run = RunDirectory(tmp_path)
    run.write_validation(pairs.left, pairs.right, pairs.labels)
    back = load_pairs([str(run.validation_path)])
    assert len(run.validation_path.read_text(encoding="utf-8").split("\n")) == len(rows) + 1
    assert back.left == ["花呗 怎么还款", "借呗  额度", "还款"] and back.right == ["花呗如何 还款", "提额", "还钱  "]
    np.testing.assert_array_equal(back.labels, pairs.labels)
    assert [normalize(s) for s in back.sentences()] == [normalize(s) for s in pairs.sentences()]


def test_a_missing_directory_or_file_is_named(run: RunDirectory, tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match=r"nowhere: no such directory"):
        RunDirectory.load(tmp_path / "nowhere")
    (run.path / VALIDATION_FILE).unlink()
    (run.path / VOCAB_FILE).unlink()
    with pytest.raises(RunDirectoryError, match=r"run: lacks vocab\.json, validation\.tsv; is it a finished run"):
        RunDirectory.load(run.path)
    assert VALIDATION_FILE in REQUIRED_FILES


@pytest.mark.parametrize(
    ("file", "text", "message"),
    [
        (CONFIG_FILE, "{", r"config\.json: not valid JSON"),
        (METRICS_FILE, "[0.5]", r"metrics\.json: must be a JSON object, found \[0\.5\]"),
        (METRICS_FILE, '{"validation": {}}', r"metrics\.json: no 'threshold'"),
        (METRICS_FILE, '{"threshold": "high", "validation": {}}', r"metrics\.json: threshold must be a number"),
        (CONFIG_FILE, "{}", r"config\.json: no 'head'"),
    ],
)
def test_a_broken_json_file_is_named_when_the_run_is_opened(
    run: RunDirectory, file: str, text: str, message: str
) -> None:
    (run.path / file).write_text(text, encoding="utf-8")
    with pytest.raises(RunDirectoryError, match=message):
        RunDirectory.load(run.path)


def test_an_unusable_vocabulary_is_named(run: RunDirectory) -> None:
    run.vocab_path.write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(RunDirectoryError, match=r"vocab\.json: unusable vocabulary: unknown vocabulary format"):
        RunDirectory.load(run.path).tokenizer()


def test_the_contract_imports_no_keras_gensim_or_tensorflow() -> None:
    code = ("import sys, train.run_directory, train.config; "
            "print(sorted({'keras', 'tensorflow', 'gensim'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("tool", ["train", "export"])
def test_help_prints_only_the_help_and_loads_no_tensorflow(tool: str) -> None:
    """`python -m train --help` and `python -m export --help` parse their arguments before importing the heavy
    modules, so TensorFlow's start-up lines (oneDNN, CUDA stubs, absl) never precede the help."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", tool, "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {tool} ")
    noise = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert noise == []
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert not imported & {"tensorflow", "keras", "tf2onnx", "gensim"}


def test_a_teacher_that_is_not_a_run_is_refused_before_training_starts(tmp_path: Path) -> None:
    """Checked before anything else, the data folder included (here it does not exist)."""
    result = subprocess.run([sys.executable, "-m", "train", "--out", str(tmp_path / "run"), "--teachers",
                             str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, "SIAMESE_DATA": str(tmp_path / "no-data")})
    assert result.returncode == 2
    assert f"--teachers: {tmp_path / 'nowhere'}: no such directory" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
