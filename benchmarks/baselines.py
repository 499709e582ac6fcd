"""Ways to score a pair file end to end (file in, scores out): the notebook's Keras `predict`, a plain tf2onnx
export of the masked pair model on onnxruntime, the runtime's job in process, and the `score` command as a
whole process (start-up included), in its default precision and in int8."""

from __future__ import annotations

import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Protocol  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

import train.model  # noqa: E402, F401  (registers the custom head for load_model)
from export.convert import OPSET  # noqa: E402
from siamese_runtime.bench.pair_files import PairRow, read_pair_rows  # noqa: E402
from siamese_runtime.io.safe_output import AtomicFile  # noqa: E402
from siamese_runtime.job import JobOptions, run_job  # noqa: E402
from siamese_runtime.scorer import Scorer  # noqa: E402
from siamese_runtime.session import default_session_options, new_session  # noqa: E402
from siamese_runtime.tokenizer import Tokenizer  # noqa: E402
from train.run_directory import MODEL_FILE, VOCAB_FILE  # noqa: E402

KERAS_PREDICT_BATCH = 32  # Keras's `predict` default: the notebook called it without a batch size
RUNTIME_BATCH = 256  # the runtime's default largest encoder batch; the plain export gets the same


class Baseline(Protocol):
    key: str
    label: str

    def score_file(self, source: str, destination: str) -> None: ...


def padded_file(tokenizer: Tokenizer, source: str) -> tuple[list[PairRow], np.ndarray, np.ndarray]:
    """The file's rows and both sides' ids, padded to the file's longest sentence as the notebook did."""
    rows = list(read_pair_rows(source))
    left, _ = tokenizer.ids_batch(row.columns[0] for row in rows)
    right, _ = tokenizer.ids_batch(row.columns[1] for row in rows)
    padded = tokenizer.pad(left + right)
    return rows, padded[: len(rows)], padded[len(rows) :]


def write_scores(rows: list[PairRow], scores: np.ndarray, destination: str) -> None:
    """The runtime's output format: the input columns, then the score."""
    output = AtomicFile(destination)
    output.write("".join("\t".join([*row.columns, f"{score:.9g}"]) + "\n" for row, score in zip(rows, scores)))
    output.commit()


class KerasPredict:
    """(a) The notebook's way: the Keras pair model's `predict` on pairs padded to the file's longest sentence."""

    key = "keras"
    label = "(a) Keras predict"

    def __init__(self, run_dir: Path, batch_size: int = KERAS_PREDICT_BATCH) -> None:
        self.model = keras.models.load_model(run_dir / MODEL_FILE, safe_mode=True)
        self.tokenizer = Tokenizer.load(run_dir / VOCAB_FILE)
        self.batch_size = batch_size

    def score_file(self, source: str, destination: str) -> None:
        rows, left, right = padded_file(self.tokenizer, source)
        scores = self.model.predict([left, right], batch_size=self.batch_size, verbose=0).reshape(-1)
        write_scores(rows, scores, destination)


class PlainOnnx:
    """(b) tf2onnx on the masked pair model as it is (its LSTMs become Loop ops), run on fully padded batches."""

    key = "plain_onnx"
    label = "(b) plain tf2onnx"

    def __init__(self, keras_baseline: KerasPredict, workdir: Path, batch_size: int = RUNTIME_BATCH,
                 threads: int | None = None) -> None:
        signature = tuple(tf.TensorSpec((None, None), tf.int32, name=i.name) for i in keras_baseline.model.inputs)
        model, _ = tf2onnx.convert.from_keras(keras_baseline.model, input_signature=signature, opset=OPSET)
        self.op_counts = dict(Counter(node.op_type for node in model.graph.node))
        path = workdir / "plain_pair_model.onnx"
        onnx.save(model, str(path))
        self.session = new_session(path, options=default_session_options(threads))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.tokenizer = keras_baseline.tokenizer
        self.batch_size = batch_size

    def score_file(self, source: str, destination: str) -> None:
        rows, left, right = padded_file(self.tokenizer, source)
        scores = np.concatenate([
            self.session.run(
                None, dict(zip(self.input_names, (left[i : i + self.batch_size], right[i : i + self.batch_size])))
            )[0]
            for i in range(0, len(rows), self.batch_size)
        ]).reshape(-1)
        write_scores(rows, scores, destination)


class Runtime:
    """(c) siamese_runtime: the `score` command's job on the exported model folder."""

    key = "runtime"
    label = "(c) siamese-runtime"

    def __init__(self, model_folder: Path, threads: int | None = None) -> None:
        self.scorer = Scorer(model_folder, providers="cpu", intra_op_num_threads=threads)

    def score_file(self, source: str, destination: str) -> None:
        # each run starts cold, as a fresh `siamese-runtime score` would: encodings cached by the warm-up
        # or an earlier repeat would otherwise be measured as free
        self.scorer.cache.clear()
        run_job(self.scorer, JobOptions(input=source, output=destination, header=False))


STAGES_LINE = "siamese-runtime: seconds by stage: "


class CommandLine:
    """(d), (e) `siamese-runtime score` as users run it: a whole process, imports and model loading included."""

    def __init__(self, model_folder: Path, precision: str = "auto") -> None:
        self.model_folder, self.precision = model_folder, precision
        self.key = "cli" if precision == "auto" else f"cli_{precision}"
        self.label = "(d) score command" if precision == "auto" else f"(e) score command, --precision {precision}"
        self._fastest: dict[str, tuple[float, dict[str, float]]] = {}

    def score_file(self, source: str, destination: str) -> None:
        command = [sys.executable, "-m", "siamese_runtime", "score", source, "-o", destination, "--no-header",
                   "--model", str(self.model_folder), "--precision", self.precision, "--profile"]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr}")
        line = next(line for line in result.stderr.splitlines() if line.startswith(STAGES_LINE))
        stages = {name: float(value) for name, value in
                  (item.split() for item in line.removeprefix(STAGES_LINE).split(", "))}
        if seconds < self._fastest.get(source, (float("inf"), {}))[0]:
            self._fastest[source] = (seconds, stages)

    def stage_seconds(self, source: str) -> dict[str, float]:
        """The job's seconds by stage in the fastest run on `source` (its --profile)."""
        return self._fastest[source][1]
