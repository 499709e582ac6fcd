"""A job never destroys, corrupts or silently misreads data: hostile paths, a second job, odd encodings,
bad numbers; each case run through the real command line, as a subprocess, on owned pairs."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from siamese_runtime import Scorer
from siamese_runtime.errors import ResumeError
from siamese_runtime.job import JobOptions, run_job

from .conftest import DEFAULT_MODEL, REPO, run_cli, stop_signals_at_default
from .test_cli import cli_command, repeated

EXIT_ERROR, EXIT_USAGE, EXIT_LOCKED = 1, 2, 75


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def stderr_of(result: subprocess.CompletedProcess) -> str:
    text = result.stderr.decode()
    assert "Traceback" not in text, text
    return text


@pytest.fixture()
def pairs(pairs_500: Path, tmp_path: Path) -> Path:
    source = tmp_path / "in.tsv"
    source.write_bytes(pairs_500.read_bytes())
    return source


@pytest.fixture(scope="module")
def reference(pairs_500: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("reference") / "scores.tsv"
    assert run_cli("score", str(pairs_500), "-o", str(out)).returncode == 0
    return out.read_bytes()


# 1. outputs that are not regular files


def test_a_fifo_output_receives_the_whole_output_and_stays_a_fifo(
    pairs: Path, tmp_path: Path, reference: bytes
) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_cli("score", str(pairs), "-o", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, stderr_of(result)
    assert received == [reference] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert files_in(tmp_path) == ["in.tsv", "out.fifo"]


@pytest.mark.parametrize(("bad_line", "chunk_rows"), [(1, 50), (121, 50), (500, 64), (333, 1)])
def test_stream_hands_out_every_chunk_scored_before_a_failure_and_only_those(
    pairs: Path, reference: bytes, bad_line: int, chunk_rows: int
) -> None:
    lines = pairs.read_bytes().splitlines(keepends=True)
    lines[bad_line - 1] = b"\t" + lines[bad_line - 1].split(b"\t", 1)[1]  # sentence1 empty: the job stops there
    pairs.write_bytes(b"".join(lines))
    scored_before = (bad_line - 1) // chunk_rows * chunk_rows
    for stream in (True, False):
        result = run_cli("score", str(pairs), "--chunk-rows", str(chunk_rows), *(["--stream"] if stream else []))
        assert result.returncode == EXIT_ERROR and f"in.tsv:{bad_line}: sentence1 is empty" in stderr_of(result)
        expected = b"".join(reference.splitlines(keepends=True)[:scored_before]) if stream else b""
        assert result.stdout == expected
        assert (f"stdout already has the output of the first {scored_before} input rows" in stderr_of(result)
                ) == stream


def test_stream_from_a_pipe_scores_rows_as_they_arrive_not_when_the_pipe_closes(pairs: Path, reference: bytes) -> None:
    rows = pairs.read_bytes().splitlines(keepends=True)[:25]  # past the 20 rows the header is judged by
    job = subprocess.Popen(cli_command("score", "-", "--stream", "--chunk-rows", "1"), stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert job.stdin is not None and job.stdout is not None
    job.stdin.write(b"".join(rows))
    job.stdin.flush()  # and kept open: a producer still at work
    received, deadline = b"", time.monotonic() + 60
    while received.count(b"\n") < 25 and time.monotonic() < deadline:
        if select.select([job.stdout], [], [], 1)[0]:
            received += os.read(job.stdout.fileno(), 1 << 16)
    job.stdin.close()
    job.wait(timeout=60)
    assert received == b"".join(reference.splitlines(keepends=True)[:25])


def test_stream_gives_the_whole_output_to_stdout_and_a_fifo(pairs: Path, tmp_path: Path, reference: bytes) -> None:
    result = run_cli("score", str(pairs), "--stream", "--chunk-rows", "7")
    assert result.returncode == 0 and result.stdout == reference, stderr_of(result)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run_cli("score", str(pairs), "-o", str(fifo), "--stream")
    reader.join(timeout=60)
    assert result.returncode == 0 and received == [reference], stderr_of(result)


@pytest.mark.parametrize("flags", [["-o", "out.tsv"], ["--output-format", "parquet"], ["--resume"],
                                   ["--engine", "ray", "-o", "out.parquet"]])
def test_stream_is_refused_where_it_cannot_stream(pairs: Path, tmp_path: Path, flags: list[str]) -> None:
    flags = [str(tmp_path / flag) if flag.startswith("out.") else flag for flag in flags]
    result = run_cli("score", str(pairs), "--stream", *flags)
    assert result.returncode == EXIT_USAGE and result.stdout == b"" and "stream" in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv"]


def test_a_character_device_output_stays_a_device(pairs: Path, tmp_path: Path) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root")
    result = run_cli("score", str(pairs), "-o", str(device))
    assert result.returncode == 0, stderr_of(result)
    assert stat.S_ISCHR(device.lstat().st_mode) and files_in(tmp_path) == ["in.tsv", "null"]


def test_a_symlink_output_is_refused_and_left_as_it_is(pairs: Path, tmp_path: Path) -> None:
    target = tmp_path / "kept.tsv"
    target.write_text("precious\n")
    link = tmp_path / "out.tsv"
    link.symlink_to(target)
    result = run_cli("score", str(pairs), "-o", str(link))
    assert result.returncode == EXIT_USAGE and "is a symbolic link" in stderr_of(result)
    assert link.is_symlink() and target.read_text() == "precious\n"
    assert files_in(tmp_path) == ["in.tsv", "kept.tsv", "out.tsv"]


def test_a_directory_output_is_refused_before_any_work(pairs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    result = run_cli("score", str(pairs), "-o", str(folder))
    assert result.returncode == EXIT_USAGE and f"output {folder} is a directory" in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv", "out"] and files_in(folder) == []


# 2. two jobs on one output


@pytest.mark.parametrize("folder", ["", "a:"])  # a://out.tsv is a local path to the local engine, locked as any
def test_a_second_job_on_the_same_output_fails_at_once_and_the_first_completes(
    owned_pairs: Callable[..., Path], tmp_path: Path, folder: str
) -> None:
    source = repeated(owned_pairs(10_000), 3, tmp_path / "big.tsv")  # 30,000 pairs
    other = tmp_path / "other.tsv"
    other.write_bytes(b"".join(owned_pairs(100, seed=5).read_bytes().splitlines(keepends=True)[:100]))
    (tmp_path / folder).mkdir(exist_ok=True)
    out = tmp_path / folder / "out.tsv"
    target = f"{tmp_path}/a://out.tsv" if folder else str(out)  # spelled so: a Path would make it a:/out.tsv
    first = subprocess.Popen(cli_command("score", str(source), "-o", target, "--chunk-rows", "500"), cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
    lock = tmp_path / folder / ".out.tsv.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = run_cli("score", str(other), "-o", target)
    assert first.wait(timeout=300) == 0, first.stderr.read().decode() if first.stderr else ""
    assert second.returncode == EXIT_LOCKED
    assert f"{target} is being written by another job (pid {first.pid})" in stderr_of(second)
    assert out.read_text(encoding="utf-8").count("\n") == 30_000
    assert [line.rsplit("\t", 1)[0] for line in out.read_text(encoding="utf-8").splitlines()] == \
        source.read_text(encoding="utf-8").splitlines()
    assert files_in(tmp_path / folder) == (["big.tsv", "other.tsv", "out.tsv"] if not folder else ["out.tsv"])


# 3. outputs that are the input, or each other


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["-o", "{input}"], "the output {input} is the input"),
        (["-o", "{link}"], "the output {link} is the input"),
        (["-o", "{tmp}/out.tsv", "--on-bad-row", "skip", "--reject-file", "{input}"],
         "the reject file {input} is the input"),
        (["-o", "{tmp}/out.tsv", "--on-bad-row", "null", "--reject-file", "{tmp}/out.tsv"],
         "the output and the reject file are the same file"),
        (["-o", "{tmp}/out.tsv", "--on-bad-row", "null", "--reject-file", "{tmp}/.out.tsv.checkpoint.json"],
         "is named as the checkpoint.json file of a job writing"),
        (["-o", "-", "--on-bad-row", "skip", "--reject-file", "-"], "cannot both be stdout"),
        (["-o", ""], "the output path is empty"),
        (["-o", "{tmp}/out.tsv", "--on-bad-row", "skip", "--reject-file", ""], "the reject file path is empty"),
    ],
)
def test_an_output_that_is_the_input_or_another_output_is_refused(
    pairs: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    before = pairs.read_bytes()
    hard_link = tmp_path / "hard.tsv"
    os.link(pairs, hard_link)
    result = run_cli("score", str(pairs), *[flag.format(input=pairs, link=hard_link, tmp=tmp_path) for flag in flags])
    assert result.returncode == EXIT_USAGE and message.format(input=pairs, link=hard_link) in stderr_of(result)
    assert pairs.read_bytes() == before and files_in(tmp_path) == ["hard.tsv", "in.tsv"] and result.stdout == b""


def test_an_output_whose_folder_takes_no_lock_file_names_the_output_and_its_lock() -> None:
    result = run_cli("score", "-", "-o", "/proc/version", input_bytes=b"a\tb\n")  # /proc makes no files
    said = stderr_of(result)
    assert result.returncode == EXIT_ERROR
    assert "error: /proc/.version.lock: " in said and "(the lock file of /proc/version)" in said


@pytest.mark.parametrize(
    ("source", "flags", "shell", "message"),
    [  # stdout or stdin as the shell set them up: the file or pipe they are, compared as any target is
        ("{input}", ["--on-bad-row", "skip", "--reject-file", "{tmp}/rej.jsonl"], "> {tmp}/rej.jsonl",
         "the output and the reject file are the same file (stdout and {tmp}/rej.jsonl)"),
        ("{input}", [], ">> {input}", "the output stdout is the input {input}"),
        ("-", [], "< {input} >> {input}", "the output stdout is the input stdin"),
        ("{input}", ["--on-bad-row", "null", "--reject-file", "/dev/stdout"], "| cat",
         "the output and the reject file are the same file (stdout and /dev/stdout)"),
        ("{input}", ["-o", "{tmp}/fifo", "--on-bad-row", "skip", "--reject-file", "{tmp}/fifo"], "",
         "the output and the reject file are the same file ({tmp}/fifo)"),
        ("{input}", ["-o", "{tmp}/o.tsv", "--on-bad-row", "skip", "--reject-file", "-"], "> {tmp}/.o.tsv.partial",
         "the reject file (stdout) is {tmp}/.o.tsv.partial, where the output's partial file goes"),
    ],
)
def test_stdout_and_streams_that_are_the_input_or_another_target_are_refused(
    pairs: Path, tmp_path: Path, source: str, flags: list[str], shell: str, message: str
) -> None:
    os.mkfifo(tmp_path / "fifo")
    before = pairs.read_bytes()
    names = {"input": pairs, "tmp": tmp_path}
    command = [arg.format(**names) for arg in cli_command("score", source, *flags)]
    result = subprocess.run(["bash", "-o", "pipefail", "-c", f'"$@" {shell.format(**names)}', "bash", *command],
                            capture_output=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == EXIT_USAGE and message.format(**names) in stderr_of(result), stderr_of(result)
    rejects = tmp_path / "rej.jsonl"  # the shell made it, empty: it stays so
    assert pairs.read_bytes() == before and (not rejects.exists() or rejects.read_bytes() == b"")


@pytest.mark.parametrize("replaced", [True, False])
def test_a_partial_file_replaced_or_removed_while_the_job_writes_it_is_not_published(
    pairs: Path, tmp_path: Path, replaced: bool
) -> None:
    """Another program puts its own file at the job's partial path (or removes it) while the job reads its input:
    the job's commit finds it is not the file it wrote, publishes nothing, and says so."""
    out, partial = tmp_path / "out.tsv", tmp_path / ".out.tsv.partial"
    source = repeated(pairs, 20, tmp_path / "big.tsv")  # 10,000 rows in chunks of 5: the job takes seconds
    job = subprocess.Popen(cli_command("score", str(source), "-o", str(out), "--chunk-rows", "5"),
                           stderr=subprocess.PIPE, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert job.stderr is not None
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    if replaced:
        (tmp_path / "theirs").write_text("another program's rows\n")
        os.replace(tmp_path / "theirs", partial)
    else:
        partial.unlink()
    assert job.wait(timeout=60) == EXIT_ERROR
    said = job.stderr.read().decode()
    assert f"{partial} was {'replaced' if replaced else 'removed'} while this job wrote it" in said, said
    assert not out.exists()
    assert partial.read_text() == "another program's rows\n" if replaced else not partial.exists()  # theirs, kept
    assert "--resume" not in said and not (tmp_path / ".out.tsv.checkpoint.json").exists()  # nothing to go on from


@pytest.mark.parametrize("kind", ["partial", "lock", "checkpoint.json"])
def test_a_target_named_as_another_jobs_bookkeeping_file_is_refused(pairs: Path, tmp_path: Path, kind: str) -> None:
    result = run_cli("score", str(pairs), "-o", str(tmp_path / f".out.tsv.{kind}"), "--output-format", "tsv")
    assert result.returncode == EXIT_USAGE and f"is named as the {kind} file of a job writing" in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv"]


def test_a_terminal_or_dev_null_takes_the_output_and_the_rejects_together(pairs: Path) -> None:
    result = run_cli("score", str(pairs), "-o", "/dev/null", "--on-bad-row", "skip", "--reject-file", "/dev/null")
    assert result.returncode == 0, stderr_of(result)


@pytest.mark.parametrize(("made", "flags", "code", "message"), [
    ("gzip", [], EXIT_ERROR, "in.tsv.gz: the file is not text but gzip-compressed: decompress it first (zcat "),
    ("zip", [], EXIT_ERROR, "in.xlsx: the file is not text but a zip archive (or a spreadsheet)"),
    ("parquet", [], EXIT_ERROR, "in.dat: the file is not text but a Parquet file: name it .parquet"),
    ("tar", [], EXIT_ERROR, "in.tar: the file is not text but a tar archive: extract the file first"),
    ("plain", ["-o", "{tmp}/socket"], EXIT_USAGE, "output {tmp}/socket is a socket, which a job cannot open"),
    ("plain", ["-o", "{tmp}/in.tsv/out.tsv"], EXIT_USAGE, "its folder {tmp}/in.tsv is not a folder"),
    ("plain", ["-o", "/dev/stdout"], EXIT_USAGE, "is this process's descriptor, a link to where it points now; give -"),
])
def test_inputs_that_are_no_text_and_outputs_nowhere_say_what_they_are_and_the_fix(
    pairs: Path, tmp_path: Path, made: str, flags: list[str], code: int, message: str
) -> None:
    import gzip
    import zipfile

    source = {"gzip": tmp_path / "in.tsv.gz", "zip": tmp_path / "in.xlsx", "parquet": tmp_path / "in.dat",
              "tar": tmp_path / "in.tar", "plain": pairs}[made]
    if made == "gzip":
        source.write_bytes(gzip.compress(pairs.read_bytes()))
    elif made == "zip":
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("sheet.xml", "<x/>")
    elif made == "parquet":
        source.write_bytes(b"PAR1" + bytes(20) + b"PAR1")
    elif made == "tar":
        with tarfile.open(source, "w") as archive:
            archive.add(pairs, arcname="in.tsv")
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "socket"))
    stdout = (tmp_path / "stdout.txt").open("wb")  # a file: /dev/stdout then links to it
    result = subprocess.run(cli_command("score", str(source), *[f.format(tmp=tmp_path) for f in flags]),
                            stdout=stdout, stderr=subprocess.PIPE, cwd=REPO, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == code and message.format(tmp=tmp_path) in stderr_of(result), stderr_of(result)
    assert (tmp_path / "stdout.txt").read_bytes() == b""


def test_an_empty_input_path_is_refused_naming_stdin(tmp_path: Path) -> None:
    result = run_cli("score", "", "-o", str(tmp_path / "out.tsv"))
    assert result.returncode == EXIT_USAGE and "the input path is empty (- is stdin)" in stderr_of(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("through_a_link", [False, True])
def test_an_input_where_the_partial_file_goes_is_refused(pairs: Path, tmp_path: Path, through_a_link: bool) -> None:
    before = pairs.read_bytes()
    partial = tmp_path / ".out.tsv.partial"
    pairs.rename(partial)
    source = tmp_path / "in.tsv"
    if through_a_link:
        source.symlink_to(partial)
    result = run_cli("score", str(source if through_a_link else partial), "-o", str(tmp_path / "out.tsv"))
    assert result.returncode == EXIT_USAGE and "is where the output's partial file goes" in stderr_of(result)
    assert partial.read_bytes() == before


# 4. resuming with another model


def test_resume_with_another_model_of_the_same_encoder_is_refused(pairs: Path, tmp_path: Path) -> None:
    other = Path(shutil.copytree(DEFAULT_MODEL, tmp_path / "other"))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["threshold"] = 0.9
    (other / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "out.tsv"

    def crash(progress: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(Scorer(providers="cpu"), JobOptions(str(pairs), str(out), chunk_rows=100, predict=True), crash)
    with pytest.raises(ResumeError, match=r"cannot resume: .*\(model_manifest_sha256\)"):
        run_job(Scorer(other, providers="cpu"), JobOptions(str(pairs), str(out), chunk_rows=100, predict=True,
                                                            resume=True))
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(pairs), str(out), chunk_rows=100, predict=True,
                                                          resume=True))
    assert summary.resumed_rows == 100 and summary.rows == 500


# 5. and 6. the first row: malformed, or with a byte-order mark


@pytest.mark.parametrize("policy", ["stop", "skip"])
def test_a_malformed_first_row_is_the_bad_row(pairs: Path, tmp_path: Path, policy: str) -> None:
    broken = tmp_path / "broken.tsv"
    broken.write_bytes("只有一列\n".encode() + pairs.read_bytes())
    out = tmp_path / "out.tsv"
    result = run_cli("score", str(broken), "-o", str(out), "--on-bad-row", policy)
    text = stderr_of(result)
    if policy == "stop":
        assert result.returncode == 1 and f"{broken}:1: found 1 columns, expected 3" in text
    else:
        assert result.returncode == 0, text
        rejects = Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["line"] for line in rejects] == [1]
        assert out.read_text(encoding="utf-8").count("\n") == 500


def test_a_byte_order_mark_changes_nothing(pairs: Path, tmp_path: Path, reference: bytes) -> None:
    bom = b"\xef\xbb\xbf"
    with_bom = tmp_path / "bom.tsv"
    with_bom.write_bytes(bom + pairs.read_bytes())
    out = tmp_path / "out.tsv"
    assert run_cli("score", str(with_bom), "-o", str(out)).returncode == 0
    assert out.read_bytes() == reference
    named = tmp_path / "named.tsv"
    named.write_bytes(bom + b"sentence1\tsentence2\tlabel\n" + pairs.read_bytes())
    result = run_cli("score", str(named), "-o", str(tmp_path / "named_out.tsv"), "--left", "sentence1",
                     "--right", "sentence2")
    assert result.returncode == 0, stderr_of(result)
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(bom + '{"s1": "花呗怎么还款", "s2": "花呗如何还钱"}\n'.encode())
    result = run_cli("score", str(jsonl), "-o", str(tmp_path / "out.jsonl"))
    assert result.returncode == 0, stderr_of(result)


# 8. links planted where the job writes its own files


def test_planted_links_at_the_partial_and_checkpoint_paths_are_never_followed(pairs: Path, tmp_path: Path,
                                                                              reference: bytes) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".out.tsv.partial").symlink_to(victim)
    (tmp_path / ".out.tsv.checkpoint.json").symlink_to(victim)
    result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), "--chunk-rows", "100")
    assert result.returncode == 0, stderr_of(result)
    assert victim.read_text() == "precious\n" and (tmp_path / "out.tsv").read_bytes() == reference
    assert files_in(tmp_path) == ["in.tsv", "out.tsv", "victim.txt"]


