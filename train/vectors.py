"""Character vectors with gensim: pretrained word2vec files or Word2Vec trained on the sentences."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gensim.models import KeyedVectors, Word2Vec

from siamese_runtime.tokenizer import Tokenizer, characters

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Coverage:
    """Share of the vocabulary, and of the training tokens, that have a vector."""

    vocabulary: float
    tokens: float


def load_vectors(path: str, binary: bool) -> KeyedVectors:
    """Pretrained vectors in word2vec text or binary format, as the notebook's load_word2vec_format."""
    return KeyedVectors.load_word2vec_format(path, binary=binary)


def train_char_vectors(sentences: Sequence[str], dim: int, seed: int, epochs: int = 5) -> KeyedVectors:
    """Skip-gram Word2Vec over the characters of the training sentences (one worker: reproducible)."""
    corpus = [characters(s) for s in sentences]
    model = Word2Vec(corpus, vector_size=dim, window=5, min_count=1, sg=1, workers=1, seed=seed, epochs=epochs)
    return model.wv


def embedding_matrix(
    tokenizer: Tokenizer, vectors: KeyedVectors, sentences: Sequence[str]
) -> tuple[np.ndarray, Coverage]:
    """float32 [vocab, dim] rows from `vectors` (zeros where missing) and its coverage."""
    matrix = np.zeros((tokenizer.vocab_size, vectors.vector_size), dtype=np.float32)
    found = np.zeros(tokenizer.vocab_size, dtype=bool)
    for token_id, token in enumerate(tokenizer.tokens[2:], start=2):
        if token in vectors.key_to_index:
            matrix[token_id] = vectors[token]
            found[token_id] = True
    ids, _ = tokenizer.ids_batch(sentences)
    token_ids = np.fromiter((i for sequence in ids for i in sequence), dtype=np.int64)
    coverage = Coverage(
        vocabulary=float(found[2:].mean()) if tokenizer.vocab_size > 2 else 0.0,
        tokens=float(found[token_ids].mean()) if len(token_ids) else 0.0,
    )
    log.info(
        "char vectors cover %.1f%% of the vocabulary, %.1f%% of tokens",
        100 * coverage.vocabulary,
        100 * coverage.tokens,
    )
    return matrix, coverage
