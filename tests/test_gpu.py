"""The CUDA provider for real, on a machine with an NVIDIA GPU and the GPU build (`pip install './gpu[cuda]'`):
`pytest -m gpu`. Elsewhere every test here is skipped with the reason CUDA cannot start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import ProviderUnavailableError, Scorer
from siamese_runtime.io.pair_files import read_pair_rows
from siamese_runtime.session import CUDA

from .conftest import run_cli
from .test_session import CUDA_FAILURE

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA_FAILURE is not None, reason=f"CUDA cannot run here: {CUDA_FAILURE}")]
PAIRS_PER_FILE = 1000


@pytest.fixture(scope="module")
def real_pairs(data: Path) -> list[tuple[str, str]]:
    """2,000 real pairs: the first 1,000 of BQ test and of LCQMC test."""
    pairs: list[tuple[str, str]] = []
    for name in ("bq/test.tsv", "lcqmc/test.tsv"):
        rows = read_pair_rows(str(data / name))
        pairs += [(row.columns[0], row.columns[1]) for row, _ in zip(rows, range(PAIRS_PER_FILE))]
    return pairs


@pytest.fixture(scope="module")
def cpu_scores(real_pairs: list[tuple[str, str]]) -> np.ndarray:
    return Scorer(providers="cpu", precision="fp32").score(real_pairs)


def test_the_session_really_runs_on_cuda() -> None:
    scorer = Scorer(providers="cuda", precision="fp32")
    assert scorer.providers[0] == CUDA and scorer.session.get_providers()[0] == CUDA
    assert scorer.provider_options[CUDA]["device_id"] == "0"


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-5), ("fp16", 1e-3)])
def test_cuda_scores_match_cpu_fp32(
    real_pairs: list[tuple[str, str]], cpu_scores: np.ndarray, precision: str, tolerance: float
) -> None:
    cuda = Scorer(providers="cuda", precision=precision)
    assert cuda.providers[0] == CUDA and cuda.precision == precision
    difference = np.abs(cuda.score(real_pairs) - cpu_scores)
    assert difference.max() < tolerance, f"{precision} on CUDA moves a score by {difference.max():.2e}"


def test_auto_runs_cuda_in_fp16() -> None:
    scorer = Scorer(providers="auto")
    assert scorer.providers[0] == CUDA and scorer.precision == "fp16"


def test_a_gpu_that_does_not_exist_is_a_clear_error_and_stdout_stays_clean(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailableError, match="GPU 99 was requested"):
        Scorer(providers="cuda:99")
    pairs = tmp_path / "one.tsv"
    pairs.write_text("花呗怎么还款\t花呗如何还款\n", encoding="utf-8")
    result = run_cli("score", str(pairs), "-o", "-", "--provider", "cuda:99")
    assert result.returncode == 1 and result.stdout == b""
    stderr = result.stderr.decode()
    assert "GPU 99" in stderr and "Traceback" not in stderr


def test_a_job_on_cuda_writes_every_row_with_cpu_scores(data: Path, tmp_path: Path) -> None:
    source = data / "lcqmc" / "test.tsv"
    outputs = {}
    for provider in ("cuda", "cpu"):
        outputs[provider] = tmp_path / f"{provider}.tsv"
        result = run_cli("score", str(source), "-o", str(outputs[provider]), "--provider", provider,
                         "--precision", "fp32")
        assert result.returncode == 0, result.stderr.decode()
    rows = {provider: [line.split("\t") for line in output.read_text(encoding="utf-8").splitlines()]
            for provider, output in outputs.items()}
    assert len(rows["cuda"]) == len(rows["cpu"]) == len(source.read_text(encoding="utf-8").splitlines())
    assert [r[:-1] for r in rows["cuda"]] == [r[:-1] for r in rows["cpu"]]
    scores = {p: np.array([float(r[-1]) for r in rows[p]]) for p in rows}
    assert np.abs(scores["cuda"] - scores["cpu"]).max() < 1e-5
