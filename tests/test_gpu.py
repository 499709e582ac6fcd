"""The CUDA provider for real, on a machine with an NVIDIA GPU and the GPU build (`pip install './gpu[cuda]'`):
`pytest -m gpu`. Elsewhere every test here is skipped with the reason CUDA cannot start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamese_runtime import ProviderUnavailableError, Scorer
from siamese_runtime.bench.pair_files import read_pair_rows
from siamese_runtime.providers import CUDA, GPU_BATCH_SIZE, GPU_TOKEN_BUDGET

from .conftest import run_cli
from .test_session import CUDA_FAILURE

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA_FAILURE is not None, reason=f"CUDA cannot run here: {CUDA_FAILURE}")]
PAIRS_PER_FILE = 1000


@pytest.fixture(scope="module")
def real_rows(data: Path) -> list[list[str]]:
    """2,000 real labelled pairs: the first 1,000 of BQ test and of LCQMC test."""
    rows: list[list[str]] = []
    for name in ("bq/test.tsv", "lcqmc/test.tsv"):
        rows += [row.columns for row, _ in zip(read_pair_rows(str(data / name)), range(PAIRS_PER_FILE))]
    return rows


@pytest.fixture(scope="module")
def real_pairs(real_rows: list[list[str]]) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in real_rows]


@pytest.fixture(scope="module")
def real_labels(real_rows: list[list[str]]) -> np.ndarray:
    return np.array([row[2] == "1" for row in real_rows])


@pytest.fixture(scope="module")
def cpu_scores(real_pairs: list[tuple[str, str]]) -> np.ndarray:
    return Scorer(providers="cpu", precision="fp32").score(real_pairs)


def test_the_session_really_runs_on_cuda_in_big_batches_without_tf32() -> None:
    scorer = Scorer(providers="cuda", precision="fp32")
    assert scorer.providers[0] == CUDA and scorer.encoder.session.get_providers()[0] == CUDA
    assert scorer.provider_options[CUDA]["device_id"] == "0"
    assert scorer.provider_options[CUDA]["use_tf32"] == "0"
    assert (scorer.encoder.batch_size, scorer.encoder.token_budget) == (GPU_BATCH_SIZE, GPU_TOKEN_BUDGET)


def test_fp32_on_cuda_matches_cpu_fp32(real_pairs: list[tuple[str, str]], cpu_scores: np.ndarray) -> None:
    difference = np.abs(Scorer(providers="cuda", precision="fp32").score(real_pairs) - cpu_scores)
    assert difference.max() < 1e-5, f"fp32 on CUDA moves a score by {difference.max():.2e}"


def test_fp16_on_cuda_keeps_cpu_fp32_decisions_within_the_exported_bound(
    real_pairs: list[tuple[str, str]], real_labels: np.ndarray, cpu_scores: np.ndarray
) -> None:
    """fp16 arithmetic (an 11-bit mantissa through 64 LSTM steps) moves scores by a few 1e-3, unlike the CPU's fp16
    model, which computes in fp32: what must hold is accuracy within the bound export set for fp16."""
    cuda = Scorer(providers="cuda", precision="fp16")
    assert cuda.providers[0] == CUDA and cuda.precision == "fp16"
    scores = cuda.score(real_pairs)
    assert np.abs(scores - cpu_scores).max() < 5e-3
    record = cuda.model.variant_record("fp16")
    assert record is not None
    accuracy = {name: float(np.mean((s >= cuda.threshold) == real_labels)) for name, s in
                (("cuda_fp16", scores), ("cpu_fp32", cpu_scores))}
    assert 100 * (accuracy["cpu_fp32"] - accuracy["cuda_fp16"]) <= record["bound_points"], accuracy


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
