"""Style and types: ruff over the whole repository and mypy over the runtime, export, training and benchmarks
report nothing, as in CI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.lint


def run_tool(*args: str) -> subprocess.CompletedProcess:
    """`python -m <tool> ...` from the repository root, so it reads pyproject.toml's settings."""
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=600
    )


def test_ruff_finds_nothing() -> None:
    pytest.importorskip("ruff", reason="ruff is in the [test] extra")
    result = run_tool("ruff", "check", ".")
    assert result.returncode == 0, f"ruff check . exited {result.returncode}:\n{result.stdout}{result.stderr}"


def test_mypy_finds_nothing() -> None:
    pytest.importorskip("mypy", reason="mypy is in the [test] extra")
    result = run_tool("mypy")  # [tool.mypy] names the files: siamese_runtime, export, train, benchmarks
    assert result.returncode == 0, f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}"
