"""The public API: encode sentences, score and predict pairs with a model folder on onnxruntime."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .batching import distinct, length_batches
from .heads import HEADS
from .model_folder import ModelFolder
from .session import ProviderSpec, create_session

log = logging.getLogger(__name__)


class Scorer:
    """Scores sentence pairs with a Siamese model: each distinct sentence is encoded once."""

    def __init__(
        self,
        model: str | Path | ModelFolder | None = None,
        providers: str | Sequence[ProviderSpec] = "auto",
        precision: str = "fp32",
        intra_op_num_threads: int | None = None,
        batch_size: int = 256,
        token_budget: int = 8192,
    ) -> None:
        self.model = model if isinstance(model, ModelFolder) else ModelFolder.load(model)
        self.precision = precision
        self.session = create_session(self.model.encoder_path(precision), providers, intra_op_num_threads)
        self.batch_size = batch_size
        self.token_budget = token_budget
        self._input_name = self.session.get_inputs()[0].name
        self._head = HEADS[self.model.head]

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on, in priority order."""
        return self.session.get_providers()

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def encode(self, sentences: Iterable[str]) -> np.ndarray:
        """float32 [n, d] encodings in input order; duplicates are encoded once."""
        sentences = _as_text_list(sentences)
        unique, positions = distinct(sentences)
        return self._encode_distinct(unique)[positions]

    def score(self, left: Iterable[str] | Iterable[tuple[str, str]], right: Iterable[str] | None = None) -> np.ndarray:
        """float32 [n] similarity scores in [0, 1] for pairs, or for two aligned sequences."""
        if right is None:
            pairs = [tuple(p) for p in left]  # type: ignore[arg-type]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("score(pairs) takes (sentence1, sentence2) pairs")
            left, right = [p[0] for p in pairs], [p[1] for p in pairs]
        left, right = _as_text_list(left), _as_text_list(right)
        if len(left) != len(right):
            raise ValueError(f"left has {len(left)} sentences, right has {len(right)}")
        unique, positions = distinct(left + right)
        encodings = self._encode_distinct(unique)
        return self._head(encodings[positions[: len(left)]], encodings[positions[len(left) :]])

    def predict(self, left: Iterable[str] | Iterable[tuple[str, str]], right: Iterable[str] | None = None) -> np.ndarray:
        """bool [n]: score at or above the model's stored threshold."""
        return self.score(left, right) >= self.threshold

    def _encode_distinct(self, sentences: list[str]) -> np.ndarray:
        tokenizer = self.model.tokenizer
        ids, truncated = tokenizer.ids_batch(sentences)
        for text, sequence in zip(sentences, ids):
            if not sequence:
                raise ValueError(f"sentence {text!r} is empty after normalization")
        if truncated:
            log.warning("%d sentences longer than max_length %d were truncated", truncated, tokenizer.max_length)
        encodings = np.empty((len(ids), self.model.encoding_dim), np.float32)
        for batch in length_batches([len(s) for s in ids], self.token_budget, self.batch_size):
            encodings[batch] = self.session.run(None, {self._input_name: tokenizer.pad([ids[i] for i in batch])})[0]
        return encodings


def _as_text_list(sentences: Iterable[object]) -> list[str]:
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentence {i} is {type(text).__name__}, not str")
    return texts  # type: ignore[return-value]