@pytest.mark.parametrize("link", ["symbolic", "hard"])
@pytest.mark.parametrize("lock", [".out.tsv.lock", ".out.tsv.rejects.jsonl.lock"])
def test_a_planted_link_at_a_lock_path_is_refused_and_the_file_it_names_kept(
    pairs: Path, tmp_path: Path, link: str, lock: str
) -> None:
    """A link at the output's or the reject file's lock path, to a victim file or to the input itself: refused
    before any work (a lock is opened in place, so a hard link there would make its pid overwrite the file)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    for target in (victim, pairs):
        planted = tmp_path / lock
        planted.unlink(missing_ok=True)
        before = target.read_bytes()
        planted.symlink_to(target) if link == "symbolic" else planted.hardlink_to(target)
        result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), "--on-bad-row", "skip")
        reason = "is a symbolic link" if link == "symbolic" else "has another name (a hard link)"
        assert result.returncode == EXIT_USAGE and f"{lock} {reason}" in stderr_of(result), stderr_of(result)
        assert target.read_bytes() == before and not (tmp_path / "out.tsv").exists()


# 9. and 10. text that no output could hold; CSV the parser refuses


def rejects_under(policy: str, source: Path, out: Path, stop_error: str) -> list[dict] | None:
    """Score `source` under `policy`. stop: it fails naming `stop_error` and leaves only the input (None);
    skip and null: it succeeds, and the reject file's entries are returned."""
    result = run_cli("score", str(source), "-o", str(out), "--on-bad-row", policy)
    text = stderr_of(result)
    if policy == "stop":
        assert result.returncode == 1 and stop_error in text
        assert files_in(source.parent) == [source.name]
        return None
    assert result.returncode == 0, text
    return [json.loads(line) for line in Path(f"{out}.rejects.jsonl").read_text(encoding="utf-8").split("\n")[:-1]]


