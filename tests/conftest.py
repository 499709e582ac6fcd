"""Shared fixtures: pairs the project owns (tests/fixtures), the public data sets where present, the shipped
default model, and a tiny model trained and exported here from owned pairs.

Only the tests about the public sets themselves (accuracy on the official tests, reports and benchmarks on
them, the fetch command against the real files) take the `data` fixture; it skips them, with the reason,
where the data folder is absent. The folder is $SIAMESE_DATA, else ../shared/data beside the repository
(train/data_home.py); when SIAMESE_DATA is set, a missing file fails instead of skipping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from train import data_home

from .fixtures.questions import write_pairs

REPO = data_home.REPO
DEFAULT_MODEL = REPO / "models" / "default"
TINY_PAIRS = 3000
# The tiny model's report files: owned, and large enough (2,000+) for export to judge the variants on them.
TINY_REPORTS = ("owned/report-a.tsv", "owned/report-b.tsv")


def strings_in(value: object) -> list[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (key, *strings_in(item))]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return [value] if isinstance(value, str) else []


def head_of(source: Path, lines: int, destination: Path) -> Path:
    """The first `lines` lines of a pair file, copied to `destination`."""
    with source.open(encoding="utf-8") as stream:
        destination.write_text("".join(next(stream) for _ in range(lines)), encoding="utf-8")
    return destination


def stop_signals_at_default() -> None:
    """A Popen preexec_fn: the child starts with SIGINT and SIGHUP at their defaults, as from a terminal, even when
    the tests run in the background (`&` starts every child ignoring SIGINT, nohup ignoring SIGHUP)."""
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def run_cli(*args: str, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """The command line in a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "siamese_runtime", *args],
        input=input_bytes, capture_output=True, cwd=REPO, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))},
    )


@pytest.fixture(scope="session")
def data() -> Path:
    """The public data sets: every file of train/data_manifest.json in $SIAMESE_DATA (default ../shared/data)."""
    absent = data_home.missing(list(data_home.committed_manifest()))
    if absent and data_home.explicitly_set():
        pytest.fail(data_home.not_found_message(absent))
    if absent:
        pytest.skip(f"needs the public data sets: {data_home.ENV} is unset and {data_home.DEFAULT} beside the "
                    f"repository ({data_home.data_home()}) lacks {len(absent)} of their "
                    f"{len(data_home.committed_manifest())} files; set {data_home.ENV} or run python -m train.fetch "
                    "(docs/data.md)")
    return data_home.data_home()


@pytest.fixture(scope="session")
def owned_pairs(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Files of owned question pairs (tests/fixtures/questions.py): owned_pairs(count, seed=0, name=...) -> path,
    written once per session; the same arguments give the same bytes."""
    folder = tmp_path_factory.mktemp("owned")
    made: dict[tuple[int, int, str], Path] = {}

    def make(count: int, seed: int = 0, name: str | None = None) -> Path:
        key = (count, seed, name or f"pairs-{count}-{seed}.tsv")
        if key not in made:
            path = folder / key[2]
            path.parent.mkdir(parents=True, exist_ok=True)
            made[key] = write_pairs(path, count, seed)
        return made[key]

    return make


@pytest.fixture(scope="session")
def pairs_500(owned_pairs: Callable[..., Path]) -> Path:
    """500 owned labeled pairs, headerless TSV (sentence1, sentence2, label)."""
    return owned_pairs(500, name="pairs_500.tsv")


@pytest.fixture(scope="session")
def lcqmc_500(pairs_500: Path) -> Path:
    """The old name of `pairs_500` (which were 500 LCQMC test pairs), kept while work in flight moves over."""
    return pairs_500


@pytest.fixture()
def broken(pairs_500: Path, tmp_path: Path) -> Path:
    """500 owned pairs with an id column, and four bad rows among them."""
    lines = [f"{i}\t{line}" for i, line in enumerate(pairs_500.read_text(encoding="utf-8").splitlines(keepends=True))]
    lines[10] = "10\t只有一列\n"
    lines[20] = "20\t \t借呗\t1\n"
    lines[30] = "30\t花呗\t\u3000\t0\n"
    path = tmp_path / "broken.tsv"
    path.write_bytes("".join(lines).encode() + b"500\t\xff\xfe\tok\t1\n")
    return path


@pytest.fixture(scope="session")
def tiny_run(owned_pairs: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real training run in seconds of the notebook's model (last states, Manhattan head): 3,000 owned pairs,
    3 epochs, small layers."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from train.run import TrainConfig, train_run

    config = TrainConfig(
        out=str(tmp_path_factory.mktemp("runs") / "tiny"),
        train_files=[str(owned_pairs(TINY_PAIRS, seed=1, name="owned/train.tsv"))],
        max_pairs=TINY_PAIRS, epochs=3, warmup_epochs=0, learning_rate=0.005,
        embedding_dim=16, lstm_units=(24, 8), batch_size=64,
        pooling="last", head="manhattan", pair_dropout=0.0,  # the notebook's model; tiny_mlp_model is the default's
    )
    return train_run(config)


@pytest.fixture(scope="session")
def tiny_model(tiny_run: Path, owned_pairs: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported by export/ into a model folder (parity-checked on export), its report on owned pairs."""
    from export.folder import export_run

    out = tmp_path_factory.mktemp("models") / "tiny"
    reports = [str(owned_pairs(2500, seed=10 + i, name=name)) for i, name in enumerate(TINY_REPORTS)]
    export_run(tiny_run, out, report_files=reports)
    return out


@pytest.fixture(scope="session")
def tiny_mlp_model(owned_pairs: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run of the max-mean pooled encoder with the learned mlp head, exported (parity-checked) with no
    report files."""
    pytest.importorskip("tensorflow", reason="training needs the [train] extra")
    from export.folder import export_run
    from train.run import TrainConfig, train_run

    root = tmp_path_factory.mktemp("mlp")
    run = train_run(TrainConfig(
        out=str(root / "run"), train_files=[str(owned_pairs(1200, seed=8))], max_pairs=1200, epochs=2,
        warmup_epochs=0, embedding_dim=8, lstm_units=(8, 4), pooling="max-mean", head="mlp", head_units=6,
        head_dropout=0.2, learning_rate=0.005,
    ))
    export_run(run, root / "model", report_files=[])
    return root / "model"
