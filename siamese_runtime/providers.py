"""Execution providers: one record per provider the runtime knows (its aliases, the runtime's default options,
whether it is a GPU, its batch defaults, how to get it and how to fix it), and requests resolved against them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import onnxruntime as ort

from .errors import ProviderUnavailableError, UnknownProviderError

log = logging.getLogger(__name__)

PROVIDER_SUFFIX = "ExecutionProvider"  # every onnxruntime provider name ends so
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
OPENVINO = "OpenVINOExecutionProvider"
DIRECTML = "DmlExecutionProvider"
ProviderSpec = Union[str, tuple[str, dict[str, Any]]]  # noqa: UP007 (a runtime alias: X | Y needs Python 3.10's types)
# The onnxruntime distributions this project's three distributions depend on: they share one module.
BUILDS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino")
INSTALL_SECTION = "see docs/install.md"
BATCH_SIZE = 256
TOKEN_BUDGET = 8192
# A GPU runs an LSTM's time steps one after another whatever the batch, so GPU providers take bigger runs: on an
# H200, encoding the official test files' sentences ran 1.63x faster in runs of 1,024 than of 256, and runs of 4,096
# and 16,384 were slower again (they pad more; benchmarks/results/cuda-h200/sweep).
GPU_BATCH_SIZE = 1024
GPU_TOKEN_BUDGET = GPU_BATCH_SIZE * 64
CUDA_START_FIX = ("a driver for the GPU, and the CUDA and cuDNN libraries onnxruntime-gpu was built for: "
                  "pip install './gpu[cuda]' installs the libraries from the package index (the runtime preloads "
                  "them), or install a CUDA toolkit and cuDNN system-wide")


def install_fix(folder: str, build: str) -> str:
    """How to get the `build` distribution alone: every onnxruntime build out, then the one wanted."""
    return (f"install the {build} build alone: pip uninstall -y {' '.join(BUILDS)} && pip install {folder} "
            f"from a checkout of siamese-runtime ({INSTALL_SECTION})")


@dataclass(frozen=True)
class Provider:
    """What the runtime knows of one execution provider."""

    name: str
    aliases: tuple[str, ...] = ()  # what `providers=` and --provider take for it (a GPU's with CPU after it)
    numbered: bool = False  # its aliases also take ':N', GPU number N
    gpu: bool = False  # native fp16 LSTMs, GPU-sized runs, a GPU per Ray actor
    needs_cuda_libraries: bool = False  # preload the CUDA and cuDNN libraries that './gpu[cuda]' installs
    # Options the runtime gives it unless the caller's own say otherwise.
    default_options: dict[str, str] = field(default_factory=dict)
    install_fix: str | None = None  # how to get an onnxruntime build that has it
    fallback_cause: str = "its libraries missing, or an option it refused?"  # why it may fail to start
    start_fix: str | None = None  # what to install when it fails to start

    @property
    def batch_size(self) -> int:
        """Most sentences per encoder run by default."""
        return GPU_BATCH_SIZE if self.gpu else BATCH_SIZE

    @property
    def token_budget(self) -> int:
        """Most padded tokens per encoder run by default (a longer sentence runs alone)."""
        return GPU_TOKEN_BUDGET if self.gpu else TOKEN_BUDGET


KNOWN = {provider.name: provider for provider in (
    Provider(CPU, aliases=("cpu",)),
    # No TF32 in fp32 models, which onnxruntime otherwise allows (on an H200 it moved scores by up to 3.6e-4).
    Provider(CUDA, aliases=("cuda",), numbered=True, gpu=True, needs_cuda_libraries=True,
             default_options={"use_tf32": "0"}, install_fix=install_fix("./gpu", "GPU"),
             fallback_cause="driver, CUDA or cuDNN libraries missing?", start_fix=CUDA_START_FIX),
    Provider(TENSORRT, gpu=True, needs_cuda_libraries=True,
             fallback_cause="driver, CUDA, cuDNN or TensorRT libraries missing?", start_fix=CUDA_START_FIX),
    # fp32 inference, so that its scores match the CPU provider's (within 1e-4) whatever precision a build or
    # device would default to; CPU-class for `auto` (its distribution ships no fp16 encoder).
    Provider(OPENVINO, aliases=("openvino",), default_options={"precision": "FP32"},
             install_fix=install_fix("./openvino", "OpenVINO"),
             fallback_cause="an OpenVINO option it refused, or a device it cannot open? onnxruntime's log says which"),
    Provider(DIRECTML, gpu=True),
)}


def provider(name: str) -> Provider:
    """The record of onnxruntime's provider `name`; one the runtime does not know is CPU-class, with no defaults."""
    return KNOWN.get(name) or Provider(name)


def provider_name(spec: ProviderSpec) -> str:
    return spec if isinstance(spec, str) else spec[0]


def is_gpu_request(request: str | Sequence[ProviderSpec]) -> bool:
    """Whether a request's first provider is a GPU (cuda, cuda:N, CUDAExecutionProvider, ...), without
    resolving it against this build: a Ray job reserves GPUs for actors that may run elsewhere."""
    if request == "auto":
        return False
    return provider(provider_name(requested_specs(request)[0])).gpu