@pytest.mark.parametrize("policy", ["stop", "skip", "null"])
def test_a_lone_surrogate_in_jsonl_is_a_bad_row_under_every_policy(tmp_path: Path, policy: str) -> None:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text('{"s1": "花呗", "s2": "借呗"}\n{"s1": "花\\ud800", "s2": "借呗"}\n{"s1": "额度", "s2": "还款"}\n',
                      encoding="utf-8")
    rejects = rejects_under(policy, source, out, f"{source}:2: not valid Unicode: a lone surrogate")
    if rejects is not None:
        assert out.read_text(encoding="utf-8").count("\n") == (3 if policy == "null" else 2)
        assert [(r["line"], r["values"]) for r in rejects] == [(2, ["花\ufffd", "借呗"])]


@pytest.mark.parametrize("policy", ["stop", "skip", "null"])
def test_a_long_csv_field_is_a_row_and_a_ragged_one_follows_the_bad_row_policy(tmp_path: Path, policy: str) -> None:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(f"花呗,借呗\n{'长' * 140_000},借呗\n额\r度,还款\n额度,还款\n", encoding="utf-8", newline="")
    rejects = rejects_under(policy, source, out, f"{source}:3: found 1 columns, expected 2")
    if rejects is not None:
        assert [r["line"] for r in rejects] == [3]  # a lone CR ends line 3 ('额', one column): a bad row
        assert out.read_text(encoding="utf-8").count("\n") == (5 if policy == "null" else 4)


