"""The checkpoint is untrusted input: whatever is edited in it, or in the partial files it describes, between
a crash and `--resume`, the resume either refuses with a ResumeError naming the file or ends with the bytes
of the uninterrupted run. Never rows dropped or repeated, a reject file of other bytes, or another error.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siamese_runtime import Scorer
from siamese_runtime.errors import ResumeError
from siamese_runtime.job import JobOptions, run_job

from .test_job import Crash, crash_after

SCORER = Scorer(providers="cpu")
FILES = ("out.tsv", "out.tsv.rejects.jsonl")
BOOKKEEPING = (".out.tsv.checkpoint.json", ".out.tsv.partial", ".out.tsv.rejects.jsonl.partial")


def options(folder: Path, resume: bool = False) -> JobOptions:
    return JobOptions(str(folder / "in.tsv"), str(folder / "out.tsv"), on_bad_row="skip", chunk_rows=40,
                      resume=resume)


LONG = "花" * 400_000  # 1.2 MB: the rows already scored reach past the MiB the fingerprint hashes


@dataclass(frozen=True)
class Interrupted:
    """A crashed job's folder, the files it left, and the bytes of the same job uninterrupted."""

    folder: Path
    state: dict[str, bytes] = field(repr=False)
    expected: dict[str, bytes] = field(repr=False)


@pytest.fixture(scope="module")
def interrupted(owned_pairs: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    """A folder with an input with bad rows, the bytes of its uninterrupted output and rejects, and the files
    a crash after 3 of its 8 chunks leaves (checkpoint and partial files). Resumes run in that folder: the
    checkpoint names the input by its path."""
    folder = tmp_path_factory.mktemp("interrupted")
    rows = owned_pairs(300).read_text(encoding="utf-8").splitlines(keepends=True)
    rows[5], rows[150], rows[299] = "只有一列\n", "\t第一句是空的\t0\n", "a\tb\tc\td\n"
    rows[1] = f"{LONG}\t{LONG[:10]}\t1\n"
    (folder / "in.tsv").write_text("".join(rows), encoding="utf-8")
    run_job(SCORER, options(folder))
    expected = {name: (folder / name).read_bytes() for name in FILES}
    for name in FILES:
        (folder / name).unlink()
    with pytest.raises(Crash):
        run_job(SCORER, options(folder), on_progress=crash_after(3))
    state = {name: (folder / name).read_bytes() for name in BOOKKEEPING}
    return Interrupted(folder, state, expected)


def leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """The paths of every value in a JSON document, containers included."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))


REPLACEMENTS = st.one_of(
    st.integers(-(2**70), 2**70), st.integers(-3, 3), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers()),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)


def edited(document: dict, data: st.DataObject) -> dict:
    """`document` with one value replaced, shifted (numbers) or removed, chosen by hypothesis."""
    document = copy.deepcopy(document)
    path = data.draw(st.sampled_from([p for p in leaves(document) if p]), label="path")
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    old = parent[path[-1]]
    how = data.draw(st.sampled_from(["replace", "shift", "remove"]), label="how")
    if how == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "shift" and type(old) is int:
        parent[path[-1]] = old + data.draw(st.integers(-100, 100).filter(bool), label="shift")
    else:
        parent[path[-1]] = data.draw(REPLACEMENTS, label="value")
    return document


def lay_out(folder: Path, state: dict[str, bytes]) -> None:
    """The crashed job's files in `folder` again, as given."""
    for name in (*FILES, *BOOKKEEPING):
        (folder / name).unlink(missing_ok=True)
    for name, content in state.items():
        (folder / name).write_bytes(content)


def resumed(folder: Path, state: dict[str, bytes]) -> dict[str, bytes] | None:
    """Lay the crashed job's files out again as given and resume it: its files, or None if it was refused."""
    lay_out(folder, state)
    try:
        run_job(SCORER, options(folder, resume=True))
    except ResumeError as error:
        assert str(folder) in str(error)
        return None
    return {name: (folder / name).read_bytes() for name in FILES}


def test_the_crashed_job_resumes_to_the_same_bytes(interrupted: Interrupted) -> None:
    """What the properties below are measured against: the unedited files resume."""
    assert resumed(interrupted.folder, interrupted.state) == interrupted.expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_the_checkpoint_is_refused_or_changes_nothing(
    interrupted: Interrupted, data: st.DataObject
) -> None:
    state = dict(interrupted.state)
    document = json.loads(state[".out.tsv.checkpoint.json"])
    state[".out.tsv.checkpoint.json"] = json.dumps(edited(document, data)).encode()
    files = resumed(interrupted.folder, state)
    assert files is None or files == interrupted.expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(BOOKKEEPING[1:]), cut=st.integers(0, 2000), flip=st.integers(0, 2000),
       appended=st.binary(max_size=40), how=st.sampled_from(["cut", "flip", "append"]))
def test_any_change_to_a_partial_file_is_refused_or_changes_nothing(
    interrupted: Interrupted, name: str, cut: int, flip: int, appended: bytes, how: str
) -> None:
    state = dict(interrupted.state)
    content = bytearray(state[name])
    if how == "cut":
        del content[min(cut, len(content)):]
    elif how == "flip" and content:
        content[flip % len(content)] ^= 0x20
    else:
        content += appended  # bytes written after the last checkpoint: a resume cuts them off
    state[name] = bytes(content)
    files = resumed(interrupted.folder, state)
    assert files is None or files == interrupted.expected


@pytest.mark.parametrize("edit", ["past the first MiB", "appended", "cut"])
def test_an_input_changed_before_the_position_is_refused(interrupted: Interrupted, edit: str) -> None:
    """The fingerprint sees the size, the mtime and the first MiB; the sha256 of the input read so far sees
    a byte changed after that, with the size and the mtime kept."""
    source = interrupted.folder / "in.tsv"
    original, before = source.read_bytes(), source.stat()
    data = bytearray(original)
    if edit == "past the first MiB":
        at = data.index("？".encode(), (1 << 20) + 10)  # in a row of the first chunk, after the long one
        data[at : at + 3] = "。".encode()
    elif edit == "appended":
        data += "新的\t一行\t1\n".encode()
    else:
        del data[len(data) - 100 :]
    try:
        source.write_bytes(bytes(data))
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert resumed(interrupted.folder, interrupted.state) is None
    finally:
        source.write_bytes(original)
        os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_a_mid_job_checkpoint_marked_committing_is_refused(interrupted: Interrupted) -> None:
    """Found by the property above: the partial files hold what the checkpoint recorded, so only the input
    can tell that the job had not read every row when it says it was committing."""
    state = dict(interrupted.state)
    document = json.loads(state[".out.tsv.checkpoint.json"])
    state[".out.tsv.checkpoint.json"] = json.dumps({**document, "committing": True}).encode()
    assert resumed(interrupted.folder, state) is None


@pytest.mark.parametrize("program", ["siamese_runtime", "python", "pyarrow"])
def test_a_checkpoint_of_another_version_of_the_software_is_refused_naming_it(
    interrupted: Interrupted, program: str
) -> None:
    """As if the job had crashed before an upgrade: another version may format or read rows otherwise."""
    state = dict(interrupted.state)
    document = json.loads(state[".out.tsv.checkpoint.json"])
    document["fingerprint"]["software"][program] = "0.0.1"
    state[".out.tsv.checkpoint.json"] = json.dumps(document).encode()
    lay_out(interrupted.folder, state)
    with pytest.raises(ResumeError, match=r"the options or the software changed .*\(software\)"):
        run_job(SCORER, options(interrupted.folder, resume=True))
