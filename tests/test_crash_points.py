"""Crash consistency, tested as crash-consistency tools do: a real job killed with SIGKILL at each of its
renames, fsyncs, unlinks and truncations, and at sampled writes (strace's syscall fault injection). After
every kill, an output that exists is whole and has its whole reject file beside it, and `--resume` ends with
the bytes of the uninterrupted run, leaving nothing else behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import REPO

STRACE = shutil.which("strace")
DURABLE = ("rename", "renameat", "renameat2", "fsync", "fdatasync", "unlink", "unlinkat", "ftruncate")
SAMPLED_WRITES = 6
pytestmark = pytest.mark.skipif(STRACE is None, reason="needs strace (Debian package strace) for fault injection")


def job(folder: Path, *extra: str) -> list[str]:
    """The job under test: a file with bad rows, skipped into a reject file, in chunks of 40 rows."""
    return [sys.executable, "-m", "siamese_runtime", "score", str(folder / "in.tsv"), "-o", str(folder / "out.tsv"),
            "--on-bad-row", "skip", "--chunk-rows", "40", *extra]


def run(command: list[str], strace: list[str] | None = None) -> subprocess.CompletedProcess:
    prefix = [STRACE or "strace", "-qq", *strace] if strace else []  # no -f: the job's files are the main thread's
    return subprocess.run([*prefix, *command], capture_output=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def syscall_counts(folder: Path) -> Counter[str]:
    """How many times the job's main thread makes each durable syscall, and writes."""
    log = folder / "trace.log"
    result = run(job(folder), ["-o", str(log), "-e", f"trace={','.join(DURABLE)},write"])
    if result.returncode != 0:
        pytest.skip(f"strace cannot trace here: {result.stderr.decode()[-300:]}")
    calls = Counter(match.group(1) for line in log.read_text().splitlines() if (match := re.match(r"(\w+)\(", line)))
    log.unlink()
    return calls


