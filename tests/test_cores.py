"""usable_cores: the affinity mask capped by cgroup v1 and v2 CPU quotas read from real files, a real taskset
subprocess, and the real machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from fractions import Fraction
from math import ceil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siamese_runtime.cores import usable_cores

REPO = Path(__file__).resolve().parents[1]
AFFINITY = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MALFORMED_CPU_MAX = [b"garbage", b"", b"max", b"100000", b"1 2 3", b"-5 100000", b"100000 0", b"\xff\xfe 100000"]
MALFORMED_CFS_QUOTA = [b"garbage", b"", b"max", b"0", b"100000 100000", b"\xff\xfe"]


def write(file: Path, content: str | bytes) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content.encode() if isinstance(content, str) else content)


def cores_v2(tmp_path: Path, cgroup: str, cpu_max: Mapping[str, str | bytes]) -> int:
    """usable_cores for a process in `cgroup` (the `0::` line), with cpu.max files in the folders named."""
    root = tmp_path / "cgroup"
    root.mkdir(exist_ok=True)
    for folder, content in cpu_max.items():
        write(root / folder / "cpu.max", content)
    write(tmp_path / "proc_self_cgroup", f"0::{cgroup}\n")
    return usable_cores(root, tmp_path / "proc_self_cgroup")


def cores_v1(tmp_path: Path, mount: str, cgroup: str, quotas: Mapping[str, tuple[str | bytes, str | bytes]]) -> int:
    """usable_cores for a process in v1 `cgroup`, with (quota, period) files in the folders under `mount`."""
    root = tmp_path / "cgroup"
    (root / mount).mkdir(parents=True, exist_ok=True)
    for folder, (quota, period) in quotas.items():
        write(root / mount / folder / "cpu.cfs_quota_us", quota)
        write(root / mount / folder / "cpu.cfs_period_us", period)
    write(tmp_path / "proc_self_cgroup", f"5:memory:/docker/abc\n4:cpu,cpuacct:{cgroup}\n")
    return usable_cores(root, tmp_path / "proc_self_cgroup")


def test_v2_max_is_no_limit(tmp_path: Path) -> None:
    assert cores_v2(tmp_path, "/", {"": "max 100000\n"}) == AFFINITY


def test_v2_half_a_cpu_rounds_up_to_one(tmp_path: Path) -> None:
    assert cores_v2(tmp_path, "/", {"": "50000 100000\n"}) == 1


def test_v2_one_and_a_half_cpus_round_up_to_two(tmp_path: Path) -> None:
    assert cores_v2(tmp_path, "/", {"": "150000 100000\n"}) == min(2, AFFINITY)


def test_v2_a_parent_limit_smaller_than_the_childs_applies(tmp_path: Path) -> None:
    cpu_max = {"": "max 100000", "kubepods": "100000 100000", "kubepods/pod/ctr": "300000 100000"}
    assert cores_v2(tmp_path, "/kubepods/pod/ctr", cpu_max) == 1


def test_v2_a_child_limit_smaller_than_the_parents_applies(tmp_path: Path) -> None:
    assert cores_v2(tmp_path, "/app", {"": "300000 100000", "app": "100000 100000"}) == 1


@pytest.mark.parametrize("content", MALFORMED_CPU_MAX)
def test_v2_malformed_cpu_max_is_no_limit(tmp_path: Path, content: bytes) -> None:
    assert cores_v2(tmp_path, "/", {"": content}) == AFFINITY


def test_v2_unreadable_cpu_max_is_no_limit(tmp_path: Path) -> None:
    (tmp_path / "cgroup" / "cpu.max").mkdir(parents=True)
    assert cores_v2(tmp_path, "/", {}) == AFFINITY


def test_v2_missing_path_folder_falls_back_to_the_roots_cpu_max(tmp_path: Path) -> None:
    assert cores_v2(tmp_path, "/system.slice/docker-abc.scope", {"": "100000 100000"}) == 1


def test_missing_or_malformed_proc_self_cgroup_is_no_limit(tmp_path: Path) -> None:
    write(tmp_path / "cgroup" / "cpu.max", "100000 100000")
    assert usable_cores(tmp_path / "cgroup", tmp_path / "absent") == AFFINITY
    write(tmp_path / "proc_self_cgroup", "garbage\n")
    assert usable_cores(tmp_path / "cgroup", tmp_path / "proc_self_cgroup") == AFFINITY


@given(quota=st.integers(min_value=1), period=st.integers(min_value=1))
def test_v2_any_quota_is_rounded_up_and_capped_by_affinity(
    tmp_path_factory: pytest.TempPathFactory, quota: int, period: int
) -> None:
    tmp_path = tmp_path_factory.mktemp("v2")
    expected = max(1, min(AFFINITY, ceil(Fraction(quota, period))))
    assert cores_v2(tmp_path, "/", {"": f"{quota} {period}\n"}) == expected


@pytest.mark.parametrize("mount", ["cpu,cpuacct", "cpu"])
class TestCgroupV1:
    def test_quota_minus_one_is_no_limit(self, tmp_path: Path, mount: str) -> None:
        assert cores_v1(tmp_path, mount, "/", {"": ("-1", "100000")}) == AFFINITY

    def test_quota_is_rounded_up(self, tmp_path: Path, mount: str) -> None:
        assert cores_v1(tmp_path, mount, "/", {"": ("50000", "100000")}) == 1
        assert cores_v1(tmp_path, mount, "/", {"": ("150000\n", "100000\n")}) == min(2, AFFINITY)

    def test_a_parent_limit_smaller_than_the_childs_applies(self, tmp_path: Path, mount: str) -> None:
        quotas = {"": ("-1", "100000"), "docker": ("100000", "100000"), "docker/abc": ("300000", "100000")}
        assert cores_v1(tmp_path, mount, "/docker/abc", quotas) == 1

    @pytest.mark.parametrize("content", MALFORMED_CFS_QUOTA)
    def test_malformed_quota_is_no_limit(self, tmp_path: Path, mount: str, content: bytes) -> None:
        assert cores_v1(tmp_path, mount, "/", {"": (content, "100000")}) == AFFINITY

    def test_missing_period_is_no_limit(self, tmp_path: Path, mount: str) -> None:
        cores_v1(tmp_path, mount, "/", {"": ("100000", "100000")})
        (tmp_path / "cgroup" / mount / "cpu.cfs_period_us").unlink()
        assert usable_cores(tmp_path / "cgroup", tmp_path / "proc_self_cgroup") == AFFINITY

    def test_missing_path_folder_falls_back_to_the_controllers_root(self, tmp_path: Path, mount: str) -> None:
        assert cores_v1(tmp_path, mount, "/docker/abc", {"": ("100000", "100000")}) == 1


def test_taskset_to_one_cpu_gives_one() -> None:
    taskset = shutil.which("taskset") or "/usr/bin/taskset"
    if not os.access(taskset, os.X_OK):
        pytest.skip("taskset is not installed")
    if AFFINITY < 2:
        pytest.skip("this machine gives the tests a single CPU already")
    cpu = min(os.sched_getaffinity(0))  # CPU 0 may be outside this process's mask
    code = "from siamese_runtime.cores import usable_cores; print(usable_cores())"
    result = subprocess.run(
        [taskset, "-c", str(cpu), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "1"


def test_this_machine() -> None:
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)


def test_under_taskset_one_cpu_the_default_is_one_thread_and_threads_1_is_accepted(tmp_path: Path) -> None:
    """The runtime's default and the command's --threads check count the same cores: those the process may use."""
    taskset = shutil.which("taskset") or "/usr/bin/taskset"
    if not os.access(taskset, os.X_OK) or AFFINITY < 2:
        pytest.skip("needs taskset and at least two CPUs")
    pinned = [taskset, "-c", str(min(os.sched_getaffinity(0))), sys.executable]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    default = subprocess.run([*pinned, "-c", "from siamese_runtime import Scorer; print(Scorer().encoder.threads)"],
                             capture_output=True, text=True, env=env, timeout=120, check=True)
    assert default.stdout.strip() == "1"
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("花呗怎么还款\t花呗如何还钱\n", encoding="utf-8")
    for threads, code in (("1", 0), ("2", 2)):
        run = subprocess.run([*pinned, "-m", "siamese_runtime", "score", str(pairs), "-o", "-", "--threads", threads],
                             capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
        assert run.returncode == code, run.stderr
    assert "more than the 1 cores this process may use" in run.stderr
