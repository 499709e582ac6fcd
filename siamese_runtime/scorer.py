"""The public API: encode sentences, score, predict and rank pairs with a model folder on onnxruntime."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

import numpy as np
import onnxruntime as ort

from .batching import EncodingCache, chunked, distinct
from .encoder import Encoder
from .errors import ModelOutputError
from .inputs import as_pairs, as_texts, int_at_least, pair_rows
from .model_folder import ModelFolder
from .providers import ProviderSpec
from .settings import AUTO, ScorerSettings
from .tokenizer import TokenIds

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class EncodeStats:
    """What the encoder did for a caller, summed over its calls: sentences run through it, truncated, and
    seconds by stage (tokenize, encode, head; a job adds read and write)."""

    encoded: int = 0
    truncated: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


class Match(NamedTuple):
    """One ranked candidate: its position in the candidates, its text and its score."""

    index: int  # type: ignore[assignment]  # the field's name, though tuple has an index() method
    text: str
    score: float


class Scorer:
    """Scores sentence pairs with a Siamese model: each distinct sentence is encoded once, then cached.

    One Scorer may be shared by threads: onnxruntime sessions and the cache are thread-safe.
    """

    def __init__(
        self,
        model: str | Path | ModelFolder | None = None,
        providers: str | Sequence[ProviderSpec] = AUTO,
        precision: str = AUTO,
        intra_op_num_threads: int | None = None,
        batch_size: int | None = None,
        token_budget: int | None = None,
        cache_size: int = 100_000,
        session_options: ort.SessionOptions | None = None,
    ) -> None:
        """Checked before the model loads (as a ScorerSettings, which `settings` keeps): `batch_size` (most
        sentences per encoder run; None: 64 on the CPU provider, where small batches pad less and stay in cache,
        1,024 on GPU providers, 256 elsewhere) and `token_budget` (padded tokens per run, a longer sentence runs
        alone; None: 65,536 on GPU providers, else 8,192) at least 1, `cache_size` at least 0 (0: off),
        `intra_op_num_threads` None (one per physical core) or at least 1: the cores encoding may use, as
        onnxruntime's intra-op threads; on the CPU provider with the runtime's own session options, a call of
        several batches runs that many at once instead, each on one thread of a second session (cores then never
        wait for each other at a batch's time steps; the bytes are the same). `session_options`: onnxruntime's own
        (profiling, optimization level, ...) in place of the runtime's defaults; the thread count still applies."""
        self.settings = ScorerSettings(
            model=model, providers=providers, precision=precision, intra_op_num_threads=intra_op_num_threads,
            batch_size=batch_size, token_budget=token_budget, cache_size=cache_size, session_options=session_options)
        self.model = model if isinstance(model, ModelFolder) else ModelFolder.load(model)
        self.encoder = Encoder(self.model, self.settings)
        self.cache = EncodingCache(self.settings.cache_size)
        self._head = self.model.similarity()

    @classmethod
    def from_settings(cls, settings: ScorerSettings) -> Scorer:
        """A Scorer with these settings."""
        return cls(**settings.arguments())

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on, in priority order."""
        return self.encoder.providers

    @property
    def provider_options(self) -> dict[str, dict[str, Any]]:
        """Each running provider's options (the runtime's defaults under the caller's own, and onnxruntime's)."""
        return self.encoder.provider_options

    @property
    def precision(self) -> str:
        """The encoder precision that runs (`encoder.precision_reason` says why)."""
        return self.encoder.precision

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def encode(self, sentences: Iterable[str], stats: EncodeStats | None = None) -> np.ndarray:
        """float32 [n, d] encodings in input order; duplicates and cached sentences are not re-encoded.

        With `stats`, counts are added to it and truncation is left to the caller to report;
        without, truncation is logged once per call.
        """
        return self._encodings(as_texts(sentences), stats)

    def score(
        self,
        left: Iterable[str] | Iterable[tuple[str, str]],
        right: Iterable[str] | None = None,
        stats: EncodeStats | None = None,
    ) -> np.ndarray:
        """float32 [n] similarity scores in [0, 1] for pairs, or for two aligned sequences."""
        left_texts, right_texts = as_pairs(left, right)
        encodings = self._encodings(left_texts + right_texts, stats)
        return self._pair_scores(encodings, left_texts, right_texts, stats or EncodeStats())

    def predict(
        self,
        left: Iterable[str] | Iterable[tuple[str, str]],
        right: Iterable[str] | None = None,
        stats: EncodeStats | None = None,
    ) -> np.ndarray:
        """bool [n]: score at or above the model's stored threshold."""
        return self.score(left, right, stats) >= self.threshold

    def score_stream(self, pairs: Iterable[tuple[str, str]], chunk_size: int = 8192) -> Iterator[float]:
        """Scores of a stream of pairs, in order, holding at most `chunk_size` (>= 1, checked now) pairs at a time."""
        return self._score_chunks(chunked(pair_rows(pairs), int_at_least(chunk_size, "chunk_size")))

    def _score_chunks(self, chunks: Iterable[list[tuple[str, str]]]) -> Iterator[float]:
        stats = EncodeStats()
        with closing(self.pipelined_scores(((None, *as_pairs(chunk, None)) for chunk in chunks), stats)) as scored:
            for _, scores in scored:
                yield from scores.tolist()
        _warn_truncated(stats, self.model.tokenizer.max_length)

    def pipelined_scores(self, chunks: Iterable[tuple[T, list[str], list[str]]], stats: EncodeStats,
                         ahead: bool = True) -> Generator[tuple[T, np.ndarray], None, None]:
        """Each chunk's tag and scores (chunks of a tag and two aligned lists of text), in order, while the
        encoder runs the next chunk on a thread of its own: the caller's work on a chunk's scores, and the next
        chunk's reading, overlap the encoder (onnxruntime frees the GIL). The scores `score` gives chunk by
        chunk, and the same cache: a chunk is looked up once the cache holds the previous chunk's encodings.
        `stats` gets the encoder's own time as 'encode' and the caller's time waiting for it as 'wait'. Closing
        the generator waits for the encoder run under way. Without `ahead`, a chunk's scores come before the
        next chunk is asked for (a stream whose rows trickle in gets each chunk's scores at once)."""
        source = iter(chunks)
        with ThreadPoolExecutor(1, thread_name_prefix="siamese-encoder") as encoder:
            pending: _Pending[T] | None = None
            while True:
                try:
                    tag, left, right = next(source)
                except StopIteration:
                    break
                except Exception:  # the next chunk cannot be read: the one before it is scored first
                    if pending:
                        yield self._scored(pending, self._finished(pending, stats), stats)
                    raise
                previous, pending = pending, None
                encodings = self._finished(previous, stats) if previous else None  # in the cache before the lookup
                try:
                    lookup = self._looked_up(left + right, stats)
                except Exception:
                    if previous and encodings is not None:
                        yield self._scored(previous, encodings, stats)
                    raise
                pending = _Pending(tag, left, right, lookup, encoder.submit(self._encoded, lookup, stats))
                if previous and encodings is not None:
                    yield self._scored(previous, encodings, stats)
                if not ahead:
                    yield self._scored(pending, self._finished(pending, stats), stats)
                    pending = None
            if pending:
                yield self._scored(pending, self._finished(pending, stats), stats)

    def _finished(self, pending: _Pending[Any], stats: EncodeStats) -> np.ndarray:
        """A pending chunk's encodings once its encoder run ends, its misses put in the cache."""
        with stats.timed("wait"):
            encoded = pending.encoded.result()
        return pending.lookup.filled(encoded, self.cache, stats)

    def _scored(self, chunk: _Pending[T], encodings: np.ndarray, stats: EncodeStats) -> tuple[T, np.ndarray]:
        """A chunk's tag and scores, from its encodings."""
        return chunk.tag, self._pair_scores(encodings, chunk.left, chunk.right, stats)

    def _pair_scores(self, encodings: np.ndarray, left: list[str], right: list[str], stats: EncodeStats,
                     ) -> np.ndarray:
        with stats.timed("head"):
            return self._scores(encodings[: len(left)], encodings[len(left) :], left, right)

    def rank(self, query: str, candidates: Iterable[str], top_k: int | None = 10) -> list[Match]:
        """The `top_k` (None: all, else at least 1) candidates most similar to `query`, best first (ties keep
        input order).

        Candidates are encoded through the cache, so ranking against the same candidates again is cheap.
        """
        if top_k is not None:
            top_k = int_at_least(top_k, "top_k")
        (query,) = as_texts([query], "query")
        texts = as_texts(candidates, "candidate")
        encodings = self._encodings([query, *texts], None)
        scores = self._scores(np.broadcast_to(encodings[:1], encodings[1:].shape), encodings[1:], [query] * len(texts),
                              texts)
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [Match(int(i), texts[i], float(scores[i])) for i in order]

    def _scores(self, left: np.ndarray, right: np.ndarray, left_texts: Sequence[str], right_texts: Sequence[str],
                ) -> np.ndarray:
        """The head's scores of encoded pairs; ModelOutputError where one is not a probability (weights that
        overflow give NaN), naming the head's file and the pair."""
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported as the error below
            scores = self._head(left, right)
        if not (valid := (scores >= 0) & (scores <= 1)).all():  # NaN fails both
            first = int(np.argmin(valid))
            head = self.model.manifest["head"].get("file") or "manifest.json"
            raise ModelOutputError(f"{self.model.path / head}: its head scores the pair ({left_texts[first]!r}, "
                                   f"{right_texts[first]!r}) {scores[first]}, not a probability; the model is broken: "
                                   "no score is written")
        return scores

    def _encodings(self, sentences: list[str], stats: EncodeStats | None) -> np.ndarray:
        call_stats = stats if stats is not None else EncodeStats()
        lookup = self._looked_up(sentences, call_stats)
        encodings = lookup.filled(self._encoded(lookup, call_stats), self.cache, call_stats)
        if stats is None:
            _warn_truncated(call_stats, self.model.tokenizer.max_length)
        return encodings

    def _looked_up(self, sentences: list[str], stats: EncodeStats) -> _Lookup:
        """The distinct sentences, those the cache holds, and the others tokenized (timed in `stats`)."""
        unique, positions = distinct(sentences)
        encodings = np.empty((len(unique), self.model.encoding_dim), np.float32)
        hits, cached = self.cache.get_many(unique)
        if cached is not None:
            encodings[hits] = cached
        missing = np.setdiff1d(np.arange(len(unique)), hits, assume_unique=True)
        texts = [unique[i] for i in missing]
        with stats.timed("tokenize"):
            tokens = self.model.tokenizer.token_ids(texts)
        if (empty := np.flatnonzero(tokens.lengths == 0)).size:
            raise ValueError(f"sentence {texts[empty[0]]!r} is empty after normalization")
        return _Lookup(positions, encodings, missing, texts, tokens)

    def _encoded(self, lookup: _Lookup, stats: EncodeStats) -> np.ndarray:
        """The encodings of the lookup's misses; may run on a thread of its own (only its 'encode' time is
        added to `stats`)."""
        if not lookup.texts:
            return np.empty((0, self.model.encoding_dim), np.float32)
        with stats.timed("encode"):
            encodings = self.encoder.run(lookup.tokens)
        if not (finite := np.isfinite(encodings).all(axis=1)).all():
            raise ModelOutputError(f"{self.model.encoder_path(self.precision)}: encodes "
                                   f"{lookup.texts[int(np.argmin(finite))]!r} to numbers that are not finite; the "
                                   "model is broken (its probe at load passed): no score is written")
        return encodings


