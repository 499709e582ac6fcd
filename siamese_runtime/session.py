"""onnxruntime sessions: which execution providers run, checked before and after creation."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from .cores import affinity_cores, usable_cores
from .errors import ModelLoadError, ProviderUnavailableError
from .providers import BUILDS, CPU, INSTALL_SECTION, ProviderSpec, provider, provider_name

log = logging.getLogger(__name__)


def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries that `./gpu[cuda]` installs as Python packages (onnxruntime-gpu's
    preload_dlls), so that a GPU user needs no system CUDA toolkit; a build without it, or libraries found
    elsewhere, leave the search to the system as before."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):  # it prints what it misses: never into a job's stdout output
            preload()
    except Exception as error:  # noqa: BLE001 (a missing package only means the system's libraries are used)
        log.info("could not preload CUDA libraries from Python packages (%s); using the system's", error)
    if said.getvalue().strip():
        log.info("preloading CUDA libraries: %s", " ".join(said.getvalue().split()))


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
    """Warn when several onnxruntime builds (onnxruntime, -gpu, -openvino, ...) are installed: they overwrite
    each other's module."""
    found = installed_onnxruntime_distributions()
    if len(found) > 1:
        warnings.warn(
            f"{len(found)} onnxruntime builds are installed ({', '.join(found)}); they share one module and "
            "whichever was installed last wins, so a provider may be silently missing. Fix: uninstall them all "
            f"(pip uninstall -y {' '.join(sorted({*found, *BUILDS}))}), then install the one distribution wanted "
            f"from a checkout of siamese-runtime: pip install . (CPU), ./gpu (CUDA) or ./openvino (OpenVINO) "
            f"({INSTALL_SECTION})",
            RuntimeWarning,
            stacklevel=3,
        )


def default_threads() -> int:
    """One per physical core this process may use: the affinity mask's CPUs (half of them where SMT is on), at
    most the cgroup CPU quota; at least one."""
    physical = affinity_cores() // 2 if _has_smt() else affinity_cores()
    return max(1, min(physical, usable_cores()))


def _has_smt() -> bool:
    try:
        return Path("/sys/devices/system/cpu/smt/active").read_text().strip() == "1"
    except OSError:
        return False


def onnxruntime_log_severity() -> int:
    """What onnxruntime itself logs: its warnings where this runtime logs details (`-v`: this logger at INFO),
    else nothing below fatal, since each error it would print reaches the caller as the runtime's own one-line
    error (a provider that cannot start, a model that cannot load)."""
    return 2 if log.isEnabledFor(logging.INFO) else 4


def default_session_options(intra_op_num_threads: int | None = None) -> ort.SessionOptions:
    """The runtime's defaults: one thread per physical core (or as given), one inter-op thread, quiet logs."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads or default_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = onnxruntime_log_severity()
    return options


def new_session(
    model: Path | bytes, providers: Sequence[ProviderSpec] = (CPU,), options: ort.SessionOptions | None = None
) -> ort.InferenceSession:
    """The one place the project creates an onnxruntime session (runtime, profiling, benchmarks, export):
    `model` a file or serialized bytes, onnxruntime's own provider specs and SessionOptions (default:
    default_session_options()). A model onnxruntime cannot load is a ModelLoadError naming the file."""
    return _create_session(model, providers, options)[0]


def _create_session(
    model: Path | bytes, providers: Sequence[ProviderSpec], options: ort.SessionOptions | None,
    name: str | None = None,
) -> tuple[ort.InferenceSession, str]:
    """new_session, with what onnxruntime printed while creating it: a GPU build whose provider fails to start
    prints the reason ("EP Error ...") to stdout and falls back to CPU. Captured, so that it never lands in a
    job's `-o -` output, and returned, so that the caller can say why. Only where a provider other than CPU is
    asked for: capturing swaps sys.stdout for every thread, and CPU sessions open while jobs write."""
    source = model if isinstance(model, bytes) else str(model)
    said = io.StringIO()
    capture = any(provider_name(spec) != CPU for spec in providers)
    try:
        options = options or default_session_options()
        ort.set_default_logger_severity(onnxruntime_log_severity())  # the process-wide logger: provider libraries
        with contextlib.redirect_stdout(said) if capture else contextlib.nullcontext():
            session = ort.InferenceSession(source, sess_options=options, providers=list(providers))
    except Exception as error:  # onnxruntime raises several unrelated types for unreadable models
        name = name or ("the serialized model" if isinstance(model, bytes) else str(model))
        raise ModelLoadError(f"{name}: onnxruntime cannot load it: {error}") from None
    reason = " ".join(line for line in said.getvalue().split("\n") if line.strip() and not line.startswith("*"))
    if reason:
        log.info("onnxruntime said while creating the session: %s", reason)
    return session, reason


def open_session(
    model: Path | bytes, requested: Sequence[ProviderSpec], options: ort.SessionOptions, strict: bool,
    name: str | None = None,
) -> ort.InferenceSession:
    """A session on resolved providers, of a model file or its bytes (`name`: the file they were read from, for
    messages); `strict`: the first provider must really run (onnxruntime would otherwise fall back to CPU
    silently)."""
    check_single_onnxruntime()
    first = provider_name(requested[0])
    record = provider(first)
    if record.needs_cuda_libraries:
        _preload_cuda_libraries()
    session, said = _create_session(model, requested, options, name)
    running = session.get_providers()
    if first not in running and strict:
        device = requested[0][1].get("device_id") if isinstance(requested[0], tuple) else None
        what = f"{first} on GPU {device}" if device is not None else first
        why = f"onnxruntime said: {said}" if said else record.fallback_cause
        fix = f" Fix: {record.start_fix}" if record.start_fix else ""
        if device is not None:
            fix = f" GPUs are numbered from 0: is there a GPU {device} on this machine?{fix}"
        raise ProviderUnavailableError(f"{what} was requested but onnxruntime fell back to {', '.join(running)} "
                                       f"({why}).{fix}")
    if first not in running:
        log.warning("provider %s could not start; running on %s%s", first, ", ".join(running),
                    f" (onnxruntime said: {said})" if said else "")
    return session
