"""Per-file work on a real Dask cluster: a scheduler and two worker processes started here, on
127.0.0.1, stopped after. Results equal those of the single-process path."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import unitsel
from ingest.arrays import ingest_arrays
from ingest.texts import embed_texts

from .conftest import REPO
from .layers import load

pytestmark = pytest.mark.slow  # minutes of work: `make test` runs it, `make test-quick` not

DASK = str(Path(sys.executable).with_name("dask"))
SUMMARIES = ("class_stats", "unit_top", "unit_summaries")


def worker(address: str, name: str, folder: Path, *options: str) -> subprocess.Popen[bytes]:
    """A single-threaded `dask worker` process for the scheduler at `address` (with more
    `options`, e.g. "--no-nanny": one process to kill), started in an empty `folder` of its
    own. It imports this repository's `tests` too, so a test's own module-level functions can
    be tasks."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    folder.mkdir()
    return subprocess.Popen(
        [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", "--name", name,
         "--no-dashboard", *options], env={**os.environ, "PYTHONPATH": path}, cwd=folder,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def cluster(folder: Path, workers: int, *options: str
            ) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A `dask scheduler` on 127.0.0.1 and `workers` workers (`worker`), stopped when the
    block ends: the scheduler's address and the workers' processes."""
    file = folder / "scheduler.json"
    processes = [subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
         str(file), "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(120):
            if file.exists() and file.stat().st_size:
                break
            time.sleep(0.5)
        address = json.loads(file.read_text())["address"]
        processes += [worker(address, f"worker-{i}", folder / f"worker-{i}", *options)
                      for i in range(workers)]
        if workers:
            from distributed import Client

            with Client(address) as client:
                client.wait_for_workers(workers, timeout=120)
        yield address, processes[1:]
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with cluster(tmp_path_factory.mktemp("dask"), 2) as (address, _):
        yield address


def small_warehouse(folder: Path, root: Path) -> None:
    """A warehouse at `root` with one layer of 10 stimuli x 6 units, from files in `folder`."""
    np.save(folder / "acts.npy", np.arange(60, dtype=np.float32).reshape(10, 6))
    (folder / "labels.csv").write_text(
        "stimulus,label\n" + "".join(f"{s},c{s % 2}\n" for s in range(10)))
    with unitsel.Transaction(root, progress=False) as tx:
        ingest_arrays(tx, folder / "acts.npy", folder / "labels.csv", model_id="m",
                      stimulus_set="s", layer="fc")


def summaries(root: Path) -> dict[str, pl.DataFrame]:
    return {t: unitsel.scan(t, root).collect().sort(pl.all()) for t in SUMMARIES}


def test_summaries_on_two_workers_equal_one_process(
        tmp_path: Path, scheduler: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from distributed import Client

    rng = np.random.default_rng(3)
    np.save(tmp_path / "acts.npy", (rng.integers(0, 6, size=(50, 24)) * 0.5).astype(np.float32))
    (tmp_path / "labels.csv").write_text("stimulus,label,is_correct\n" + "".join(
        f"{s},c{s % 4},{str(s % 3 > 0).lower()}\n" for s in range(50)))
    monkeypatch.setattr("unitsel.lake.DATA_FILE_ROWS", 200)  # 4 units a file: 6 files, a task each
    results = {}
    for name, address in (("local", None), ("dask", scheduler)):
        with unitsel.Transaction(tmp_path / name, scheduler=address, progress=False) as tx:
            ingest_arrays(tx, tmp_path / "acts.npy", tmp_path / "labels.csv", model_id="m",
                          stimulus_set="s", layer="fc")
        results[name] = summaries(tmp_path / name)
    for table, frame in results["local"].items():
        assert frame.height > 0
        assert_frame_equal(results["dask"][table], frame)
    with Client(scheduler) as client:
        finished = client.run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.task_prefixes["summarise_files"]
            .state_counts["memory"])
    assert finished >= 6, "each of the 6 data files was summarised by a worker"


def test_summarise_command_rebuilds_on_the_cluster(tmp_path: Path, scheduler: str) -> None:
    root = tmp_path / "warehouse"
    small_warehouse(tmp_path, root)
    before = summaries(root)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("unitsel")), "summarise", "--rebuild",
         "--scheduler", scheduler, "--root", str(root)],
        capture_output=True, text=True, check=True)
    assert "rebuilt the summaries of 1 partitions" in result.stdout
    assert "scheduler" in result.stderr  # the progress bar names where the work ran
    for table, frame in summaries(root).items():
        assert_frame_equal(frame, before[table])


def test_analyses_on_the_cluster_equal_one_process(tmp_path: Path, scheduler: str) -> None:
    """Unit distances (a task per measure), Mantel tests (a task per functional partition,
    read by the worker) and concept scores (a task per group of units) give the rows of the
    in-process run, and the workers ran those tasks."""
    from distributed import Client

    from unitsel.analyses.concept_scores import run_concept_scores
    from unitsel.analyses.distances import run_unit_distances
    from unitsel.analyses.mantel import run_mantel

    from .test_concept_scores import HashText
    from .test_distances import WNIDS, load_semantic

    rng = np.random.default_rng(5)
    n = len(WNIDS)  # one unit per concept, for the Mantel test
    acts = rng.random((40, n)).astype(np.float32)
    encoder = HashText()
    results = {}
    for name, address in (("local", None), ("dask", scheduler)):
        root = tmp_path / name
        load(root, acts, [str(i % 4) for i in range(40)])
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            distances = run_unit_distances(tx, "m", "s", "l", "none",
                                           ("minkowski", "pearson", "spearman"))
        load_semantic(root, rng=np.random.default_rng(2))
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            mantel = run_mantel(tx, "toy", ("m",), "l", permutations=99, seed=1)
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            embed_texts(tx, encoder, "toy-texts", ["dog", "cat", "red car", "striped cat"])
        with unitsel.Transaction(root) as tx:
            tx.write(pl.DataFrame({
                "encoder": encoder.name, "stimulus_set": "s",
                "stimulus": pl.Series(range(40), dtype=pl.Int32), "crop": "center",
                "embedding": pl.Series(list(encoder.encode_texts(
                    [f"cat {i}" if i % 2 else f"dog {i}" for i in range(40)])),
                    dtype=pl.List(pl.Float32))}), "image_embeddings")
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            concepts = run_concept_scores(tx, "m", "s", "l", "none", encoder.name, "toy-texts",
                                          n=5, group=3)
        results[name] = [frame.drop("snapshot_id", strict=False).sort(pl.all())
                         for frame in (distances, mantel, concepts)]
    for local, dask in zip(results["local"], results["dask"], strict=True):
        assert local.height > 0
        assert_frame_equal(dask, local)
    with Client(scheduler) as client:
        ran = client.run_on_scheduler(lambda dask_scheduler: {
            name: dask_scheduler.task_prefixes[name].state_counts["memory"]
            for name in ("data_pairs", "test_partition", "score_group")  # Dask drops the "_"
            if name in dask_scheduler.task_prefixes})
    assert ran == {"data_pairs": 3, "test_partition": 3, "score_group": 3}
