"""Shared fixtures: the real data folder, the shipped default model, and a tiny model trained and exported here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = (REPO / ".." / "shared" / "data").resolve()
DEFAULT_MODEL = REPO / "models" / "default"


def head_of(source: Path, lines: int, destination: Path) -> Path:
    """The first `lines` lines of a real data file, copied to `destination`."""
    with source.open(encoding="utf-8") as stream:
        destination.write_text("".join(next(stream) for _ in range(lines)), encoding="utf-8")
    return destination


def run_cli(*args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """The command line in a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "siamese_runtime", *args],
        input=input_bytes, capture_output=True, cwd=REPO, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.fixture(scope="session")
def data() -> Path:
    if not (DATA / "MANIFEST.json").is_file():
        pytest.fail(f"the shared data folder is missing: expected {DATA}")
    return DATA


@pytest.fixture(scope="session")
def lcqmc_500(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return head_of(data / "lcqmc" / "test.tsv", 500, tmp_path_factory.mktemp("pairs") / "lcqmc_500.tsv")


@pytest.fixture()
def broken(lcqmc_500: Path, tmp_path: Path) -> Path:
    """500 real pairs with an id column, and four bad rows among them."""
    lines = [f"{i}\t{line}" for i, line in enumerate(lcqmc_500.read_text(encoding="utf-8").splitlines(keepends=True))]
    lines[10] = "10\t只有一列\n"
    lines[20] = "20\t \t借呗\t1\n"
    lines[30] = "30\t花呗\t\u3000\t0\n"
    path = tmp_path / "broken.tsv"
    path.write_bytes("".join(lines).encode() + b"500\t\xff\xfe\tok\t1\n")
    return path


@pytest.fixture(scope="session")
def tiny_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real training run in seconds: 3,000 LCQMC dev pairs, 3 epochs, small layers."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from train.run import TrainConfig, train_run

    config = TrainConfig(
        out=str(tmp_path_factory.mktemp("runs") / "tiny"),
        train_files=[str(data / "lcqmc" / "dev.tsv")],
        max_pairs=3000, epochs=3, warmup_epochs=0, learning_rate=0.005,
        embedding_dim=16, lstm_units=(24, 8), batch_size=64,
    )
    return train_run(config)


@pytest.fixture(scope="session")
def tiny_model(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported by export/ into a model folder (parity-checked on export)."""
    from export.folder import export_run

    out = tmp_path_factory.mktemp("models") / "tiny"
    export_run(tiny_run, out, report_files=[str(DATA / "bq" / "test.tsv"), str(DATA / "lcqmc" / "test.tsv")])
    return out
