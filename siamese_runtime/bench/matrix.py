"""Runtime benchmark: latency, throughput, session time and peak RSS of `Scorer.score` per configuration.

A row is one execution provider x precision x CPU thread count x length profile x batch size (pairs per
`score` call). Providers and precisions that cannot run here are skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import InputError, ProviderUnavailableError, SiameseRuntimeError
from ..model_folder import ModelFolder
from ..providers import CPU, CUDA, DIRECTML, OPENVINO, TENSORRT
from ..scorer import Scorer
from ..session import default_threads
from ..settings import PRECISIONS, ScorerSettings
from .machine import machine_info
from .pair_files import file_label, read_pair_rows
from .profile import profile_scoring

SCHEMA_ID = "siamese-runtime-bench/1"
PROVIDERS = (CPU, CUDA, TENSORRT, OPENVINO, DIRECTML)
BATCH_SIZES = (1, 8, 32, 128, 512)
FIXED_LENGTHS = (8, 32, 128)
REAL = "real"
NOISY_LOAD = 0.25  # load average per core before a run above which its ratios are flagged
NOISY_SPREAD = 0.25  # interquartile range over median of one row's timings above which it is flagged
Pair = tuple[str, str]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure; `quick()` gives the seconds-long CI variant."""

    model: str | None = None
    pairs_file: str | None = None
    providers: tuple[str, ...] = ()  # empty: every provider of PROVIDERS this onnxruntime build offers
    precisions: tuple[str, ...] = PRECISIONS
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    fixed_lengths: tuple[int, ...] = FIXED_LENGTHS
    threads: tuple[int, ...] = ()  # CPU intra-op thread counts; empty: the runtime's default
    warmup: int = 3
    repeats: int = 30
    seed: int = 0
    op_profile: bool = False  # also profile the first configuration on the whole pairs file
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides: Any) -> BenchConfig:
        settings = {"batch_sizes": (1, 8), "fixed_lengths": (8,), "warmup": 1, "repeats": 3, "quick": True}
        return cls(**{**settings, **overrides})


@dataclass(frozen=True)
class LengthProfile:
    """Where a profile's sentences come from: a data file's pairs, or random text of a fixed length."""

    name: str
    pairs: list[Pair] = field(repr=False)


@dataclass
class Variant:
    """One session: provider, precision and threads, with how long creating it took."""

    provider: str
    precision: str
    threads: int | None
    session_seconds: float


def run_bench(config: BenchConfig) -> dict[str, Any]:
    """Measure every configuration; the report is a JSON-ready dict (see report.schema.json)."""
    model = ModelFolder.load(config.model)
    machine = machine_info()  # its load average before the run, too
    skipped: list[dict[str, str]] = []
    profiles = _profiles(model, config, skipped)
    rows: list[dict[str, Any]] = []
    op_profile: dict[str, Any] | None = None
    for provider, precision, threads in _variants(model, config, skipped):
        started = time.perf_counter()
        try:
            # cache off: batches repeat their pairs, and cached encodings would be timed as free
            scorer = Scorer.from_settings(ScorerSettings(
                model=model, providers=_provider_list(provider), precision=precision, intra_op_num_threads=threads,
                cache_size=0))
        except SiameseRuntimeError as error:
            skipped.append({"provider": provider, "precision": precision, "reason": str(error)})
            continue
        variant = Variant(provider, precision, threads, time.perf_counter() - started)
        for length_profile in profiles:
            for batch_size in config.batch_sizes:
                rows.append(_measure(scorer, variant, length_profile, batch_size, config))
        if config.op_profile and op_profile is None and config.pairs_file:
            pairs = profiles[0].pairs
            op_profile = {**asdict(variant), **profile_scoring(scorer, [p[0] for p in pairs], [p[1] for p in pairs])}
    if not rows:
        why = [f"{skip['provider']} / {skip['precision']}: {skip['reason']}"
               for skip in skipped if skip["provider"] != "*"]
        raise ProviderUnavailableError(f"nothing could be measured: {'; '.join(why)}")
    return {
        "schema": SCHEMA_ID,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "model": {"path": str(model.path), "name": model.name, "max_length": model.tokenizer.max_length},
        "config": asdict(config),
        "rows": rows,
        "skipped": skipped,
        "op_profile": op_profile,
        "warnings": noise_warnings(rows, machine["load_average"], machine["logical_cores"]),
    }


def _variants(
    model: ModelFolder, config: BenchConfig, skipped: list[dict[str, str]]
) -> Iterator[tuple[str, str, int | None]]:
    available = ort.get_available_providers()
    for provider in config.providers or [p for p in PROVIDERS if p in available]:
        if provider not in available:
            skipped.append({"provider": provider, "precision": "*", "reason": "not in this onnxruntime build"})
            continue
        for precision in config.precisions:
            try:
                model.encoder_path(precision)
            except SiameseRuntimeError as error:
                skipped.append({"provider": provider, "precision": precision, "reason": str(error)})
                continue
            for threads in (config.threads or (default_threads(),)) if provider == CPU else (None,):
                yield provider, precision, threads


