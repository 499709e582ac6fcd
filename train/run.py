"""One training run: data, vocabulary, char vectors, model, fit, evaluation, saved to a run directory."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras

from siamese_runtime.tokenizer import Tokenizer

from .augment import implied_pairs
from .config import TrainConfig
from .data import LabeledColumns, balanced_weights, load_pairs, sample, split
from .distill import soft_targets, teacher_scores
from .evaluate import evaluate
from .fit import BucketedPairs, best_threshold, fit, predict_scores
from .history import save_history
from .model import build_encoder, build_pair_model
from .run_directory import DIAGRAM_FILE, RunDirectory
from .vectors import embedding_matrix, load_vectors, train_char_vectors

log = logging.getLogger(__name__)

__all__ = ["TrainConfig", "save_model_diagram", "train_run"]  # TrainConfig: its home is train.config


def train_run(config: TrainConfig) -> Path:
    """Train as configured and write the run directory; returns its path."""
    if config.file_weights is not None and len(config.file_weights) != len(config.train_files):
        raise ValueError(f"{len(config.file_weights)} file weights for {len(config.train_files)} training files")
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    run = RunDirectory(out)

    columns = LabeledColumns(config.left_column, config.right_column, config.label_column, config.header)
    loaded = load_pairs(config.train_files, columns, config.on_bad_row, str(run.reject_path))
    pairs = sample(loaded, config.max_pairs, config.seed)
    train_pairs, validation_pairs = split(pairs, config.validation_fraction,
                                          config.seed if config.split_seed is None else config.split_seed)
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

    encoder = build_encoder(embeddings, config.lstm_units, config.dropout, config.trainable_embeddings,
                            pooling=config.pooling, projection=config.projection)
    model = build_pair_model(encoder, config.head, config.pair_dropout, config.head_units, config.head_dropout)
    train_weights = balanced_weights(train_pairs, config.file_weights) if config.class_balance else None
    validation_weights = balanced_weights(validation_pairs, config.file_weights) if config.class_balance else None
    train_data = BucketedPairs(train_pairs, tokenizer, config.batch_size, config.seed, True, train_weights)
    distillation = None
    if config.teachers:
        teacher = teacher_scores(config.teachers, train_pairs, validation_pairs, tokenizer)
        train_data.labels = soft_targets(train_pairs.labels, teacher, config.teacher_weight)
        distillation = {"teachers": config.teachers, "teacher_weight": config.teacher_weight,
                        "teacher_accuracy_on_train": float(((teacher >= 0.5) == train_pairs.labels).mean()),
                        "mean_target_change": float(abs(train_data.labels - train_pairs.labels).mean())}
    validation_data = BucketedPairs(
        validation_pairs, tokenizer, config.batch_size, config.seed, False, validation_weights
    )
    history = fit(model, train_data, validation_data, config.epochs, config.warmup_epochs, config.patience,
                  config.learning_rate, config.head)

    scores = predict_scores(model, validation_data)
    threshold = best_threshold(scores, validation_pairs.labels, validation_pairs.sources)
    metrics: dict[str, Any] = {
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
        "distillation": distillation,
        "threshold_rule": "maximizes class-balanced validation accuracy averaged over the training files",
        "model_diagram": save_model_diagram(model, out),
    }
    model.save(run.model_path)
    tokenizer.save(run.vocab_path)
    run.write_config(asdict(config))
    run.write_metrics(metrics)
    save_history(history, out)
    # the held-out pairs, so export can check parity on data the model never trained on
    run.write_validation(validation_pairs.left, validation_pairs.right, validation_pairs.labels)
    log.info("run saved to %s: validation accuracy %.4f at threshold %.3f", out,
             metrics["validation"]["at_threshold"]["accuracy"], threshold)
    return out


def save_model_diagram(model: keras.Model, folder: Path) -> str:
    """The notebook's plot_model diagrams, where pydot and graphviz are installed; else why not."""
    try:
        keras.utils.plot_model(
            model, to_file=str(folder / DIAGRAM_FILE), show_shapes=True, show_dtype=True, expand_nested=True
        )
    except (ImportError, OSError) as error:
        return f"skipped: {error}"
    return DIAGRAM_FILE
