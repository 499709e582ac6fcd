"""The conventions users bring, in a real `pip install .` environment with no extras (numpy, onnxruntime and
tqdm only): the README's own `.venv` where its first command made one, else a fresh venv from the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from .conftest import REPO

EXTRAS = ("pyarrow", "matplotlib", "ray", "pandas", "tensorflow")
PAIRS = "花呗怎么还款\t花呗如何还钱\t1\n借呗额度\t借呗的额度\t0\n"


def plain(python: Path) -> bool:
    """Whether `python` has the runtime installed (not from this checkout's path) and none of the extras."""
    probe = ("import importlib.util, siamese_runtime, sys; "
             f"sys.exit(any(importlib.util.find_spec(m) for m in {EXTRAS!r}))")
    return python.exists() and subprocess.run([str(python), "-c", probe], cwd="/", capture_output=True,
                                              timeout=120).returncode == 0


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    readme_venv = REPO / ".venv" / "bin" / "python"
    if plain(readme_venv):
        return readme_venv
    folder = tmp_path_factory.mktemp("plain")
    venv.create(folder / "venv", with_pip=True)
    interpreter = folder / "venv" / "bin" / "python"
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(REPO), "-w",
                            str(folder)], capture_output=True, text=True, timeout=600)
    assert wheel.returncode == 0, wheel.stderr
    installed = subprocess.run([str(interpreter), "-m", "pip", "install", "--quiet", *folder.glob("*.whl")],
                               capture_output=True, text=True, timeout=900)
    if installed.returncode != 0:  # no package index reachable: say so rather than fail on the network
        pytest.skip(f"pip install of the wheel failed here: {installed.stderr.strip()[-300:]}")
    assert plain(interpreter)
    return interpreter


def run(python: Path, folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "siamese_runtime", *args], cwd=folder, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    (tmp_path / "in.tsv").write_text(PAIRS, encoding="utf-8")
    (tmp_path / "in.parquet").write_bytes(b"PAR1" + b"\0" * 8 + b"PAR1")  # never read: pyarrow is missing
    return tmp_path


@pytest.mark.slow
def test_a_missing_extra_is_one_line_naming_it_with_exit_1(python: Path, folder: Path) -> None:
    for args, extra in ((["in.parquet"], "parquet"), (["in.tsv", "-o", "out.parquet"], "parquet"),
                        (["in.tsv", "-o", "ray-out", "--engine", "ray"], "ray")):
        result = run(python, folder, "score", *args)
        assert result.returncode == 1 and result.stdout == "", result.stderr
        [line] = result.stderr.splitlines()
        assert line.startswith("siamese-runtime: error: ") and f"pip install 'siamese-runtime[{extra}]'" in line
    result = run(python, folder, "bench", "--quick", "--batch-sizes", "1", "--precisions", "fp32", "--out", "bench")
    assert result.returncode == 0, result.stderr
    assert "pip install 'siamese-runtime[bench]'; plots skipped, results written" in result.stderr
    assert sorted(path.suffix for path in (folder / "bench").iterdir()) == [".json", ".md"]


@pytest.mark.slow
def test_score_writes_to_stdout_refuses_unknown_extensions_and_sums_up_in_one_short_line(
    python: Path, folder: Path
) -> None:
    result = run(python, folder, "score", "in.tsv")
    assert result.returncode == 0 and [line.split("\t")[:3] for line in result.stdout.splitlines()] == [
        line.split("\t") for line in PAIRS.splitlines()]
    [summary] = result.stderr.splitlines()
    assert summary.startswith("siamese-runtime: scored 2 rows") and len(summary) < 120
    result = run(python, folder, "score", "in.tsv", "-o", "scores.xlsx")
    assert result.returncode == 2 and "--output-format" in result.stderr and not (folder / "scores.xlsx").exists()


@pytest.mark.slow
def test_info_is_short_and_json_on_request_and_the_api_says_what_it_was_given(python: Path, folder: Path) -> None:
    short = run(python, folder, "info")
    assert short.returncode == 0 and len(short.stdout.splitlines()) < 20 and "siamese-runtime " in short.stdout
    everything = json.loads(run(python, folder, "info", "--json").stdout)
    assert everything["manifest"]["name"] == "default" and everything["siamese_runtime"] in short.stdout
    script = ("from siamese_runtime import Scorer\ntry:\n    Scorer().score('花呗')\n"
              "except TypeError as error:\n    print(error)\n")
    said = subprocess.run([str(python), "-c", script], cwd=folder, capture_output=True, text=True, timeout=120)
    assert said.stdout.startswith("expected pairs, got a single str '花呗'; call score([(left, right)])"), said
