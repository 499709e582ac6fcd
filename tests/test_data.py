"""Where the data comes from: the owned pair generator, the one data-folder setting, and `python -m train.fetch`."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from siamese_runtime.bench.pair_files import read_pair_rows
from train import data_home
from train.data import split
from train.fetch import DEFAULT_SOURCES, Source, fetch, main, mirror_sources

from .conftest import REPO
from .fixtures.questions import question_pairs


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(folder: Path, names: list[str]) -> dict[str, dict]:
    return {name: {"bytes": (folder / name).stat().st_size, "pairs": 0, "positive": 0,
                   "sha256": sha256((folder / name).read_bytes())} for name in names}


# the owned pairs


def test_owned_pairs_are_deterministic_balanced_and_valid_pair_files(owned_pairs: Callable[..., Path]) -> None:
    assert list(question_pairs(300, seed=3)) == list(question_pairs(300, seed=3)) != list(question_pairs(300, seed=4))
    path = owned_pairs(2000, seed=3)
    rows = [row.columns for row in read_pair_rows(str(path))]  # the strict reader of the benchmarks and accuracy tests
    assert len(rows) == 2000 and all(len(columns) == 3 and columns[2] in ("0", "1") for columns in rows)
    assert 0.45 < sum(columns[2] == "1" for columns in rows) / 2000 < 0.55
    assert all(left != right and left.strip() and len(left) < 64 for left, right, _ in rows)
    sentences = [s for left, right, _ in rows for s in (left, right)]
    assert 0.95 * len(sentences) > len(set(sentences)) > 0.5 * len(sentences)  # sentences recur, as in the public sets


def test_owned_pairs_split_into_sentence_disjoint_halves_of_the_wanted_size(owned_pairs: Callable[..., Path]) -> None:
    from train.data import load_pairs

    train, validation = split(load_pairs([str(owned_pairs(3000, seed=1))]), 0.1, seed=1)
    assert 300 <= len(validation) <= 305 and len(train) + len(validation) == 3000
    assert not set(train.sentences()) & set(validation.sentences())


def test_the_generator_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "tests.fixtures.questions", "5", "--seed", "2"], cwd=REPO,
                            capture_output=True, check=True)
    assert result.stdout.decode().splitlines() == ["\t".join(map(str, pair)) for pair in question_pairs(5, seed=2)]


# the data folder setting


def test_the_data_folder_is_siamese_data_else_shared_data_beside_the_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(data_home.ENV, raising=False)
    assert data_home.data_home() == (REPO / ".." / "shared" / "data").resolve() and not data_home.explicitly_set()
    monkeypatch.setenv(data_home.ENV, str(tmp_path))
    assert data_home.data_home() == tmp_path and data_home.data_file("bq/test.tsv") == tmp_path / "bq" / "test.tsv"
    assert data_home.missing(["bq/test.tsv"]) == ["bq/test.tsv"]
    assert f"{data_home.ENV}={tmp_path}" in data_home.not_found_message(["bq/test.tsv"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(data_home.ENV, "relative")
    assert data_home.data_home() == tmp_path / "relative"  # taken from the current directory


def test_train_refuses_to_start_without_its_default_files_and_names_the_setting(tmp_path: Path) -> None:
    pytest.importorskip("keras", reason="training needs the [train] extra")
    result = subprocess.run([sys.executable, "-m", "train", "--out", str(tmp_path / "run")], cwd=REPO,
                            capture_output=True, timeout=300, check=False,
                            env={**os.environ, "SIAMESE_DATA": str(tmp_path / "none"), "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert f"SIAMESE_DATA={tmp_path / 'none'}" in result.stderr.decode() and "train.fetch" in result.stderr.decode()
    assert not (tmp_path / "run").exists()


def test_no_code_but_train_data_home_builds_a_path_into_the_shared_data_folder() -> None:
    hard_coded = re.compile(r"shared/data/|[\"']shared[\"']\s*/\s*[\"']data[\"']")
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for folder in ("siamese_runtime", "train", "export", "benchmarks", "tests", ".ci")
        for path in (REPO / folder).rglob("*")
        if path.is_file() and path.suffix in (".py", "") and path.name not in ("data_home.py", "test_data.py")
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1)
        if hard_coded.search(line)
    ]
    assert offenders == []


# python -m train.fetch


@pytest.fixture()
def mirror(owned_pairs: Callable[..., Path], tmp_path: Path) -> tuple[Path, dict[str, dict]]:
    """A folder laid out as the data folder, with owned files, and the manifest that describes them."""
    folder = tmp_path / "mirror"
    for name, seed in (("one/train.tsv", 1), ("two/test.tsv", 2)):
        (folder / name).parent.mkdir(parents=True)
        (folder / name).write_bytes(owned_pairs(50, seed=seed).read_bytes())
    return folder, manifest_of(folder, ["one/train.tsv", "two/test.tsv"])


@pytest.mark.parametrize("as_url", [False, True])
def test_fetch_from_a_mirror_writes_verified_files_and_their_manifest(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path, as_url: bool
) -> None:
    folder, manifest = mirror
    dest = tmp_path / "data"
    sources = mirror_sources(folder.as_uri() if as_url else str(folder), list(manifest))
    assert fetch(dest, list(manifest), sources, manifest, log=lambda _: None) == {}
    for name in manifest:
        assert (dest / name).read_bytes() == (folder / name).read_bytes()
    assert json.loads((dest / "MANIFEST.json").read_text()) == manifest
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "MANIFEST.json", "one", "one/train.tsv", "two", "two/test.tsv"]  # no partial or scratch file left


def test_fetch_refuses_and_deletes_a_file_whose_checksum_differs(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path
) -> None:
    folder, manifest = mirror
    tampered = folder / "two" / "test.tsv"
    tampered.write_bytes(tampered.read_bytes().replace(b"\t1\n", b"\t0\n", 1))
    dest = tmp_path / "data"
    failed = fetch(dest, list(manifest), mirror_sources(str(folder), list(manifest)), manifest, log=lambda _: None)
    assert list(failed) == ["two/test.tsv"]
    assert f"with sha256 {manifest['two/test.tsv']['sha256']}: deleted" in failed["two/test.tsv"]
    assert not (dest / "two" / "test.tsv").exists() and list((dest / "two").iterdir()) == []
    assert json.loads((dest / "MANIFEST.json").read_text()) == {"one/train.tsv": manifest["one/train.tsv"]}


def test_fetch_takes_a_member_of_an_archive_less_its_header(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path
) -> None:
    folder, manifest = mirror
    archive = tmp_path / "task_data.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in manifest:
            content = b"text_a\ttext_b\tlabel\n" + (folder / name).read_bytes()
            info = tarfile.TarInfo(f"task_data/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    sources = {name: Source(archive.as_uri(), "a test", f"task_data/{name}", drop_header=True) for name in manifest}
    assert fetch(tmp_path / "data", list(manifest), sources, manifest, log=lambda _: None) == {}
    assert (tmp_path / "data" / "one" / "train.tsv").read_bytes() == (folder / "one" / "train.tsv").read_bytes()
    missing = {"one/train.tsv": Source(archive.as_uri(), "a test", "task_data/elsewhere.tsv")}
    failed = fetch(tmp_path / "other", ["one/train.tsv"], missing, manifest, log=lambda _: None)
    assert "has no file task_data/elsewhere.tsv" in failed["one/train.tsv"]


def test_every_file_has_a_default_source_and_those_without_a_download_say_where_they_come_from(tmp_path: Path) -> None:
    manifest = data_home.committed_manifest()
    assert set(DEFAULT_SOURCES) == set(manifest) == {*data_home.TRAIN_FILES, *data_home.TEST_FILES}
    failed = fetch(tmp_path, ["bq/test.tsv"], DEFAULT_SOURCES, manifest, log=lambda _: None)
    assert "no public download is known" in failed["bq/test.tsv"] and "icrc.hitsz.edu.cn" in failed["bq/test.tsv"]
    assert "--source" in failed["bq/test.tsv"] and not (tmp_path / "MANIFEST.json").exists()


def test_a_download_stops_at_the_size_the_manifest_allows(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path
) -> None:
    folder, manifest = mirror
    endless = {"one/train.tsv": Source("file:///dev/zero", "a test")}  # never ends: only the cap stops it
    failed = fetch(tmp_path / "a", ["one/train.tsv"], endless, manifest, log=lambda _: None)
    size = manifest["one/train.tsv"]["bytes"]
    assert f"larger than the {size:,} bytes the manifest allows" in failed["one/train.tsv"]
    grown = folder / "two" / "test.tsv"
    grown.write_bytes(grown.read_bytes() + b"x\ty\t1\n")  # announced larger (file:// gives its Content-Length)
    failed = fetch(tmp_path / "b", ["two/test.tsv"], mirror_sources(str(folder), ["two/test.tsv"]), manifest,
                   log=lambda _: None)
    assert "more than the" in failed["two/test.tsv"] and not (tmp_path / "b" / "two" / "test.tsv").exists()
    archive = tmp_path / "big.tgz"  # an archive member larger than the file it should be: stopped while copying
    with tarfile.open(archive, "w:gz") as tar:
        content = (folder / "one" / "train.tsv").read_bytes() * 3
        info = tarfile.TarInfo("one/train.tsv")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    member = {"one/train.tsv": Source(archive.as_uri(), "a test", "one/train.tsv")}
    failed = fetch(tmp_path / "c", ["one/train.tsv"], member, manifest, log=lambda _: None)
    assert "member one/train.tsv is larger than" in failed["one/train.tsv"]
    assert [p.name for p in (tmp_path / "c").rglob("*")] == ["one"]  # nothing partial left


def test_fetch_never_writes_through_a_link_planted_at_a_partial_file_or_a_target(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path
) -> None:
    folder, manifest = mirror
    dest = tmp_path / "data"
    (dest / "one").mkdir(parents=True)
    (dest / "two").mkdir()
    victims = [tmp_path / "victim-partial", tmp_path / "victim-target"]
    for victim in victims:
        victim.write_bytes(b"not yours\n")
    (dest / "one" / ".train.tsv.partial").symlink_to(victims[0])
    (dest / "two" / "test.tsv").symlink_to(victims[1])
    assert fetch(dest, list(manifest), mirror_sources(str(folder), list(manifest)), manifest, log=lambda _: None) == {}
    assert [victim.read_bytes() for victim in victims] == [b"not yours\n"] * 2
    for name in manifest:
        assert not (dest / name).is_symlink() and (dest / name).read_bytes() == (folder / name).read_bytes()


@pytest.mark.parametrize("where", ["dest", "folder of a file"])
def test_a_destination_that_cannot_hold_the_data_is_refused_before_any_download(
    mirror: tuple[Path, dict[str, dict]], tmp_path: Path, capsys: pytest.CaptureFixture, where: str
) -> None:
    folder, _ = mirror
    dest = tmp_path / "data"
    if where == "dest":
        dest.write_text("a file\n")
        blocker = dest
    else:
        dest.mkdir()
        blocker = dest / "bq"
        blocker.write_text("a file\n")
    assert main([str(dest), "--source", str(folder)]) == 1  # a mirror without the real files: not reached
    captured = capsys.readouterr()
    assert f"train.fetch: error: {blocker} is not a folder" in captured.err and captured.out == ""
    assert blocker.read_text() == "a file\n" and not list(tmp_path.glob("data/.fetch-*"))


def test_fetch_command_exits_1_naming_what_it_could_not_fetch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "data"), "--source", str(tmp_path / "empty"), "--only", "bq/test.tsv"]) == 1
    captured = capsys.readouterr()
    assert "bq/test.tsv: not fetched: cannot download" in captured.out and "1 of 1 files not fetched" in captured.err


# against the real data folder


def test_the_committed_manifest_is_the_data_folders_with_each_files_size(data: Path) -> None:
    committed = data_home.committed_manifest()
    assert {name: {key: value for key, value in entry.items() if key != "bytes"}
            for name, entry in committed.items()} == json.loads((data / "MANIFEST.json").read_text())
    assert {name: (data / name).stat().st_size for name in committed} == {
        name: entry["bytes"] for name, entry in committed.items()}


def test_fetch_assembles_the_real_data_folder_from_a_file_url_and_refuses_a_tampered_copy(
    data: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "data"
    assert main([str(dest), "--source", data.as_uri()]) == 0
    for name, entry in data_home.committed_manifest().items():
        assert sha256((dest / name).read_bytes()) == entry["sha256"]
        assert sum(1 for _ in (dest / name).open("rb")) == entry["pairs"]
    assert json.loads((dest / "MANIFEST.json").read_text()) == data_home.committed_manifest()

    tampered = tmp_path / "tampered"
    (tampered / "bq").mkdir(parents=True)
    (tampered / "bq" / "test.tsv").write_bytes((data / "bq" / "test.tsv").read_bytes().replace(b"\t1\n", b"\t0\n", 1))
    assert main([str(tmp_path / "again"), "--source", str(tampered), "--only", "bq/test.tsv"]) == 1
    assert not (tmp_path / "again" / "bq" / "test.tsv").exists()
