"""The process around the command (docs/guarantees.md, The process), in real subprocesses: signals at any moment
from the entry's first line, and standard streams that are closed, full or broken."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from errno import EBADF, ENOSPC
from pathlib import Path

import pytest

from .conftest import REPO, stop_signals_at_default

MODULE = [sys.executable, "-m", "siamese_runtime"]
SCRIPT = [str(Path(sys.executable).with_name("siamese-runtime"))]  # the installed console script
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
PAIRS = "花呗怎么还款\t花呗如何还钱\t1\n借呗额度\t借呗的额度\t0\n"
PROGRAM = "siamese-runtime"
WORDS = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated"), signal.SIGHUP: (129, "hangup")}
# Delays after the command has started, in seconds: most land while numpy and onnxruntime import (~0.3 s here).
DELAYS = (0, 0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45)


@pytest.fixture()
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.tsv"
    path.write_text(PAIRS, encoding="utf-8")
    return path


def run(*args: str, redirect: str = "", stdout: int = subprocess.PIPE, stderr: int = subprocess.PIPE,
        ) -> subprocess.CompletedProcess:
    """`python -m siamese_runtime ARGS`, its stdout and stderr captured or the descriptors given, then `redirect`:
    shell redirections applied as it starts, such as '1>&-' (closed) or '2>/dev/full'."""
    command = ["sh", "-c", f'exec "$@" {redirect}', "sh", *MODULE, *args]
    return subprocess.run(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=REPO, env=ENV,
                          timeout=60)


def broken_pipe() -> int:
    """The writing end of a pipe whose reader has already gone."""
    reader, writer = os.pipe()
    os.close(reader)
    return writer


def started(pid: int) -> bool:
    """The command's own code runs: it catches SIGTERM (the entry's first line does) or numpy is loading."""
    caught = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigCgt"))
    handles_sigterm = bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return handles_sigterm or "numpy" in Path(f"/proc/{pid}/maps").read_text()


def signalled(launcher: list[str], sent: int, delay: float) -> tuple[int, str]:
    """Exit code and stderr of `score - -o -` (stdin held open, so it waits) sent `sent` `delay` s after it starts."""
    job = subprocess.Popen([*launcher, "score", "-", "-o", "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, cwd=REPO, env=ENV, preexec_fn=stop_signals_at_default)
    try:
        deadline = time.monotonic() + 30
        while job.poll() is None and not started(job.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        job.send_signal(sent)
        _, stderr = job.communicate(timeout=30)
    finally:
        job.kill()
    return job.returncode, stderr.decode()


@pytest.mark.skipif(not Path(SCRIPT[0]).exists(), reason="needs the installed console script")
def test_a_signal_at_any_moment_from_the_first_line_gives_its_exit_code_and_one_word() -> None:
    imported = subprocess.run([sys.executable, "-c",
                               "import sys, siamese_runtime.cli.entry; print(sorted(sys.modules))"],
                              capture_output=True, cwd=REPO, env=ENV, check=True, text=True).stdout
    assert "'numpy'" not in imported, "the entry's first line must run before numpy (siamese_runtime/__init__.py)"
    cases = [((MODULE, SCRIPT)[i % 2], sent, delay) for i, delay in enumerate(DELAYS)
             for sent in (signal.SIGINT, signal.SIGTERM)]
    cases += [(MODULE, signal.SIGHUP, 0.05), (SCRIPT, signal.SIGHUP, 0.2)]
    for launcher, sent, delay in cases:
        code, stderr = signalled(launcher, sent, delay)
        said = f"{Path(launcher[-1]).name} {signal.Signals(sent).name} after {delay} s: {stderr!r}"
        assert (code, stderr) == (WORDS[sent][0], f"{PROGRAM}: {WORDS[sent][1]}\n"), said


# Commands writing stdout, and the names an error may give it: the job names its output '-'.
WRITERS = {("score", "{pairs}", "-o", "-"): ("<stdout>", "-"), ("info",): ("<stdout>",), ("--help",): ("<stdout>",)}


def failed_on_stdout(result: subprocess.CompletedProcess, names: tuple[str, ...], errno: int) -> bool:
    """Exit 1 with the one line `siamese-runtime: error: STDOUT: REASON`, stdout named as one of `names`."""
    lines = {f"{PROGRAM}: error: {name}: {os.strerror(errno)}\n" for name in names}
    return result.returncode == 1 and result.stderr.decode() in lines


@pytest.mark.parametrize("args", [("info",), ("--help",)])  # score -o - names its output '-' itself
def test_stdout_on_a_full_device_is_an_error_naming_stdout(args: tuple[str]) -> None:
    result = run(*args, redirect="1>/dev/full")
    assert failed_on_stdout(result, ("<stdout>",), ENOSPC), (result.returncode, result.stderr)


@pytest.mark.parametrize("args", WRITERS)
def test_stdout_closed_is_an_error_naming_stdout(pairs: Path, args: tuple[str, ...]) -> None:
    result = run(*(arg.format(pairs=pairs) for arg in args), redirect="1>&-")
    assert failed_on_stdout(result, WRITERS[args], EBADF), (result.returncode, result.stderr)


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_stdout_into_a_pipe_nobody_reads_ends_silently_with_141_even_when_written_at_exit(args: tuple[str]) -> None:
    writer = broken_pipe()
    try:
        result = run(*args, stdout=writer)
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr.decode()) == (141, "")


def test_a_stream_whose_reader_stops_after_a_line_ends_silently_with_141(tmp_path: Path) -> None:
    pairs = tmp_path / "many.tsv"  # more output than a pipe holds: the job is still writing when the reader goes
    pairs.write_text(PAIRS * 2000, encoding="utf-8")
    job = subprocess.Popen([*MODULE, "score", str(pairs), "--stream", "--chunk-rows", "100"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=ENV)
    assert job.stdout is not None and job.stdout.readline().startswith(PAIRS.split("\n")[0].encode())
    job.stdout.close()  # as `| head -1` does
    _, stderr = job.communicate(timeout=60)
    assert (job.returncode, stderr.decode()) == (141, "")


def test_a_stream_to_a_full_device_says_how_much_it_may_have_received(pairs: Path) -> None:
    result = run("score", str(pairs), "--stream", "-o", "/dev/full")
    assert result.returncode == 1 and result.stderr.decode().splitlines() == [
        f"{PROGRAM}: --stream: /dev/full already has the output of the first 0 input rows (and perhaps some of the "
        "next 2)", f"{PROGRAM}: error: /dev/full: {os.strerror(ENOSPC)}"]


def test_stdin_closed_is_an_error_naming_stdin(tmp_path: Path) -> None:
    result = run("score", "-", "-o", str(tmp_path / "out.tsv"), redirect="0<&-")
    assert (result.returncode, result.stderr.decode()) == (1, f"{PROGRAM}: error: <stdin>: {os.strerror(EBADF)}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("redirect", ["2>/dev/full", "2>&-", "broken pipe"])
def test_stderr_that_cannot_be_written_never_changes_the_exit_code(pairs: Path, tmp_path: Path, redirect: str) -> None:
    expected = tmp_path / "expected.tsv"
    assert run("score", str(pairs), "-o", str(expected)).returncode == 0
    writer = broken_pipe() if redirect == "broken pipe" else subprocess.PIPE
    shell = "" if redirect == "broken pipe" else redirect
    try:
        done = run("score", str(pairs), "-o", str(tmp_path / "out.tsv"), redirect=shell, stderr=writer)
        failed = run("score", str(tmp_path / "missing.tsv"), "-o", "-", redirect=f"1>&- {shell}", stderr=writer)
    finally:
        if writer != subprocess.PIPE:
            os.close(writer)
    assert done.returncode == 0 and (tmp_path / "out.tsv").read_bytes() == expected.read_bytes()
    assert failed.returncode == 1


@pytest.mark.parametrize("output", ["full", "closed", "broken"])
def test_a_job_whose_output_stream_fails_leaves_no_reject_file(tmp_path: Path, output: str) -> None:
    """Rows out + rejects = rows in holds for what a failed job leaves, too: none of either."""
    path = tmp_path / "bad.tsv"
    path.write_text(PAIRS + "只有一列\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    args = ("score", str(path), "-o", "/dev/full" if output == "full" else "-", "--on-bad-row", "skip",
            "--reject-file", str(rejects))
    writer = broken_pipe() if output == "broken" else subprocess.PIPE
    try:
        result = run(*args, redirect="1>&-" if output == "closed" else "", stdout=writer)
    finally:
        if output == "broken":
            os.close(writer)
    assert result.returncode in (1, 141), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tsv"], result.stderr


BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # every character str.splitlines ends a line at


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(c):04X}" for c in BREAKS])
def test_an_error_quoting_text_with_a_line_break_is_still_one_line(tmp_path: Path, brk: str) -> None:
    """File names, header names and values reach messages as the user gave them; the line stays one."""
    path = tmp_path / f"pairs{brk}in.tsv"
    path.write_text(PAIRS + "只有一列\n", encoding="utf-8")
    header = tmp_path / "header.csv"
    header.write_text(f'"sentence{brk}1",sentence2,x\n花呗,借呗\n', encoding="utf-8", newline="")
    for args in (("score", str(path), "-o", str(tmp_path / "out.tsv")),  # file:line: reason, with the name
                 ("score", str(header), "-o", str(tmp_path / "out.csv"), "--header"),  # the header's names
                 ("score", str(path), "-o", str(tmp_path / "o.tsv"), "--left", f"a{brk}b", "--right", "2"),
                 ("score", "--batch-size", f"1{brk}0", str(path), "-o", "x.tsv")):  # argparse's own errors
        result = run(*args)
        stderr = result.stderr.decode()
        errors = [line for line in stderr.split("\n") if line]
        assert result.returncode in (1, 2) and len(errors) == 1 and errors[0].startswith(f"{PROGRAM}: error: "), \
            (args, stderr)
        assert not any(c in errors[0] for c in BREAKS), (args, stderr)