def injection_points(calls: Counter[str], sampled_writes: int = SAMPLED_WRITES) -> list[tuple[str, int]]:
    """Every durable call, and writes at evenly spaced counts (the first and the last among them)."""
    points = [(name, when) for name in DURABLE for when in range(1, calls[name] + 1)]
    writes = calls["write"]
    return points + sorted({("write", 1 + i * (writes - 1) // (sampled_writes - 1)) for i in range(sampled_writes)})


def visible(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.fixture
def folder(owned_pairs: Callable[..., Path], tmp_path: Path) -> Path:
    rows = owned_pairs(150).read_text(encoding="utf-8").splitlines(keepends=True)
    rows[17], rows[90] = "只有一列\n", "\t第一句是空的\t0\n"  # bad rows in two chunks: the reject file has both
    (tmp_path / "in.tsv").write_text("".join(rows), encoding="utf-8")
    return tmp_path


def test_a_job_killed_at_any_durable_step_is_whole_or_absent_and_resumes_to_the_same_bytes(folder: Path) -> None:
    clean = run(job(folder))
    assert clean.returncode == 0, clean.stderr.decode()
    expected = {name: (folder / name).read_bytes() for name in ("out.tsv", "out.tsv.rejects.jsonl")}
    assert expected["out.tsv.rejects.jsonl"].count(b"\n") == 2
    points = injection_points(syscall_counts(folder))
    assert sum(name.startswith("rename") for name, _ in points) >= 5  # checkpoints, then the two publications
    for name in expected:
        (folder / name).unlink()
    failures = []
    for syscall, when in points:
        killed = run(job(folder), ["-o", "/dev/null", "-e", f"inject={syscall}:signal=SIGKILL:when={when}"])
        seen = {name: (folder / name).read_bytes() for name in expected if (folder / name).exists()}
        if "out.tsv" in seen and seen != expected:
            failures.append(f"{syscall}#{when}: an output is visible without being whole with its rejects")
        resumed = run(job(folder, "--resume"))
        if resumed.returncode != 0 or any((folder / n).read_bytes() != b for n, b in expected.items()):
            failures.append(f"{syscall}#{when} (killed: {killed.returncode}): --resume exited "
                            f"{resumed.returncode}: {resumed.stderr.decode()[-300:]}")
        if visible(folder) != ["in.tsv", *sorted(expected)]:
            failures.append(f"{syscall}#{when}: left {visible(folder)}")
        for name in expected:
            (folder / name).unlink(missing_ok=True)
    assert not failures, f"{len(failures)} of {len(points)} crash points broke the promise:\n" + "\n".join(failures)


STOP_SIGNALS = {"SIGTERM": 143, "SIGHUP": 129, "SIGINT": 130}


def test_a_stop_signal_at_any_durable_step_ends_the_job_done_or_resumable_never_between(folder: Path) -> None:
    """SIGTERM, SIGHUP and SIGINT in turn at each durable step and sampled writes: exit 0 exactly when the output
    is whole with its rejects and nothing else is left (a signal once the files are committed does not fail the
    job); otherwise the signal's code, no output, and `--resume` ends with the uninterrupted bytes."""
    clean = run(job(folder))
    assert clean.returncode == 0, clean.stderr.decode()
    expected = {name: (folder / name).read_bytes() for name in ("out.tsv", "out.tsv.rejects.jsonl")}
    points = injection_points(syscall_counts(folder), sampled_writes=3)
    for name in expected:
        (folder / name).unlink()
    failures, outcomes = [], Counter()
    for index, (syscall, when) in enumerate(points):
        sent = list(STOP_SIGNALS)[index % len(STOP_SIGNALS)]
        stopped = run(job(folder), ["-o", "/dev/null", "-e", f"inject={syscall}:signal={sent}:when={when}"])
        point = f"{sent} at {syscall}#{when} (exit {stopped.returncode})"
        done = visible(folder) == ["in.tsv", *sorted(expected)] and all(
            (folder / n).read_bytes() == b for n, b in expected.items())
        outcomes[stopped.returncode] += 1
        if b"Traceback" in stopped.stderr or stopped.returncode not in (0, STOP_SIGNALS[sent]):
            failures.append(f"{point}: {stopped.stderr.decode()[-300:]}")
        elif (stopped.returncode == 0) != done:
            failures.append(f"{point}: exit 0 must mean done and done exit 0; left {visible(folder)}")
        elif stopped.returncode and (folder / "out.tsv").exists():
            failures.append(f"{point}: stopped, yet an output is visible")
        if stopped.returncode:
            resumed = run(job(folder, "--resume"))
            if resumed.returncode != 0 or any((folder / n).read_bytes() != b for n, b in expected.items()):
                failures.append(f"{point}: --resume exited {resumed.returncode}: {resumed.stderr.decode()[-300:]}")
        for name in expected:
            (folder / name).unlink(missing_ok=True)
    assert outcomes[0] and len(outcomes) > 1, outcomes  # both kinds of ending were reached
    assert not failures, f"{len(failures)} of {len(points)} signal points broke the promise:\n" + "\n".join(failures)


def test_a_failing_syscall_at_any_durable_step_ends_the_job_done_or_with_one_line_and_nothing_visible(
    folder: Path,
) -> None:
    """EIO (ENOSPC for writes) at each durable step: exit 0 with the whole files (a failure past the commit
    point, such as removing the checkpoint or a lock, is only a warning), or exit 1 with one line naming the file
    concerned and neither file visible; a rerun with `--resume` then ends with the uninterrupted bytes."""
    clean = run(job(folder))
    assert clean.returncode == 0, clean.stderr.decode()
    expected = {name: (folder / name).read_bytes() for name in ("out.tsv", "out.tsv.rejects.jsonl")}
    points = injection_points(syscall_counts(folder), sampled_writes=3)
    failures, outcomes = [], Counter()

    def reset() -> None:
        for path in folder.iterdir():
            if path.name != "in.tsv":
                path.unlink()

    reset()
    for syscall, when in points:
        errno = "ENOSPC" if syscall == "write" else "EIO"
        failed = run(job(folder), ["-o", "/dev/null", "-e", f"inject={syscall}:error={errno}:when={when}"])
        point, said = f"{errno} at {syscall}#{when} (exit {failed.returncode})", failed.stderr.decode()
        errors = [line for line in said.splitlines() if ": error: " in line]
        visible_files = {name: (folder / name).read_bytes() for name in expected if (folder / name).exists()}
        outcomes[failed.returncode] += 1
        if failed.returncode == 0:
            if visible_files != expected:
                failures.append(f"{point}: exit 0 without the whole files")
        elif failed.returncode != 1 or len(errors) != 1 or "Traceback" in said:
            failures.append(f"{point}: {said[-300:]}")
        elif visible_files:
            failures.append(f"{point}: failed, yet {sorted(visible_files)} visible")
        elif not re.search(r"error: \S*[/.]\S*( -> \S+)?: ", errors[0]):
            failures.append(f"{point}: the error names no file: {errors[0]}")
        if failed.returncode:
            resumed = run(job(folder, "--resume"))
            if resumed.returncode != 0 or any((folder / n).read_bytes() != b for n, b in expected.items()):
                failures.append(f"{point}: --resume exited {resumed.returncode}: {resumed.stderr.decode()[-300:]}")
        reset()
    assert outcomes[0] and outcomes[1], outcomes  # both kinds of ending were reached
    assert not failures, f"{len(failures)} of {len(points)} failure points broke the promise:\n" + "\n".join(failures)


@pytest.mark.parametrize("failing", ["output file", "reject stream"])
def test_a_commit_that_fails_anywhere_delivers_nothing_to_a_stream_and_leaves_no_file(
    folder: Path, failing: str
) -> None:
    """Streams are committed after every file, since what a stream received cannot be taken back: an output
    file whose publishing fails leaves a reject FIFO with nothing; a reject stream that fails (/dev/full) takes
    the published output back."""
    fifo = folder / "rejects.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    if failing == "output file":
        reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
        reader.start()
        failed = run(job(folder, "--reject-file", str(fifo)), ["-o", "/dev/null", "-e", "inject=rename:error=EIO"])
        with contextlib.suppress(OSError):  # a job that never opened the FIFO: end the reader (ENXIO: none left)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)
        assert received == [b""], received
    else:
        failed = run(job(folder, "--reject-file", "/dev/full"))
    assert failed.returncode == 1 and "Traceback" not in failed.stderr.decode(), failed.stderr.decode()
    assert visible(folder) == ["in.tsv", "rejects.fifo"], failed.stderr.decode()
