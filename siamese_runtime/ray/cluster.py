"""The Ray cluster a job runs on: the optional import, connecting, and shutting down what was started here."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ..errors import MissingExtraError

# Ray counts a file's read task as one input and warns that one input cannot feed several actors; but each
# read task streams many blocks, which do.
ONE_INPUT_WARNING = "The minimum number of concurrent actors"


def require_ray() -> ModuleType:
    """The `ray` module with Ray Data, or an error naming the extra that installs it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is a separate extra of ray)
    except ImportError:
        raise MissingExtraError(
            "the ray engine needs Ray Data, which is not installed: pip install 'siamese-runtime[ray]'"
        ) from None
    return ray


@contextmanager
def connected(address: str | None = None) -> Iterator[None]:
    """Ray initialised for the block: the cluster at `address` (else RAY_ADDRESS), else a new local one.

    A connection made here is closed after the block (a local cluster started here stops with it);
    one that was already open is left as it is.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield
        return
    local = address is None and not os.environ.get("RAY_ADDRESS")
    ray.init(address=address, logging_level=logging.WARNING, **({"include_dashboard": False} if local else {}))
    try:
        yield
    finally:
        ray.shutdown()


def quiet_ray_data() -> None:
    """Ray Data's log of each plan and its progress, and its one-input warning, off for this process."""
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", ONE_INPUT_WARNING)