def _provider_list(provider: str) -> list[str]:
    """The provider first, CPU behind it for the ops it lacks (create_session fails if the first one cannot start)."""
    return [provider] if provider == CPU else [provider, CPU]


def _profiles(model: ModelFolder, config: BenchConfig, skipped: list[dict[str, str]]) -> list[LengthProfile]:
    profiles = []
    if config.pairs_file:
        pairs = [(row.columns[0], row.columns[1]) for row in read_pair_rows(config.pairs_file)]
        if not pairs:
            raise InputError(f"{config.pairs_file}: no pairs to measure (an empty file)")
        profiles.append(LengthProfile(f"{REAL}:{file_label(config.pairs_file)}", pairs))
    else:
        skipped.append({"provider": "*", "precision": "*",
                        "reason": "no pairs file given: real-length profile skipped"})
    needed = (config.warmup + config.repeats) * max(config.batch_sizes)
    for length in config.fixed_lengths:
        profiles.append(LengthProfile(f"fixed:{length}", random_pairs(model, length, needed, config.seed + length)))
    return profiles


def random_pairs(model: ModelFolder, length: int, count: int, seed: int) -> list[Pair]:
    """`count` pairs of distinct random sentences of `length` characters from the model's vocabulary."""
    alphabet = [t for t in model.tokenizer.tokens[2:] if len(t) == 1 and not t.isspace()]
    chooser = random.Random(seed)
    sentences = ["".join(chooser.choices(alphabet, k=length)) for _ in range(2 * count)]
    return list(zip(sentences[::2], sentences[1::2]))


def _batches(pairs: list[Pair], batch_size: int, count: int) -> Iterator[list[Pair]]:
    """`count` consecutive batches, wrapping around the pairs."""
    for index in range(count):
        start = index * batch_size
        yield [pairs[(start + offset) % len(pairs)] for offset in range(batch_size)]


def _measure(
    scorer: Scorer, variant: Variant, profile: LengthProfile, batch_size: int, config: BenchConfig
) -> dict[str, Any]:
    batches = list(_batches(profile.pairs, batch_size, config.warmup + config.repeats))
    tokenize = scorer.model.tokenizer.ids_batch
    tokens = [len(ids) for batch in batches for ids in tokenize(s for pair in batch for s in pair)[0]]
    peak_scope = _reset_peak_rss()
    latencies = []
    for index, batch in enumerate(batches):
        left, right = [p[0] for p in batch], [p[1] for p in batch]
        started = time.perf_counter()
        scorer.score(left, right)
        if index >= config.warmup:
            latencies.append(time.perf_counter() - started)
    milliseconds = np.asarray(latencies) * 1e3
    quartiles = np.percentile(milliseconds, [25, 50, 75])
    return {
        **asdict(variant),
        "profile": profile.name,
        "batch_size": batch_size,
        "mean_tokens": float(np.mean(tokens)),
        "repeats": len(latencies),
        "latency_ms": latency_percentiles(milliseconds),
        "spread": float((quartiles[2] - quartiles[0]) / quartiles[1]),
        "pairs_per_second": batch_size * len(latencies) / float(np.sum(latencies)),
        "peak_rss_mib": _peak_rss_kib() / 1024,
        "peak_rss_scope": peak_scope,
    }


def latency_percentiles(milliseconds: np.ndarray) -> dict[str, float | None]:
    """p50 always; p90 and p99 only from a sample that has a value beyond them (10 and 100 timings), else None:
    the p99 of 3 timings would be their maximum under another name."""
    return {f"p{q}": float(np.percentile(milliseconds, q)) if len(milliseconds) >= needed else None
            for q, needed in ((50, 1), (90, 10), (99, 100))}


def noise_warnings(rows: list[dict[str, Any]], load_average: float, cores: int) -> list[str]:
    """What makes a report's ratios doubtful: a machine busy before the run (its 1-minute load average per
    core above NOISY_LOAD), and rows whose timings vary more than NOISY_SPREAD between repeats."""
    warnings = []
    if load_average > NOISY_LOAD * cores:
        warnings.append(f"the machine was busy: load average {load_average:.2f} over {cores} cores before the run; "
                        "other work shares the cores, so ratios may be noise")
    if noisy := [row for row in rows if row["spread"] > NOISY_SPREAD]:
        worst = max(noisy, key=lambda row: row["spread"])
        warnings.append(f"{len(noisy)} of {len(rows)} rows vary by more than {NOISY_SPREAD:.0%} between repeats "
                        f"(interquartile range over median; worst {worst['spread']:.0%}: {_row_name(worst)}); "
                        "repeat them before comparing")
    return warnings


def _row_name(row: dict[str, Any]) -> str:
    return (f"{row['provider'].removesuffix('ExecutionProvider')} {row['precision']} {row['profile']} "
            f"batch {row['batch_size']}")


def _reset_peak_rss() -> str:
    """Reset the kernel's peak-RSS mark so the next reading covers one row ('row'); else it is the process's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "row"
    except OSError:
        return "process"


def _peak_rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
