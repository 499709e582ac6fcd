"""onnxruntime sessions: which execution providers run, checked before and after creation."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import onnxruntime as ort

from .errors import ModelLoadError, ProviderUnavailableError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
ALIASES = {"cpu": [CPU], "cuda": [CUDA, CPU]}
ProviderSpec = Union[str, tuple[str, dict[str, Any]]]  # noqa: UP007 (a runtime alias: X | Y needs Python 3.10's types)
GPU_FIX = (
    "install the GPU build alone: pip uninstall -y onnxruntime onnxruntime-gpu && "
    "pip install ./gpu from a checkout of siamese-runtime (see the README, 'Installing: CPU or GPU')"
)


def installed_onnxruntime_distributions() -> list[str]:
    """Names of the installed distributions that provide the `onnxruntime` module (onnxruntime, -gpu,
    -openvino, -directml, ...): their metadata folders beside the imported module, read without
    importlib.metadata (a tenth of the start-up it would cost)."""
    site = Path(ort.__file__).resolve().parent.parent
    return sorted(
        info.name.split("-")[0].replace("_", "-").lower()
        for info in site.glob("onnxruntime*.dist-info")
        if _provides_onnxruntime(info)
    )


def _provides_onnxruntime(info: Path) -> bool:
    top_level = info / "top_level.txt"
    if top_level.is_file():
        return "onnxruntime" in top_level.read_text(encoding="utf-8").split()
    record = info / "RECORD"
    return record.is_file() and any(line.startswith("onnxruntime/") for line in record.open(encoding="utf-8"))


def check_single_onnxruntime() -> None:
    """Warn when both onnxruntime and onnxruntime-gpu are installed: they overwrite each other."""
    found = installed_onnxruntime_distributions()
    if len(found) > 1:
        warnings.warn(
            "both onnxruntime and onnxruntime-gpu are installed; they share one module and whichever was "
            f"installed last wins, so CUDA may be silently missing. Fix: {GPU_FIX}",
            RuntimeWarning,
            stacklevel=3,
        )


def resolve_providers(request: str | Sequence[ProviderSpec]) -> list[ProviderSpec]:
    """Turn 'auto' | 'cpu' | 'cuda' | an explicit list into providers for InferenceSession.

    An explicit request that this onnxruntime build cannot run raises ProviderUnavailableError;
    'auto' takes CUDA when the build has it and otherwise CPU, and logs why.
    """
    available = ort.get_available_providers()
    if request == "auto":
        if CUDA in available:
            log.info("provider auto: CUDA is available in this onnxruntime build, using it")
            return [CUDA, CPU]
        log.info("provider auto: this onnxruntime build has no CUDA (%s), using CPU", ", ".join(available))
        return [CPU]
    if isinstance(request, str):
        if request not in ALIASES:
            raise ProviderUnavailableError(
                f"unknown provider {request!r}; use auto, cpu, cuda or a list of onnxruntime provider names"
            )
        requested: list[ProviderSpec] = list(ALIASES[request])
    else:
        requested = list(request)
    for spec in requested:
        name = spec if isinstance(spec, str) else spec[0]
        if name not in available:
            hint = f" Fix: {GPU_FIX}" if name == CUDA else ""
            raise ProviderUnavailableError(
                f"{name} was requested but this onnxruntime build offers only {', '.join(available)}.{hint}"
            )
    return requested


def default_threads() -> int:
    """Physical cores where known (half the logical ones), at least one."""
    return max(1, (os.cpu_count() or 2) // 2) if _has_smt() else max(1, os.cpu_count() or 1)


def _has_smt() -> bool:
    try:
        return Path("/sys/devices/system/cpu/smt/active").read_text().strip() == "1"
    except OSError:
        return False


def default_session_options(intra_op_num_threads: int | None = None) -> ort.SessionOptions:
    """The runtime's defaults: one thread per physical core (or as given), one inter-op thread, quiet logs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return options


def new_session(
    model: Path | bytes, providers: Sequence[ProviderSpec] = (CPU,), options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """The one place the project creates an onnxruntime session (runtime, profiling, benchmarks, export):
    `model` a file or serialized bytes, onnxruntime's own provider specs and SessionOptions (default:
    default_session_options()). A model onnxruntime cannot load is a ModelLoadError naming the file."""
    source = model if isinstance(model, bytes) else str(model)
    try:
        options = options or default_session_options()
        return ort.InferenceSession(source, sess_options=options, providers=list(providers))
    except Exception as error:  # onnxruntime raises several unrelated types for unreadable models
        name = "the serialized model" if isinstance(model, bytes) else str(model)
        raise ModelLoadError(f"{name}: onnxruntime cannot load it: {error}") from None


def provider_name(spec: ProviderSpec) -> str:
    return spec if isinstance(spec, str) else spec[0]


def open_session(
    model_path: Path, requested: Sequence[ProviderSpec], options: ort.SessionOptions, strict: bool
) -> ort.InferenceSession:
    """A session on resolved providers; `strict`: the first provider must really run (onnxruntime would
    otherwise fall back to CPU silently)."""
    check_single_onnxruntime()
    session = new_session(model_path, requested, options)
    first = provider_name(requested[0])
    running = session.get_providers()
    if first not in running and strict:
        raise ProviderUnavailableError(
            f"{first} was requested but onnxruntime fell back to {', '.join(running)} "
            f"(driver, CUDA or cuDNN libraries missing?). Fix: {GPU_FIX}"
        )
    if first not in running:
        log.warning("provider %s could not start; running on %s", first, ", ".join(running))
    return session
