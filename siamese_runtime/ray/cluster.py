"""The Ray cluster a job runs on: the optional import, connecting, and shutting down what was started here."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from ..errors import MissingExtraError, UsageError

# Ray counts a file's read task as one input and warns that one input cannot feed several actors; but each
# read task streams many blocks, which do.
ONE_INPUT_WARNING = "The minimum number of concurrent actors"
log = logging.getLogger(__name__)


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


def started_here(address: str | None) -> bool:
    """Whether connecting to `address` starts a new local cluster (no address, nor RAY_ADDRESS)."""
    return address is None and not os.environ.get("RAY_ADDRESS")


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
    local = started_here(address)
    ray.init(address=address, logging_level=logging.WARNING, **({"include_dashboard": False} if local else {}))
    try:
        yield
    finally:
        ray.shutdown()


def check_resources(address: str | None, actors: int, num_cpus: float, num_gpus: float) -> None:
    """Actors that no node of the connected cluster could hold (more GPUs or CPUs each than its largest node has):
    refused on a local cluster started here, where Ray would wait for such a node for ever, saying so only in its
    autoscaler's log; a warning on a cluster at an address, whose autoscaler may still add one."""
    ray = require_ray()
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    for name, wanted in (("GPU", num_gpus), ("CPU", num_cpus)):
        most = max((node.get(name, 0) for node in nodes), default=0)
        if wanted > most:
            why = (f"each of the {actors} actors asks for {wanted:g} {name}s, and no node of the cluster has "
                   f"{'any' if not most else f'more than {most:g}'}")
            if started_here(address):
                raise UsageError(f"{why}; ask for fewer (--{name.lower()}s-per-actor)")
            log.warning("%s yet: the job waits until the cluster's autoscaler adds such a node", why)


def quiet_ray_data() -> None:
    """Ray Data's log of each plan and its progress, and its one-input warning, off for this process."""
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", ONE_INPUT_WARNING)
