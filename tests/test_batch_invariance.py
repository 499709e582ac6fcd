"""Batch invariance: a sentence's encoding and a pair's score have the same bits whatever they are batched,
chunked, cached or threaded with. Resume, the cache and `--chunk-rows` rely on it.

Every step is checked the same way, as a property over real sentences and random neighbours: the learned head
(numpy), the encoder and its pooling (onnxruntime), the Scorer that joins them, and the job's bytes. BLAS
kernels differ by CPU (OpenBLAS takes Haswell kernels on AVX2, SkylakeX on AVX-512) and round a row by its
position in a block, so these tests are meant to run on both kinds of machine; `cpu_features` names the kind.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from siamese_runtime import Scorer
from siamese_runtime.heads import LearnedHead

from .conftest import DEFAULT_MODEL, run_cli
from .fixtures.questions import question_pairs

SCORER = Scorer(providers="cpu", cache_size=0)
with np.load(DEFAULT_MODEL / "head.npz") as weights:
    HEAD = LearnedHead.from_arrays(weights, SCORER.model.encoding_dim)  # the default model's own head


def real_sentences() -> list[str]:
    """Distinct sentences of many lengths: the owned questions, each also cut and doubled."""
    base = list(dict.fromkeys(s for left, right, _ in question_pairs(400) for s in (left, right)))
    return list(dict.fromkeys([*base, *(s[: len(s) // 2] for s in base), *(s * 3 for s in base[:50])]))


SENTENCES = real_sentences()
ENCODINGS = SCORER.encode(SENTENCES)


def cpu_features() -> str:
    """AVX-512 or AVX2 (what onnxruntime's and OpenBLAS's kernels are chosen by), for failure messages."""
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "neither AVX2 nor AVX-512"


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data(), st.sampled_from([1, 2]))
def test_the_learned_head_scores_a_pair_the_same_wherever_it_sits_and_with_whatever_neighbours(
    size: int, data: st.DataObject, blas_threads: int
) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    left, right = ENCODINGS[rng.integers(0, len(ENCODINGS), size)], ENCODINGS[rng.integers(0, len(ENCODINGS), size)]
    position = data.draw(st.integers(0, size - 1))
    with threadpool_limits(blas_threads, user_api="blas"):
        together = HEAD(left, right)
        alone = HEAD(left[position : position + 1], right[position : position + 1])
    assert alone[0] == together[position], (
        f"pair {position} of {size} scores {together[position]!r} among its neighbours and {alone[0]!r} alone "
        f"({cpu_features()}, {blas_threads} BLAS threads)")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, len(SENTENCES) - 1), min_size=2, max_size=120, unique=True),
       st.sampled_from([(1, 64, 1 << 14), (2, 64, 1 << 14), (1, 7, 64), (2, 300, 1 << 16)]))
def test_an_encoding_has_the_same_bits_alone_and_in_any_batch(indices: list[int], config: tuple[int, int, int]) -> None:
    """Real sentences of other lengths pad a batch to other widths; pooling must ignore the padding exactly."""
    threads, batch_size, budget = config
    scorer = Scorer(SCORER.model, providers="cpu", intra_op_num_threads=threads, batch_size=batch_size,
                    token_budget=budget, cache_size=0)
    together = scorer.encode([SENTENCES[i] for i in indices])
    differ = [i for i, row in zip(indices, together) if not np.array_equal(row, ENCODINGS[i])]
    assert not differ, (f"{len(differ)} of {len(indices)} encodings differ from the sentence encoded alone "
                        f"({cpu_features()}, threads {threads}, batch {batch_size}), e.g. {SENTENCES[differ[0]]!r}")


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1), st.sampled_from([0, 5, 100_000]))
def test_a_pair_scores_the_same_alone_and_in_any_call_with_or_without_the_cache(
    size: int, seed: int, cache_size: int
) -> None:
    rng = random.Random(seed)
    left, right = rng.choices(SENTENCES, k=size), rng.choices(SENTENCES, k=size)
    scorer = Scorer(SCORER.model, providers="cpu", cache_size=cache_size)
    together = scorer.score(left, right)
    alone = np.concatenate([SCORER.score([a], [b]) for a, b in zip(left, right)])
    np.testing.assert_array_equal(together, alone, err_msg=cpu_features())
    np.testing.assert_array_equal(scorer.score(left, right), alone, err_msg=f"second call, {cpu_features()}")


@pytest.mark.parametrize("options", [["--chunk-rows", "1"], ["--chunk-rows", "37", "--batch-size", "5"],
                                     ["--threads", "1", "--cache-size", "0"]])
def test_the_job_writes_the_same_bytes_whatever_its_chunks_batches_threads_and_cache(
    tmp_path: Path, options: list[str]
) -> None:
    rows = [f"{a}\t{b}\t0\n" for a, b in zip(SENTENCES, random.Random(3).sample(SENTENCES, len(SENTENCES)))][:400]
    (tmp_path / "pairs.tsv").write_text("".join(rows), encoding="utf-8")
    outputs = []
    for extra in ([], options):
        out = tmp_path / f"out{len(outputs)}.tsv"
        result = run_cli("score", str(tmp_path / "pairs.tsv"), "-o", str(out), "--model", str(DEFAULT_MODEL), *extra)
        assert result.returncode == 0, result.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1], f"{' '.join(options)} changed the output's bytes ({cpu_features()})"
