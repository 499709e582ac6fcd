"""The training run directory contract: the files `python -m train` writes, and what export and the benchmarks
read from them, with errors that name the file.

Like siamese_runtime/model_folder.py for model folders, this module is the one place that knows the run
directory's file names and the layout of its JSON files; callers ask a RunDirectory, never dig into the JSON.
It imports neither Keras, gensim nor TensorFlow, so tools can open a run without paying for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from siamese_runtime.errors import SiameseRuntimeError
from siamese_runtime.io.writers import tsv_lines
from siamese_runtime.tokenizer import Tokenizer

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
VALIDATION_FILE = "validation.tsv"
REJECT_FILE = "rejected_rows.jsonl"
HISTORY_CSV_FILE = "history.csv"
HISTORY_JSON_FILE = "history.json"
CURVES_FILE = "curves.png"
DIAGRAM_FILE = "model.png"
# What a finished run always holds, and so what export needs.
REQUIRED_FILES = (MODEL_FILE, VOCAB_FILE, CONFIG_FILE, METRICS_FILE, VALIDATION_FILE)


def validation_text(left: Sequence[str], right: Sequence[str], labels: Iterable[float]) -> str:
    """validation.tsv's text for these held-out pairs."""
    return tsv_lines([a, b, str(int(label))] for a, b, label in zip(left, right, labels))


class RunDirectoryError(SiameseRuntimeError):
    """A run directory or one of its files cannot be used; the message names the file."""


class RunDirectory:
    """A training run's directory: where each file is, its config and metrics, written and read back."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._json: dict[str, dict[str, Any]] = {}

    @classmethod
    def load(cls, path: str | Path) -> RunDirectory:
        """An existing, finished run directory; RunDirectoryError names what is missing."""
        run = cls(path)
        if not run.path.is_dir():
            raise RunDirectoryError(f"{run.path}: no such directory; give a run directory written by python -m train")
        absent = [name for name in REQUIRED_FILES if not (run.path / name).is_file()]
        if absent:
            raise RunDirectoryError(f"{run.path}: lacks {', '.join(absent)}; is it a finished run of python -m train?")
        _ = (run.head, run.threshold, run.validation_metrics)  # read now: a broken JSON file fails at load
        return run

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def vocab_path(self) -> Path:
        return self.path / VOCAB_FILE

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def validation_path(self) -> Path:
        """The held-out pairs (headerless TSV: sentence1, sentence2, label) that export checks parity on."""
        return self.path / VALIDATION_FILE

    @property
    def reject_path(self) -> Path:
        return self.path / REJECT_FILE

    def config(self) -> dict[str, Any]:
        """config.json: the TrainConfig the run was made with, as a dict."""
        return self._object(CONFIG_FILE)

    def metrics(self) -> dict[str, Any]:
        """metrics.json: pair counts, vocabulary, validation results, threshold, timings."""
        return self._object(METRICS_FILE)

    @property
    def head(self) -> str:
        """The similarity head the run trained ('manhattan', 'euclidean', 'cosine')."""
        return str(self._value(CONFIG_FILE, "head"))

    @property
    def threshold(self) -> float:
        """The decision threshold chosen on the validation split."""
        value = self._value(METRICS_FILE, "threshold")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RunDirectoryError(f"{self.metrics_path}: threshold must be a number, found {json.dumps(value)}")
        return float(value)

    @property
    def validation_metrics(self) -> dict[str, Any]:
        """The run's results on its validation split, all files pooled."""
        return self._value(METRICS_FILE, "validation")

    @property
    def validation_metrics_per_file(self) -> dict[str, Any]:
        """The run's results on its validation split by training file (empty for runs from before it was kept)."""
        return self.metrics().get("validation_per_file", {})

    def tokenizer(self) -> Tokenizer:
        try:
            return Tokenizer.load(self.vocab_path)
        except FileNotFoundError:
            raise RunDirectoryError(f"{self.vocab_path}: no such file") from None
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:  # JSONDecodeError too
            raise RunDirectoryError(f"{self.vocab_path}: unusable vocabulary: {error}") from None

    def write_config(self, config: dict[str, Any]) -> None:
        self._write_object(CONFIG_FILE, config)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        self._write_object(METRICS_FILE, metrics)

    def write_validation(self, left: Sequence[str], right: Sequence[str], labels: Iterable[float]) -> None:
        """The held-out pairs, written by the runtime's TSV writer: a tab or line break inside a sentence becomes
        a space (which normalization treats alike), so every pair reads back as one row of three columns."""
        self.validation_path.write_text(validation_text(left, right, labels), encoding="utf-8")

    def _write_object(self, name: str, value: dict[str, Any]) -> None:
        (self.path / name).write_text(json.dumps(value, indent=2), encoding="utf-8")
        self._json.pop(name, None)

    def _object(self, name: str) -> dict[str, Any]:
        if name not in self._json:
            path = self.path / name
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise RunDirectoryError(f"{path}: no such file; is {self.path} a run directory?") from None
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise RunDirectoryError(f"{path}: not valid JSON: {error}") from None
            if not isinstance(value, dict):
                raise RunDirectoryError(f"{path}: must be a JSON object, found {json.dumps(value)[:40]}")
            self._json[name] = value
        return self._json[name]

    def _value(self, name: str, key: str) -> Any:
        found = self._object(name)
        if key not in found:
            raise RunDirectoryError(f"{self.path / name}: no {key!r}")
        return found[key]
