"""The model's encoder on onnxruntime: which encoder file runs on which provider, what happens when a provider
fails to start, the session checked against the manifest (its ports and a probe), the run sizes, and running
batches of token ids."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .batching import length_batches, run_concurrently
from .errors import ModelLoadError
from .model_folder import ModelFolder
from .precision import choose_precision
from .providers import CPU, ProviderSpec, provider, provider_name, resolve_providers
from .session import default_session_options, default_threads, open_session
from .settings import AUTO, ScorerSettings
from .tokenizer import OOV_ID, PAD_ID, TokenIds

log = logging.getLogger(__name__)
# With one batch per core at once (whole `score` command, 2 cores, paired runs): 64 sentences per run took
# 0.90x the time of 256 on BQ test and 0.96x on LCQMC test.
CONCURRENT_BATCH_SIZE = 64


class Encoder:
    """One model's encoder, opened on the providers `settings` ask for.

    `auto` precision follows the provider that really runs: where a GPU provider falls back to CPU, the encoder
    is reopened in the CPU's precision. On the CPU provider with the runtime's own session options, a call of
    several batches runs `threads` of them at once, each on one thread of a second session.
    """

    def __init__(self, model: ModelFolder, settings: ScorerSettings) -> None:
        self.model = model
        requested = resolve_providers(settings.providers)
        choice = choose_precision(settings.precision, provider_name(requested[0]), model)
        given = settings.session_options.intra_op_num_threads if settings.session_options is not None else 0
        self.threads = settings.intra_op_num_threads or given or default_threads()
        options = settings.session_options or default_session_options()
        options.intra_op_num_threads = self.threads
        self.session = self._open(choice.precision, requested, options, strict=settings.providers != AUTO)
        self._requested = requested
        running = self.session.get_providers()
        if settings.precision == AUTO and running[0] != provider_name(requested[0]):  # fell back
            fallback = choose_precision(AUTO, running[0], model)
            if fallback.precision != choice.precision:
                log.warning("%s could not start; reopening the encoder in %s for %s", provider_name(requested[0]),
                            fallback.precision, running[0])
                self.session = self._open(fallback.precision, running, options, strict=False)
                self._requested = list(running)
            choice = fallback
        self.precision, self.precision_reason = choice.precision, choice.reason
        check_encoder(self.session, model, self.precision)
        self.workers = self.threads if settings.session_options is None and self.providers[0] == CPU else 1
        record = provider(self.providers[0])
        self.batch_size = settings.batch_size or (CONCURRENT_BATCH_SIZE if self.workers > 1 else record.batch_size)
        self.token_budget = settings.token_budget or record.token_budget
        self._input_name = self.session.get_inputs()[0].name
        self._batch_session: ort.InferenceSession | None = None  # one thread per run, opened on first use
        self._batch_session_lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        """The execution providers the session actually runs on, in priority order."""
        return self.session.get_providers()

    @property
    def provider_options(self) -> dict[str, dict[str, Any]]:
        """Each running provider's options: those it was given (the runtime's defaults, such as OpenVINO's
        fp32 precision, under the caller's own), updated with those onnxruntime reports (OpenVINO reports none)."""
        given = {spec[0]: spec[1] for spec in self._requested if isinstance(spec, tuple)}
        reported = self.session.get_provider_options()
        return {name: {**given.get(name, {}), **reported.get(name, {})} for name in self.providers}

    def run(self, tokens: TokenIds) -> np.ndarray:
        """float32 [len(tokens), encoding_dim]: each sentence's encoding, in runs of similar length."""
        encodings = np.empty((len(tokens), self.model.encoding_dim), np.float32)
        batches = length_batches(tokens.lengths.tolist(), self.token_budget, self.batch_size)
        # one batch: every thread on it; several: one thread each, the longest first so none is left alone
        session = self.session if len(batches) == 1 or self.workers == 1 else self._one_thread_session()

        def encode_batch(batch: np.ndarray) -> None:
            encodings[batch] = session.run(None, {self._input_name: tokens.padded(batch)})[0]

        run_concurrently(encode_batch, batches[::-1], self.workers)
        return encodings

    def _one_thread_session(self) -> ort.InferenceSession:
        """A second session of the same encoder on one intra-op thread, for running batches at once; the CPU
        provider's own options, if the caller gave any, carry over."""
        with self._batch_session_lock:
            if self._batch_session is None:
                cpu = next((spec for spec in self._requested if provider_name(spec) == CPU), CPU)
                self._batch_session = self._open(self.precision, [cpu], default_session_options(1), strict=True)
            return self._batch_session

    def _open(
        self, precision: str, providers: Sequence[ProviderSpec], options: ort.SessionOptions, strict: bool
    ) -> ort.InferenceSession:
        """A session on the bytes of the `precision` encoder that were just checked, never on its path: what
        onnxruntime runs is what the checksum covered, even if the file changes after."""
        return open_session(self.model.encoder_bytes(precision), providers, options, strict,
                            name=str(self.model.encoder_path(precision)))


