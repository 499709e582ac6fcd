"""What a Scorer is built from, as one frozen value: the API, the command line, Ray's actors and the benchmarks
each make one and hand it on, so no layer rebuilds a Scorer's arguments by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cores import usable_cores
from .inputs import int_at_least
from .providers import ProviderSpec, checked_request

if TYPE_CHECKING:
    import onnxruntime as ort

    from .model_folder import ModelFolder

AUTO = "auto"
PRECISIONS = ("fp32", "int8", "fp16")  # the encoder precisions a model folder may hold
MAX_THREADS_PER_CORE = 64  # each onnxruntime thread reserves memory: 100,000 threads exhausted 16 GB


@dataclass(frozen=True, kw_only=True)
class ScorerSettings:
    """A Scorer's settings, checked when made (see `Scorer` for what each means)."""

    model: str | Path | ModelFolder | None = None  # None: the embedded default model
    providers: str | Sequence[ProviderSpec] = AUTO
    precision: str = AUTO
    intra_op_num_threads: int | None = None  # None: the cores this process may use
    batch_size: int | None = None  # None: the provider's default
    token_budget: int | None = None  # None: the provider's default
    cache_size: int = 100_000  # 0: off
    session_options: ort.SessionOptions | None = None  # None: the runtime's own

    def __post_init__(self) -> None:
        object.__setattr__(self, "providers", checked_request(self.providers))
        if self.session_options is not None and not hasattr(self.session_options, "intra_op_num_threads"):
            raise TypeError("session_options must be an onnxruntime.SessionOptions, got "
                            f"{type(self.session_options).__name__}")
        for name in ("intra_op_num_threads", "batch_size", "token_budget"):
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, int_at_least(value, name))
        if self.intra_op_num_threads is not None and self.intra_op_num_threads > max_threads():
            raise ValueError(f"intra_op_num_threads {self.intra_op_num_threads} is more than {MAX_THREADS_PER_CORE} "
                             f"per core this process may use ({usable_cores()}): each thread reserves memory")
        if self.precision not in (AUTO, *PRECISIONS):
            raise ValueError(f"precision {self.precision!r}: expected one of {', '.join((AUTO, *PRECISIONS))}")
        object.__setattr__(self, "cache_size", int_at_least(self.cache_size, "cache_size", minimum=0))

    def arguments(self) -> dict[str, Any]:
        """The settings as `Scorer`'s keyword arguments."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def max_threads() -> int:
    """The most encoding threads a Scorer accepts here, oversubscribed or not."""
    return MAX_THREADS_PER_CORE * usable_cores()
