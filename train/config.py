"""What defines a training run: TrainConfig, saved in the run directory as config.json.

Light on purpose (no Keras, gensim or TensorFlow): `python -m train --help` builds its options from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .data_home import TRAIN_FILES, data_file


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
    teachers: list[str] | None = None
    teacher_weight: float = 0.5
    seed: int = 1
    split_seed: int | None = None  # the validation split's seed; None: `seed`
    max_length: int = 64
    min_count: int = 1
    vectors: str | None = None
    vectors_binary: bool = False
    embedding_dim: int = 300
    vector_epochs: int = 20
    trainable_embeddings: bool = False
    projection: int | None = None  # width the char vectors are projected to before the first BiLSTM
    lstm_units: tuple[int, ...] = (128, 32)
    dropout: tuple[float, ...] = (0.5, 0.0)
    pair_dropout: float = 0.3
    pooling: str = "max-mean"
    head: str = "mlp"
    head_units: int = 64
    head_dropout: float = 0.3
    epochs: int = 14
    warmup_epochs: int = 1
    class_balance: bool = True
    file_weights: list[float] | None = None
    batch_size: int = 64
    learning_rate: float = 0.002
    patience: int = 3
