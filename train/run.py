"""One training run: data, vocabulary, char vectors, model, fit, evaluation, saved to a run directory."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras

from siamese_runtime.tokenizer import Tokenizer

from .augment import implied_pairs
from .data import LabeledColumns, balanced_weights, load_pairs, sample, split
from .data_home import TRAIN_FILES, data_file
from .evaluate import evaluate
from .fit import BucketedPairs, best_threshold, fit, predict_scores
from .history import save_history
from .model import build_encoder, build_pair_model
from .vectors import embedding_matrix, load_vectors, train_char_vectors

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
VALIDATION_FILE = "validation.tsv"
REJECT_FILE = "rejected_rows.jsonl"


def default_train_files() -> list[str]:
    """The default model's training files (ATEC, CCKS, BQ dev, LCQMC dev) in the data folder ($SIAMESE_DATA)."""
    return [str(data_file(name)) for name in TRAIN_FILES]


@dataclass
class TrainConfig:
    """Everything that defines a run; saved beside the model as config.json."""

    out: str
    train_files: list[str] = field(default_factory=default_train_files)
    left_column: str | None = None
    right_column: str | None = None
    label_column: str | None = None
    header: bool | None = None
    on_bad_row: str = "stop"
    max_pairs: int | None = None
    validation_fraction: float = 0.1
    implied_pairs: bool = False
    seed: int = 1
    max_length: int = 64
    min_count: int = 1
    vectors: str | None = None
    vectors_binary: bool = False
    embedding_dim: int = 300
    vector_epochs: int = 20
    trainable_embeddings: bool = False
    lstm_units: tuple[int, ...] = (128, 32)
    dropout: tuple[float, ...] = (0.5, 0.0)
    pair_dropout: float = 0.0
    head: str = "manhattan"
    epochs: int = 14
    warmup_epochs: int = 1
    class_balance: bool = True
    file_weights: list[float] | None = None
    batch_size: int = 64
    learning_rate: float = 0.002
    patience: int = 3


def train_run(config: TrainConfig) -> Path:
    """Train as configured and write the run directory; returns its path."""
    if config.file_weights is not None and len(config.file_weights) != len(config.train_files):
        raise ValueError(f"{len(config.file_weights)} file weights for {len(config.train_files)} training files")
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    columns = LabeledColumns(config.left_column, config.right_column, config.label_column, config.header)
    loaded = load_pairs(config.train_files, columns, config.on_bad_row, str(out / REJECT_FILE))
    pairs = sample(loaded, config.max_pairs, config.seed)
    train_pairs, validation_pairs = split(pairs, config.validation_fraction, config.seed)
    tokenizer = Tokenizer.fit(train_pairs.sentences(), config.max_length, config.min_count)
    vectors = (
        load_vectors(config.vectors, config.vectors_binary)
        if config.vectors
        else train_char_vectors(train_pairs.sentences(), config.embedding_dim, config.seed, config.vector_epochs)
    )
    embeddings, coverage = embedding_matrix(tokenizer, vectors, train_pairs.sentences())

    implied = implied_pairs(train_pairs) if config.implied_pairs else None
    if implied is not None:
        log.info("%d pairs implied by the training labels added (%d similar)", len(implied), int(implied.labels.sum()))
        train_pairs = train_pairs.extended(implied)

    encoder = build_encoder(embeddings, config.lstm_units, config.dropout, config.trainable_embeddings)
    model = build_pair_model(encoder, config.head, config.pair_dropout)
    train_weights = balanced_weights(train_pairs, config.file_weights) if config.class_balance else None
    validation_weights = balanced_weights(validation_pairs, config.file_weights) if config.class_balance else None
    train_data = BucketedPairs(train_pairs, tokenizer, config.batch_size, config.seed, True, train_weights)
    validation_data = BucketedPairs(
        validation_pairs, tokenizer, config.batch_size, config.seed, False, validation_weights
    )
    history = fit(model, train_data, validation_data, config.epochs, config.warmup_epochs, config.patience,
                  config.learning_rate, config.head)

    scores = predict_scores(model, validation_data)
    threshold = best_threshold(scores, validation_pairs.labels, validation_pairs.sources)
    metrics = {
        "pairs": {"train": len(train_pairs), "implied": 0 if implied is None else len(implied),
                  "validation": len(validation_pairs), "bad_rows_skipped": loaded.skipped},
        "vocab_size": tokenizer.vocab_size,
        "vector_coverage": asdict(coverage),
        "epochs_run": len(history["loss"]),
        "seconds": round(time.perf_counter() - started, 1),
        "validation": evaluate(scores, validation_pairs.labels, threshold),
        "validation_per_file": {
            path: evaluate(scores[mask], validation_pairs.labels[mask], threshold)
            for source, path in enumerate(config.train_files)
            if (mask := validation_pairs.sources == source).any()
        },
        "threshold": threshold,
        "threshold_rule": "maximizes class-balanced validation accuracy averaged over the training files",
        "model_diagram": save_model_diagram(model, out),
    }
    model.save(out / MODEL_FILE)
    tokenizer.save(out / VOCAB_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2))
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    save_history(history, out)
    _save_validation(out / VALIDATION_FILE, validation_pairs)
    log.info("run saved to %s: validation accuracy %.4f at threshold %.3f", out,
             metrics["validation"]["at_threshold"]["accuracy"], threshold)
    return out


def save_model_diagram(model: keras.Model, folder: Path) -> str:
    """The notebook's plot_model diagrams, where pydot and graphviz are installed; else why not."""
    try:
        keras.utils.plot_model(
            model, to_file=str(folder / "model.png"), show_shapes=True, show_dtype=True, expand_nested=True
        )
    except (ImportError, OSError) as error:
        return f"skipped: {error}"
    return "model.png"


def _save_validation(path: Path, pairs) -> None:
    """The held-out pairs, so export can check parity on data the model never trained on."""
    with path.open("w", encoding="utf-8") as stream:
        for left, right, label in zip(pairs.left, pairs.right, pairs.labels):
            stream.write(f"{left}\t{right}\t{int(label)}\n")