# 13. numbers that cannot work


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--threads", "100000", "is more than the"),
        ("--threads", "-1", "-1 is not a whole number of at least 1"),
        ("--batch-size", "0", "0 is not a whole number of at least 1"),
        ("--cache-size", "-1", "-1 is not a whole number of at least 0"),
        ("--chunk-rows", "-1", "-1 is not a whole number of at least 1"),
        ("--chunk-rows", "many", "'many' is not a whole number"),
        ("--threads", "1_0", "'1_0' is not a whole number"),  # Python's int takes both
        ("--batch-size", "\u0663", "'\u0663' is not a whole number"),
    ],
)
def test_numeric_flags_are_checked_before_any_work(pairs: Path, tmp_path: Path, flag: str, value: str,
                                                   message: str) -> None:
    started = time.monotonic()
    result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), flag, value)
    assert result.returncode == EXIT_USAGE and message in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv"] and time.monotonic() - started < 60


# 14. the smaller cases


def test_rescoring_without_predict_drops_the_stale_label(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("sentence1\tsentence2\tpredicted\tscore\n花呗怎么还款\t花呗如何还钱\t0\t0.1\n", encoding="utf-8")
    out = tmp_path / "out.tsv"
    assert run_cli("score", str(source), "-o", str(out)).returncode == 0
    assert out.read_text(encoding="utf-8").splitlines()[0] == "sentence1\tsentence2\tscore"


def test_a_header_naming_a_column_twice_is_refused_before_any_work(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("q,q,label\n花呗,借呗,1\n额度,还款,0\n", encoding="utf-8")
    result = run_cli("score", str(source), "-o", str(tmp_path / "out.tsv"), "--header")
    assert result.returncode == EXIT_ERROR and "names column 'q' twice" in stderr_of(result)
    assert files_in(tmp_path) == ["in.csv"]


def test_jsonl_keys_the_first_object_lacks_are_kept_in_fixed_columns(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"s1": "花呗", "s2": "借呗"}\n{"s1": "额度", "s2": "还款", "id": "x"}\n', encoding="utf-8")
    out = tmp_path / "out.tsv"
    assert run_cli("score", str(source), "-o", str(out)).returncode == 0
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["s1", "s2", "id", "score"] and rows[2][:3] == ["额度", "还款", "x"]


def test_stdout_gets_nothing_when_a_bad_row_stops_the_job(pairs: Path, tmp_path: Path) -> None:
    lines = pairs.read_bytes().splitlines(keepends=True)
    broken = tmp_path / "broken.tsv"
    broken.write_bytes(b"".join(lines[:450]) + "只有一列\n".encode() + b"".join(lines[450:]))
    result = run_cli("score", str(broken), "-o", "-", "--chunk-rows", "50")
    assert result.returncode == 1 and f"{broken}:451:" in stderr_of(result) and result.stdout == b""


def test_a_name_too_long_for_sidecars_still_runs_and_resumes(pairs: Path, tmp_path: Path, reference: bytes) -> None:
    out = tmp_path / ("长" * 80 + "x.tsv")  # 245 bytes: fits, but '.NAME.checkpoint.json' would not
    options = {"chunk_rows": 100}

    def crash(progress: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(Scorer(providers="cpu"), JobOptions(str(pairs), str(out), **options), crash)
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(pairs), str(out), resume=True, **options))
    assert summary.resumed_rows == 100 and out.read_bytes() == reference
    assert files_in(tmp_path) == sorted(["in.tsv", out.name])


def test_nan_from_parquet_is_written_as_json_null(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet

    source = tmp_path / "in.parquet"
    pyarrow.parquet.write_table(pa.table({"s1": ["花呗"], "s2": ["借呗"], "x": [float("nan")]}), source)
    out = tmp_path / "out.jsonl"
    assert run_cli("score", str(source), "-o", str(out)).returncode == 0
    row = json.loads(out.read_text(encoding="utf-8"))  # json.loads accepts NaN: check the text as well
    assert row["x"] is None and "NaN" not in out.read_text(encoding="utf-8")


def test_an_empty_input_gives_an_empty_output_and_says_so(tmp_path: Path) -> None:
    source = tmp_path / "empty.tsv"
    source.write_bytes(b"")
    out = tmp_path / "out.tsv"
    result = run_cli("score", str(source), "-o", str(out))
    assert result.returncode == 0 and f"{source} has no rows:" in stderr_of(result) and out.read_bytes() == b""


@pytest.mark.parametrize(
    ("sent", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_an_interrupted_job_exits_cleanly_and_resumes(
    owned_pairs: Callable[..., Path], tmp_path: Path, sent: int, code: int, said: str
) -> None:
    source = repeated(owned_pairs(10_000), 3, tmp_path / "big.tsv")
    args = ["--chunk-rows", "500"]
    whole = tmp_path / "whole.tsv"
    assert run_cli("score", str(source), "-o", str(whole), *args).returncode == 0
    out = tmp_path / "out.tsv"
    job = subprocess.Popen(cli_command("score", str(source), "-o", str(out), *args), cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
                           preexec_fn=stop_signals_at_default)
    checkpoint = tmp_path / ".out.tsv.checkpoint.json"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    job.send_signal(sent)
    assert job.wait(timeout=120) == code
    text = job.stderr.read().decode() if job.stderr else ""
    assert "Traceback" not in text and f"siamese-runtime: {said}" in text and "--resume" in text
    assert not (tmp_path / ".out.tsv.lock").exists()
    again = sent == signal.SIGTERM  # run again without --resume: it starts over, saying what it discards
    resumed = run_cli("score", str(source), "-o", str(out), *args, *([] if again else ["--resume"]))
    assert resumed.returncode == 0, stderr_of(resumed)
    assert ("checkpoint is discarded; --resume would have gone on from it" in stderr_of(resumed)) == again
    assert out.read_bytes() == whole.read_bytes()
    assert files_in(tmp_path) == ["big.tsv", "out.tsv", "whole.tsv"]


@pytest.mark.parametrize("reader", ["a FIFO no one opens", "a pipe no one reads"])
def test_a_job_waiting_on_its_output_stream_at_the_end_stops_at_a_signal(
    pairs: Path, tmp_path: Path, reader: str
) -> None:
    """Every row scored, the reject file published, the output waiting on a stream's reader that never comes:
    SIGTERM still ends the job promptly, with its code, and withdraws the reject file (its output is not whole)."""
    source = repeated(pairs, 4, tmp_path / "big.tsv")  # more output than a pipe's buffer holds
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    target = str(fifo) if reader.startswith("a FIFO") else "-"
    rejects = tmp_path / "rejects.jsonl"
    job = subprocess.Popen(cli_command("score", str(source), "-o", target, "--on-bad-row", "skip", "--reject-file",
                                       str(rejects)), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not rejects.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # the reject file is published just before the output goes to its stream
    assert rejects.exists(), job.stderr.read().decode() if job.stderr else ""
    time.sleep(0.2)
    job.send_signal(signal.SIGTERM)
    try:
        code = job.wait(timeout=20)
    except subprocess.TimeoutExpired:
        job.kill()
        raise AssertionError(f"writing to {reader}, the job ignored SIGTERM") from None
    text = job.stderr.read().decode() if job.stderr else ""
    assert code == 143 and "Traceback" not in text and "terminated" in text, text
    assert files_in(tmp_path) == ["big.tsv", "in.tsv", "out.fifo"]


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_job_waiting_on_a_quiet_stdin_stops_at_once_and_writes_nothing(
    pairs: Path, tmp_path: Path, sent: int, code: int
) -> None:
    """The reader (a thread reading ahead) may sit in a read that never returns: a stop signal still ends the
    job promptly, with its code and no output."""
    out = tmp_path / "out.tsv"
    job = subprocess.Popen(cli_command("score", "-", "-o", str(out), "--chunk-rows", "10"), cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True, preexec_fn=stop_signals_at_default)
    assert job.stdin is not None
    job.stdin.write(b"".join(pairs.read_bytes().splitlines(keepends=True)[:25]))
    job.stdin.flush()  # 25 rows, then silence with the pipe left open
    time.sleep(3)
    job.send_signal(sent)
    started = time.monotonic()
    assert job.wait(timeout=30) == code
    assert time.monotonic() - started < 2.5
    job.stdin.close()
    assert not out.exists() and files_in(tmp_path) == ["in.tsv"]


def test_a_header_guessed_from_its_shape_is_announced(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("花呗怎么还款\t花呗如何还钱\tx\n借呗额度\t借呗的额度\t1\n信用卡\t还款\t0\n", encoding="utf-8")
    result = run_cli("score", str(source), "-o", str(tmp_path / "out.tsv"))
    assert result.returncode == 0
    assert f"{source}: the first row was taken as a header" in stderr_of(result) and "--no-header" in stderr_of(result)
    named = tmp_path / "named.tsv"
    named.write_text("sentence1\tsentence2\tlabel\n借呗额度\t借呗的额度\t1\n", encoding="utf-8")
    assert "taken as a header" not in stderr_of(run_cli("score", str(named), "-o", str(tmp_path / "named_out.tsv")))


def test_a_first_row_read_as_data_that_holds_a_column_name_is_announced(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("sentence1\t问题二\tx\n借呗额度\t借呗的额度\ty\n", encoding="utf-8")
    result = run_cli("score", str(source), "-o", str(tmp_path / "out.tsv"))
    assert result.returncode == 0 and len((tmp_path / "out.tsv").read_text(encoding="utf-8").splitlines()) == 2
    assert f"{source}: the first row holds column names (sentence1) but was read as data" in stderr_of(result)


def test_a_sentence_column_named_like_an_output_column_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.tsv"
    source.write_text("score\tb\n花呗\t借呗\n", encoding="utf-8")
    result = run_cli("score", str(source), "-o", str(tmp_path / "out.tsv"), "--header")
    assert result.returncode == EXIT_USAGE and "the sentence column 'score' would be replaced" in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv"]


def test_file_names_that_are_not_utf8_work_and_resume(pairs: Path, tmp_path: Path) -> None:
    odd_input, out = tmp_path / os.fsdecode(b"in\xff.tsv"), tmp_path / os.fsdecode(b"out\xfe.tsv")
    odd_input.write_bytes(pairs.read_bytes())

    def crash(progress: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(Scorer(providers="cpu"), JobOptions(str(odd_input), str(out), chunk_rows=100), crash)
    summary = run_job(Scorer(providers="cpu"), JobOptions(str(odd_input), str(out), chunk_rows=100, resume=True))
    assert summary.resumed_rows == 100 and out.read_text(encoding="utf-8").count("\n") == 500
    result = run_cli("score", str(odd_input), "-o", str(tmp_path / os.fsdecode(b"cli\xfe.tsv")))
    assert result.returncode == 0, stderr_of(result)


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--chunk-rows", "99999999999999999999", "is more than 10,000,000, the most this flag takes"),
    ("--threads", "99999", "is more than 64 per core, even with --oversubscribe"),
])
def test_absurdly_large_numbers_are_refused_even_when_forced(
    pairs: Path, tmp_path: Path, flag: str, value: str, message: str
) -> None:
    result = run_cli("score", str(pairs), "-o", str(tmp_path / "out.tsv"), flag, value, "--oversubscribe")
    assert result.returncode == EXIT_USAGE and message in stderr_of(result)
    assert files_in(tmp_path) == ["in.tsv"]
    with pytest.raises(ValueError, match="chunk_rows must be at most 10,000,000"):
        JobOptions(str(pairs), str(tmp_path / "out.tsv"), chunk_rows=10**20)