INPUT_TYPES = ("tensor(int32)",)  # what Tokenizer.pad makes and Scorer feeds
ENCODING_TYPES = ("tensor(float)", "tensor(float16)")
VERBS = {"input": "takes", "output": "gives"}


def check_encoder(session: ort.InferenceSession, model: ModelFolder, precision: str) -> None:
    """Raise ModelLoadError naming the encoder file unless the session takes one int32 [batch, length] input of any
    batch and length, gives one float [batch, encoding_dim] output (each named as the manifest lists them), and
    encodes a probe of two sentences, one holding the vocabulary's largest id, to finite numbers."""
    path = model.encoder_path(precision)
    token_ids = _only_port(path, "input", session.get_inputs(), model.encoder_inputs(precision), INPUT_TYPES)
    if any(isinstance(size, int) for size in token_ids.shape):
        raise ModelLoadError(f"{path}: input {token_ids.name} has the fixed shape {token_ids.shape}; the runtime feeds "
                             "batches of any size and length")
    _only_port(path, "output", session.get_outputs(), model.encoder_outputs(precision), ENCODING_TYPES)
    last_id = model.tokenizer.vocab_size - 1
    probe = model.tokenizer.pad([[last_id, PAD_ID], [OOV_ID]])  # what Scorer feeds: the same dtype, post-padded
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failure becomes the ModelLoadError below; onnxruntime need not log it too
    try:
        encoding = session.run(None, {token_ids.name: probe}, quiet)[0]
    except Exception as error:  # onnxruntime raises several unrelated types; Gather's out-of-range id is one
        raise ModelLoadError(
            f"{path}: fails on token id {last_id}, the largest of {model.vocab_file}, in a batch of 2: {error}"
        ) from None
    if list(encoding.shape) != [2, model.encoding_dim]:
        raise ModelLoadError(
            f"{path}: encodes 2 sentences to shape {list(encoding.shape)}, the manifest's encoding_dim is "
            f"{model.encoding_dim}"
        )
    if not np.isfinite(encoding).all():
        raise ModelLoadError(f"{path}: encodes sentences to numbers that are not finite")


def _only_port(path: Path, kind: str, ports: list[Any], listed: list[str] | None, types: tuple[str, ...]) -> Any:
    """The encoder's one input or output (onnxruntime's NodeArg), after checking it is the one the manifest lists,
    of one of `types` and of rank 2."""
    names = [port.name for port in ports]
    if len(ports) != 1 or (listed is not None and names != listed):
        raise ModelLoadError(f"{path}: {VERBS[kind]} {kind}s {', '.join(names)}; an encoder {VERBS[kind]} one: "
                             f"{', '.join(listed or [kind])}")
    if ports[0].type not in types or len(ports[0].shape) != 2:
        raise ModelLoadError(f"{path}: {kind} {names[0]} is {ports[0].type} of shape {ports[0].shape}; an encoder's "
                             f"{kind} is {' or '.join(types)} of rank 2")
    return ports[0]
