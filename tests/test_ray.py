"""The Ray engine on a local 2-CPU Ray cluster: same scores, rows and bad-row policies as the local job."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="the Ray engine needs the [ray] extra")
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import ray  # noqa: E402
import ray.data  # noqa: E402

from siamese_runtime import BadRowError, Scorer, ScorerSettings, SiameseRuntimeError  # noqa: E402
from siamese_runtime.errors import UsageError  # noqa: E402
from siamese_runtime.job import JobOptions, run_job  # noqa: E402
from siamese_runtime.ray import (  # noqa: E402
    PairColumns,
    RejectCollector,
    read_pairs,
    rejected_rows,
    require_ray,
    score_dataset,
)
from siamese_runtime.ray.job import ClusterOptions, run_ray_job  # noqa: E402

from .conftest import head_of, run_cli  # noqa: E402

# Ray counts a file's read task as one input; the blocks it streams do reach both actors (see the CLI's note).
pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore:The minimum number of concurrent actors")]
CPU = ScorerSettings(providers="cpu")
TWO_ACTORS = ClusterOptions(actors=2)
NO_PROGRESS_S = 120


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[str]:
    """One local Ray cluster with 2 CPUs for the whole file; its address for subprocesses. A job that stops
    making progress fails after NO_PROGRESS_S here and in the subprocesses, not after Ray's 30 minutes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_DATA_EXECUTION_NO_PROGRESS_TIMEOUT_S", str(NO_PROGRESS_S))
        patch.setattr(ray.data.DataContext.get_current(), "execution_no_progress_timeout_s", NO_PROGRESS_S)
        ray.init(num_cpus=2, include_dashboard=False)
        yield ray.get_runtime_context().gcs_address
        ray.shutdown()


def by_id(path: Path, key: str = "line") -> dict[object, dict]:
    rows = pq.read_table(path).to_pylist()
    table = {row[key]: row for row in rows}
    assert len(table) == len(rows)
    return table


@pytest.mark.parametrize("name", ["bq", "lcqmc"])
def test_official_test_files_score_as_the_local_job(data: Path, tmp_path: Path, name: str) -> None:
    source = data / name / "test.tsv"
    local, out = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    run_job(Scorer(providers="cpu"), JobOptions(str(source), str(local)))
    summary = run_ray_job(CPU, JobOptions(str(source), str(out)), TWO_ACTORS)
    expected = pq.read_table(local).to_pylist()
    scored = by_id(out)
    assert summary.rows == summary.written == len(scored) == len(expected) and summary.bad_rows == 0
    assert sorted(scored) == list(range(1, len(expected) + 1))  # headerless: the line is the row number
    for line, row in enumerate(expected, start=1):
        unscored = {k: v for k, v in row.items() if k != "score"}
        assert {k: v for k, v in scored[line].items() if k != "score"} == {**unscored, "line": line}
    difference = np.abs(
        np.array([scored[i + 1]["score"] for i in range(len(expected))]) - [r["score"] for r in expected]
    )
    assert difference.max() <= 1e-6


def test_stop_names_the_row_like_the_local_job_and_leaves_nothing(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    with pytest.raises(BadRowError) as local:
        run_job(Scorer(providers="cpu"), JobOptions(str(broken), str(tmp_path / "local.tsv")))
    with pytest.raises(BadRowError) as remote:
        run_ray_job(CPU, JobOptions(str(broken), str(out), chunk_rows=64), TWO_ACTORS)
    assert str(remote.value) == str(local.value) == f"{broken}:11: found 2 columns, expected 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tsv"]