class _Pending(NamedTuple, Generic[T]):
    """A chunk whose encoder run is under way: its tag and texts, its lookup, and the run's future."""

    tag: T
    left: list[str]
    right: list[str]
    lookup: _Lookup
    encoded: Future[np.ndarray]


@dataclass(frozen=True)
class _Lookup:
    """One call's sentences against the cache: where each sits among the distinct ones, their encodings so far
    (the cached ones filled), and the misses' positions, texts and token ids."""

    positions: np.ndarray
    encodings: np.ndarray
    missing: np.ndarray
    texts: list[str]
    tokens: TokenIds

    def filled(self, encoded: np.ndarray, cache: EncodingCache, stats: EncodeStats) -> np.ndarray:
        """Every sentence's encoding in input order, the misses' `encoded` put in `cache` and counted in `stats`
        (a chunk's count is in once its scores are: a job's checkpoint counts the chunks it wrote)."""
        stats.encoded += len(self.texts)
        stats.truncated += self.tokens.truncated
        if self.texts:
            self.encodings[self.missing] = encoded
            cache.put_many(self.texts, encoded, distinct=True)  # misses among distinct sentences
        return self.encodings[self.positions]


def _warn_truncated(stats: EncodeStats, max_length: int) -> None:
    if stats.truncated:
        log.warning("%d sentences longer than max_length %d were truncated", stats.truncated, max_length)