def resolve_providers(request: str | Sequence[ProviderSpec]) -> list[ProviderSpec]:
    """Turn 'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'openvino' | an explicit list into providers for InferenceSession.

    An explicit request that this onnxruntime build cannot run raises ProviderUnavailableError;
    'auto' takes CUDA when the build has it and otherwise CPU, and logs why. Each provider gets its record's
    default options under the caller's own (an explicit list's options are passed through).
    """
    available = ort.get_available_providers()
    if request == "auto":
        if CUDA in available:
            log.info("provider auto: CUDA is available in this onnxruntime build, using it")
            return [with_default_options(CUDA), CPU]
        log.info("provider auto: this onnxruntime build has no CUDA (%s), using CPU", ", ".join(available))
        return [CPU]
    requested = requested_specs(request)
    for spec in requested:
        name = provider_name(spec)
        if name not in available:
            fix = provider(name).install_fix
            raise ProviderUnavailableError(
                f"{name} was requested but this onnxruntime build offers only {', '.join(available)}."
                + (f" Fix: {fix}" if fix else "")
            )
    return [with_default_options(spec) for spec in requested]


def checked_request(request: object) -> str | tuple[ProviderSpec, ...]:
    """A request as the runtime keeps it, checked without this build: 'auto' (None is 'auto'), text naming known
    providers, or a non-empty list of providers (names, aliases, or (name, options) pairs) as onnxruntime names."""
    if request is None or request == "auto":
        return "auto"
    specs = requested_specs(request)
    return request if isinstance(request, str) else tuple(specs)


def requested_specs(request: object) -> list[ProviderSpec]:
    """An explicit request's providers as onnxruntime names them, each once (UnknownProviderError otherwise)."""
    if isinstance(request, str):
        specs: list[ProviderSpec] = _from_text(request)
    elif isinstance(request, Sequence) and not isinstance(request, (bytes, bytearray)) and request:
        specs = [_spec(item) for item in request]
    else:
        raise UnknownProviderError(f"providers {request!r}: give 'auto', an alias such as 'cpu' or 'cuda:1', or a "
                                   "non-empty list of onnxruntime provider names or (name, options) pairs")
    names = [provider_name(spec) for spec in specs]
    if twice := next((name for i, name in enumerate(names) if name in names[:i]), None):
        raise UnknownProviderError(f"{twice} is requested twice in {request!r}; name each provider once")
    if remote := next((name for name in names if name in REMOTE), None):
        raise UnknownProviderError(f"{remote} computes nothing on this machine (it sends a model's inputs to a "
                                   "remote endpoint), so it cannot run this model; use auto, cpu, cuda or openvino")
    return specs


REMOTE = ("AzureExecutionProvider",)  # in every onnxruntime build's list, but it runs no model here


def _spec(item: object) -> ProviderSpec:
    """One item of a provider list as onnxruntime names it: a name or alias, or (name or alias, options)."""
    if isinstance(item, str):
        return item if item.endswith(PROVIDER_SUFFIX) else _alias(item)[0]
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], dict):
        name = _spec(item[0])
        return provider_name(name), {**(name[1] if isinstance(name, tuple) else {}), **item[1]}
    raise UnknownProviderError(f"provider {item!r}: expected a name such as 'cpu' or 'CUDAExecutionProvider', or a "
                               "(name, options) pair")


def _from_text(request: str) -> list[ProviderSpec]:
    """One alias (a GPU's with CPU after it), or a comma-separated list of onnxruntime provider names and
    aliases, in that order: 'cuda', 'CUDAExecutionProvider,CPUExecutionProvider', 'openvino,cpu'."""
    items = [item.strip() for item in request.split(",")]
    if len(items) > 1 and "auto" in items:
        raise UnknownProviderError(f"providers {request!r}: auto chooses the providers itself, so it stands alone")
    if len(items) == 1 and not items[0].endswith(PROVIDER_SUFFIX):
        return _alias(items[0])
    return [_spec(item) for item in items]


def _alias(request: str) -> list[ProviderSpec]:
    """'cpu' | 'cuda' | 'cuda:N' (GPU number N) | 'openvino' as provider specs, each GPU with CPU after it."""
    name, colon, device = request.partition(":")
    for known in KNOWN.values():
        if name in known.aliases and (not colon or known.numbered and device.isdigit()):
            first: ProviderSpec = (known.name, {"device_id": int(device)}) if colon else known.name
            return [first] if known.name == CPU else [first, CPU]
    aliases = [f"{alias}, {alias}:N (GPU number N)" if known.numbered else alias
               for known in KNOWN.values() for alias in known.aliases]
    raise UnknownProviderError(f"unknown provider {request!r}; use auto, {', '.join(aliases)} "
                               "or onnxruntime provider names, comma-separated")


def with_default_options(spec: ProviderSpec) -> ProviderSpec:
    """`spec` with its record's default options under the caller's own options."""
    defaults = provider(provider_name(spec)).default_options
    if not defaults:
        return spec
    return provider_name(spec), {**defaults, **(spec[1] if isinstance(spec, tuple) else {})}