@pytest.mark.parametrize("policy", ["skip", "null"])
def test_skip_and_null_write_the_local_jobs_rejects(broken: Path, tmp_path: Path, policy: str) -> None:
    columns = dict(left="2", right="3", id_column="1", on_bad_row=policy, chunk_rows=64)
    local, out = tmp_path / "local.parquet", tmp_path / "ray"
    run_job(Scorer(providers="cpu"), JobOptions(str(broken), str(local), **columns))
    summary = run_ray_job(CPU, JobOptions(str(broken), str(out), **columns), TWO_ACTORS)

    def rejects(path: Path) -> list[tuple]:
        entries = [json.loads(line) for line in Path(f"{path}.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
        return [(e["line"], e["id"], e["reason"]) for e in entries]

    assert rejects(out) == rejects(local) and len(rejects(out)) == 4
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{local}.rejects.jsonl").read_bytes()  # one format
    expected = {row["column1"]: row["score"] for row in pq.read_table(local).to_pylist()}
    scored = by_id(out, "column1")  # an id column: rows keep it, and no line column is added
    assert summary.rows == 501 and summary.bad_rows == 4 and summary.written == len(scored) == len(expected)
    assert "line" not in next(iter(scored.values()))
    assert all(
        (scored[k]["score"] is None) if v is None else abs(scored[k]["score"] - v) <= 1e-6 for k, v in expected.items()
    )


@pytest.mark.parametrize("policy", ["skip", "null"])
def test_rejects_collected_in_the_scoring_pass_are_those_of_a_pass_of_their_own(broken: Path, policy: str) -> None:
    """The differential check of the one-pass rejects: the same rows and reasons as rejected_rows' own read of
    the file, once each and in input order, though 2 actors met them in 64-row batches in any order."""
    pairs, columns = read_pairs(str(broken), 64), PairColumns("column2", "column3", "column1")
    collector = RejectCollector()
    scored = score_dataset(pairs, columns, CPU, actors=2, batch_size=64, on_bad_row=policy, rejects=collector)
    assert scored.count() == 501 - 4 * (policy == "skip")
    collector.add(collector.collected(columns).slice(0, 2))  # a retried batch hands its rows over again
    collected, separate = collector.collected(columns).to_pylist(), rejected_rows(pairs, columns).take_all()
    assert len(collected) == 4 and collected == sorted(separate, key=lambda row: int(row["line"]))
    assert [row["line"] for row in collected] == sorted(int(row["line"]) for row in collected)


def test_dataset_api_with_an_id_column_and_predict() -> None:
    pairs = [("花呗怎么还款", "花呗如何还钱"), ("借呗额度", "借呗的额度"), ("今天天气", "信用卡还款")]
    dataset = ray.data.from_items([{"key": f"k{i}", "q1": a, "q2": b} for i, (a, b) in enumerate(pairs)])
    scored = score_dataset(dataset, PairColumns("q1", "q2", "key"), CPU, predict=True).take_all()
    scorer = Scorer(providers="cpu")
    expected = dict(zip(("k0", "k1", "k2"), scorer.score(pairs).tolist()))
    assert sorted(row["key"] for row in scored) == ["k0", "k1", "k2"]
    for row in scored:
        assert list(row) == ["key", "q1", "q2", "predicted", "score"]
        assert abs(row["score"] - expected[row["key"]]) <= 1e-6
        assert row["predicted"] == (row["score"] >= scorer.threshold)


def test_rows_without_an_id_are_refused() -> None:
    dataset = ray.data.from_items([{"q1": "花呗", "q2": "借呗"}])
    with pytest.raises(SiameseRuntimeError, match="rows need an id"):
        score_dataset(dataset, PairColumns("q1", "q2"), CPU).take_all()


def test_a_folder_of_files_keeps_path_and_line(pairs_500: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pairs"
    folder.mkdir()
    head_of(pairs_500, 30, folder / "a.tsv")
    head_of(pairs_500, 20, folder / "b.tsv")
    (folder / "_SUCCESS").write_text("")
    rows = score_dataset(read_pairs(str(folder)), PairColumns("column1", "column2"), CPU).take_all()
    keys = sorted((Path(row["path"]).name, row["line"]) for row in rows)
    assert keys == [("a.tsv", i) for i in range(1, 31)] + [("b.tsv", i) for i in range(1, 21)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_csv_jsonl_and_parquet_by_uri_keep_their_ids(pairs_500: Path, tmp_path: Path, suffix: str) -> None:
    pairs = [line.split("\t")[:2] for line in pairs_500.read_text("utf-8").splitlines()[:40]]
    rows = [{"id": f"r{i}", "sentence1": a, "sentence2": b} for i, (a, b) in enumerate(pairs)]
    source = tmp_path / f"pairs{suffix}"
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), source)
    elif suffix == ".jsonl":
        source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    else:
        with source.open("w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, ["id", "sentence1", "sentence2"])
            writer.writeheader()
            writer.writerows(rows)
    out = tmp_path / "out.parquet"
    summary = run_ray_job(CPU, JobOptions(source.as_uri(), str(out)), TWO_ACTORS)
    scored = by_id(out, "id")
    expected = dict(zip((r["id"] for r in rows), Scorer(providers="cpu").score(pairs).tolist()))
    assert summary.rows == len(scored) == 40 and sorted(scored) == sorted(expected)
    assert max(abs(scored[k]["score"] - v) for k, v in expected.items()) <= 1e-6


def test_cli_engine_ray_in_a_subprocess(pairs_500: Path, tmp_path: Path, cluster: str) -> None:
    out = tmp_path / "scores"
    result = run_cli("score", str(pairs_500), "-o", str(out), "--engine", "ray", "--actors", "2", "--predict",
                     "--provider", "cpu", "--ray-address", cluster)
    assert result.returncode == 0, result.stderr.decode()
    assert "scored 500 rows on Ray with 2 actors" in result.stderr.decode()
    scored = by_id(out)
    expected = Scorer(providers="cpu").score(
        [line.split("\t")[:2] for line in pairs_500.read_text("utf-8").splitlines()]
    )
    assert sorted(scored) == list(range(1, 501))
    assert max(abs(scored[i + 1]["score"] - s) for i, s in enumerate(expected.tolist())) <= 1e-6
    refused = run_cli("score", str(pairs_500), "-o", str(tmp_path / "o.tsv"), "--engine", "ray")
    assert refused.returncode == 2 and b"the ray engine writes Parquet" in refused.stderr  # usage: exit 2


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SiameseRuntimeError, match=r"pip install 'siamese-runtime\[ray\]'"):
        require_ray()


def test_non_text_json_values_are_bad_rows_as_in_the_local_job(tmp_path: Path) -> None:
    source = tmp_path / "pairs.jsonl"
    rows = [{"id": 1, "sentence1": "花呗怎么还款", "sentence2": "花呗如何还钱"},
            {"id": 2, "sentence1": 12, "sentence2": "借呗"},
            {"id": 3, "sentence1": "借呗额度", "sentence2": ["a", "list"]}]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    options = dict(on_bad_row="skip")
    run_job(Scorer(providers="cpu"), JobOptions(str(source), str(tmp_path / "local.jsonl"), **options))
    run_ray_job(CPU, JobOptions(str(source), str(tmp_path / "ray.parquet"), **options), TWO_ACTORS)

    def reasons(path: Path) -> list[tuple]:
        entries = [json.loads(line) for line in Path(f"{path}.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
        return sorted((str(e["id"]), e["reason"]) for e in entries)  # the ray engine's cells are text

    assert reasons(tmp_path / "ray.parquet") == reasons(tmp_path / "local.jsonl") == [
        ("2", "sentence1 is int, not text"), ("3", "sentence2 is list, not text")]
    ray_rejects, local_rejects = (Path(f"{tmp_path / name}.rejects.jsonl") for name in ("ray.parquet", "local.jsonl"))
    assert ray_rejects.read_bytes() == local_rejects.read_bytes()  # byte for byte: one reject-line format
    assert [row["id"] for row in pq.read_table(tmp_path / "ray.parquet").to_pylist()] == ["1"]


@pytest.mark.parametrize(("cpus", "gpus", "said"), [(1, 0.5, "0.5 GPUs, and no node of the cluster has any"),
                                                    (64, 0, "64 CPUs, and no node of the cluster has more than")])
def test_actors_no_node_can_hold_are_refused_before_any_work(pairs_500: Path, tmp_path: Path, cpus: float,
                                                             gpus: float, said: str) -> None:
    """Ray would wait for such a node for ever on the local cluster, saying so only in its autoscaler's log."""
    out = tmp_path / "out.parquet"
    with pytest.raises(UsageError, match=said):
        run_ray_job(CPU, JobOptions(str(pairs_500), str(out)), ClusterOptions(num_cpus=cpus, num_gpus=gpus))
    assert not out.exists()
