"""What a Scorer is built from, as one frozen value: the API, the command line, Ray's actors and the benchmarks
each make one and hand it on, so no layer rebuilds a Scorer's arguments by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .inputs import int_at_least
from .providers import ProviderSpec

if TYPE_CHECKING:
    import onnxruntime as ort

    from .model_folder import ModelFolder

AUTO = "auto"


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
        for name in ("intra_op_num_threads", "batch_size", "token_budget"):
            if (value := getattr(self, name)) is not None:
                object.__setattr__(self, name, int_at_least(value, name))
        object.__setattr__(self, "cache_size", int_at_least(self.cache_size, "cache_size", minimum=0))

    def arguments(self) -> dict[str, Any]:
        """The settings as `Scorer`'s keyword arguments."""
        return {field.name: getattr(self, field.name) for field in fields(self)}
