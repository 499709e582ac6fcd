"""The CPUs this process may use: its affinity mask, capped by any cgroup CPU quota.

In a container, os.cpu_count() and onnxruntime count the host's cores, not the quota (cf. onnxruntime issue #29510).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

_V1_CPU_MOUNTS = ("cpu,cpuacct", "cpu")


def usable_cores(
    cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
    proc_self_cgroup: str | os.PathLike = "/proc/self/cgroup",
) -> int:
    """The affinity mask's CPU count, capped by the smallest cgroup quota (rounded up to a whole CPU); at least 1."""
    quotas = [limit for limit in _cgroup_cpu_limits(Path(cgroup_root), Path(proc_self_cgroup)) if limit is not None]
    return max(1, min([affinity_cores(), *quotas]))


def affinity_cores() -> int:
    """The logical CPUs this process's affinity mask allows (os.cpu_count() where there is no mask)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cgroup_cpu_limits(root: Path, proc_self_cgroup: Path) -> Iterator[int | None]:
    """Each CPU quota file that applies to this process, in whole CPUs (None where a file sets no limit)."""
    for hierarchy, controllers, path in _cgroup_memberships(proc_self_cgroup):
        if hierarchy == "0" and not controllers:
            for folder in _folder_and_ancestors(root, path):
                yield _cpu_max_limit(folder / "cpu.max")
        elif "cpu" in controllers.split(","):
            for mount in _V1_CPU_MOUNTS:
                for folder in _folder_and_ancestors(root / mount, path):
                    yield _cfs_limit(folder)


def _cgroup_memberships(proc_self_cgroup: Path) -> list[tuple[str, str, str]]:
    """(hierarchy id, controllers, path) for each `4:cpu,cpuacct:/docker/abc` or `0::/path` line."""
    memberships = []
    for line in _read_text(proc_self_cgroup).splitlines():
        fields = line.split(":", 2)
        if len(fields) == 3:
            memberships.append((fields[0], fields[1], fields[2]))
    return memberships


def _folder_and_ancestors(controller_root: Path, path: str) -> list[Path]:
    """The cgroup's folder, then each parent up to the controller's root; the root alone if the folder is absent
    (a container that sees the host's path in /proc/self/cgroup)."""
    parts = [part for part in path.split("/") if part]
    if not os.path.isdir(controller_root.joinpath(*parts)):
        parts = []
    return [controller_root.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _cpu_max_limit(cpu_max: Path) -> int | None:
    """cgroup v2: "200000 100000" is 2 CPUs; "max 100000" is no limit."""
    fields = _read_text(cpu_max).split()
    return _whole_cpus(*fields) if len(fields) == 2 else None


def _cfs_limit(folder: Path) -> int | None:
    """cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us; a quota of -1 is no limit."""
    quota = _read_text(folder / "cpu.cfs_quota_us").split()
    period = _read_text(folder / "cpu.cfs_period_us").split()
    return _whole_cpus(quota[0], period[0]) if len(quota) == len(period) == 1 else None


def _whole_cpus(quota: str, period: str) -> int | None:
    """ceil(quota / period), or None unless both are positive integers."""
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return -(-quota_us // period_us)


def _read_text(file: Path) -> str:
    """The file's text, or "" where it is missing, unreadable or not text."""
    try:
        return file.read_text()
    except (OSError, ValueError):
        return ""
