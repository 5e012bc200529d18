"""A warehouse whose data files live in an S3-compatible bucket: moto's server, a PostgreSQL
catalog server and a Dask scheduler with two workers, each started here on 127.0.0.1 (the
workers in empty folders of their own, with nothing but the AWS_* variables), stopped after.
Every result equals the same job's on local disk."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import unitsel
from ingest.arrays import ingest_arrays
from unitsel import storage
from unitsel.integrity import check

from .conftest import REPO
from .layers import load
from .s3 import S3Server
from .test_dask import SUMMARIES, cluster
from .test_distances import load_semantic

pytestmark = pytest.mark.slow  # servers and a cluster: `make test` runs it, `make test-quick` not

UNITSEL = str(Path(sys.executable).with_name("unitsel"))


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def aws(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process (and what it starts) reaches the server with the standard variables."""
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return s3.env


@pytest.fixture(scope="module")
def bucket_cluster(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two workers, each worker started in an empty folder of its own (none
    sees a root or a data folder), with the S3 variables."""
    saved = dict(os.environ)
    os.environ.update(s3.env)  # what the cluster's processes start with
    try:
        with cluster(tmp_path_factory.mktemp("bucket-cluster"), 2) as (address, _):
            yield address
    finally:
        os.environ.clear()
        os.environ.update(saved)


def small_layer(folder: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    np.save(folder / "acts.npy", (rng.integers(0, 5, size=(40, 12)) * 0.5).astype(np.float32))
    (folder / "labels.csv").write_text("stimulus,label\n" + "".join(
        f"{s},c{s % 4}\n" for s in range(40)))
    return folder / "acts.npy", folder / "labels.csv"


def tables(root: Path, names: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    return {t: unitsel.scan(t, root).collect().drop("snapshot_id", strict=False)
            .sort(pl.all()) for t in names}


def test_a_cluster_sharing_only_catalog_and_bucket_equals_local_disk(
        tmp_path: Path, s3: S3Server, aws: dict[str, str], bucket_cluster: str,
        postgres_server: Callable[[], str]) -> None:
    """Ingest, a summary rebuild on the cluster (the CLI) and Mantel tests on the cluster
    give the rows of the same jobs on local disk; the root keeps only its two pointers."""
    from distributed import Client

    from unitsel.analyses.distances import run_unit_distances
    from unitsel.analyses.mantel import run_mantel

    from .test_distances import WNIDS

    acts, labels = small_layer(tmp_path)
    rng = np.random.default_rng(5)
    unit_acts = rng.random((40, len(WNIDS))).astype(np.float32)
    bucket = s3.new_bucket()
    roots = {"local": tmp_path / "local", "bucket": tmp_path / "bucket"}
    unitsel.init(roots["bucket"], postgres_server(), data=f"s3://{bucket}/lake")
    results = {}
    for name, root in roots.items():
        address = bucket_cluster if name == "bucket" else None
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            ingest_arrays(tx, acts, labels, model_id="a", stimulus_set="s", layer="fc")
        if name == "bucket":
            subprocess.run([UNITSEL, "summarise", "--rebuild", "--scheduler", address,
                            "--root", str(root)], check=True, capture_output=True)
        load(root, unit_acts, [str(i % 4) for i in range(40)])
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            run_unit_distances(tx, "m", "s", "l", "none", ("pearson", "spearman"))
        load_semantic(root, rng=np.random.default_rng(2))
        with unitsel.Transaction(root, scheduler=address, progress=False) as tx:
            run_mantel(tx, "toy", ("m",), "l", permutations=99, seed=1)
        results[name] = tables(root, (*SUMMARIES, "unit_distances", "mantel_results"))
    for table, frame in results["local"].items():
        assert frame.height > 0
        assert_frame_equal(results["bucket"][table], frame)
    assert sorted(p.name for p in roots["bucket"].iterdir()) == ["catalog.txt", "data.txt"]
    recorded = "".join(p.read_text() for p in roots["bucket"].iterdir())
    assert aws["AWS_SECRET_ACCESS_KEY"] not in recorded and aws["AWS_ACCESS_KEY_ID"] not in recorded
    keys = s3.keys(bucket)
    assert any(k.startswith("lake/data/main/activations/") for k in keys)
    assert any(k.startswith("lake/data/main/mantel_results/") for k in keys)
    with Client(bucket_cluster) as client:
        ran = client.run_on_scheduler(lambda dask_scheduler: {
            name: dask_scheduler.task_prefixes[name].state_counts["memory"]
            for name in ("summarise_files", "test_partition")})
    assert ran["summarise_files"] >= 2, "the ingest's and the rebuild's summaries"
    assert ran["test_partition"] == 2, "a Mantel task per functional measure"


def test_a_killed_ingest_leaves_the_bucket_and_summaries_agreeing(
        tmp_path: Path, s3: S3Server, aws: dict[str, str]) -> None:
    """kill -9 after the data files are in the bucket, before the commit: the committed
    snapshot and its summaries agree, the dead job's objects are orphans only, and `clean`
    deletes exactly those."""
    acts, labels = small_layer(tmp_path)
    bucket = s3.new_bucket()
    root = tmp_path / "warehouse"
    with unitsel.Transaction(root, data=f"s3://{bucket}/lake", progress=False) as tx:
        ingest_arrays(tx, acts, labels, model_id="a", stimulus_set="s", layer="fc")
    before = tables(root, ("activations", *SUMMARIES))
    committed = s3.keys(bucket)
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        import numpy as np
        import unitsel, unitsel.lake
        from ingest.arrays import ingest_arrays

        def die(*args, **kwargs):  # the files are written; the catalog never hears of them
            os.kill(os.getpid(), signal.SIGKILL)

        unitsel.lake.register_files = die
        np.save({str(tmp_path / 'more.npy')!r}, np.ones((40, 12), np.float32))
        with unitsel.Transaction({str(root)!r}, progress=False) as tx:
            ingest_arrays(tx, Path({str(tmp_path / 'more.npy')!r}), Path({str(labels)!r}),
                          model_id="b", stimulus_set="s", layer="fc")
    """)
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert child.returncode == -9
    orphans = sorted(set(s3.keys(bucket)) - set(committed))
    assert orphans and all("model_id=b" in key for key in orphans)
    report = check(root)
    assert report.problems == []
    assert f"{len(orphans)} data files no snapshot lists" in report.notes[0]
    for table, frame in tables(root, ("activations", *SUMMARIES)).items():
        assert_frame_equal(frame, before[table])
    assert unitsel.lake.clean(root, orphan_age_hours=0)["orphaned_files"] == len(orphans)
    assert s3.keys(bucket) == committed


def test_the_duckdb_cli_reads_the_warehouse_through_the_bucket(
        tmp_path: Path, s3: S3Server, aws: dict[str, str]) -> None:
    acts, labels = small_layer(tmp_path)
    root = tmp_path / "warehouse"
    with unitsel.Transaction(root, data=f"s3://{s3.new_bucket()}/lake", progress=False) as tx:
        ingest_arrays(tx, acts, labels, model_id="a", stimulus_set="s", layer="fc")
    query = "SELECT unit, ccmas FROM unit_selectivity('a', 's', 'fc', 'none') ORDER BY unit"
    with unitsel.connection(root, create=False) as con:
        expected = con.sql(query).fetchall()
    command = subprocess.run([UNITSEL, "sql", "--root", str(root)], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert aws["AWS_SECRET_ACCESS_KEY"] not in command  # the CLI reads the keys itself
    out = subprocess.run(f"{command} -csv -noheader -c \"{query}\"", shell=True,
                         capture_output=True, text=True, check=True).stdout
    found = [(int(u), float(c)) for u, c in (line.split(",") for line in out.splitlines())]
    assert [u for u, _ in found] == [u for u, _ in expected] == list(range(12))
    assert [c for _, c in found] == pytest.approx([c for _, c in expected], rel=1e-12)


@pytest.mark.parametrize("case", ["unreachable endpoint", "wrong credentials",
                                  "missing bucket", "not a URL or path"])
def test_a_bucket_that_cannot_be_used_is_one_line_and_nothing_written(
        tmp_path: Path, s3: S3Server, case: str) -> None:
    acts, labels = small_layer(tmp_path)
    bucket = s3.new_bucket()
    env = {**os.environ, **s3.env}
    data = f"s3://{bucket}/lake"
    if case == "unreachable endpoint":
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    elif case == "wrong credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-" + "x" * 24
    elif case == "missing bucket":
        data = "s3://no-such-bucket-here/lake"
    else:
        data = "gs://somewhere/lake"
    root = tmp_path / "warehouse"
    started = time.monotonic()
    result = subprocess.run(
        [UNITSEL, "--data", data, "ingest", "arrays", "--root", str(root), str(acts),
         "--labels", str(labels), "--model-id", "a", "--stimulus-set", "s",
         "--layer", "fc"], env=env, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--data" in lines[0], result.stderr
    expected = {"unreachable endpoint": "does not answer", "wrong credentials": "refused",
                "missing bucket": "does not exist", "not a URL or path": "neither"}[case]
    assert expected in lines[0]
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_ACCESS_KEY_ID"]):
        assert secret not in result.stdout + result.stderr
    assert not root.exists()
    assert s3.keys(bucket) == []


def test_thumbnails_live_in_the_bucket_beside_the_data_path(
        tmp_path: Path, s3: S3Server, aws: dict[str, str]) -> None:
    """The torch ingest's thumbnails go to <place>/images/<set>/ in the bucket (not under the
    data path, whose clean-up would delete them), are replaced whole by a later job, and stay
    as they were when a job fails."""
    from click.testing import CliRunner
    from PIL import Image

    from unitsel.cli import cli

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.fromarray(np.zeros((300, 200, 3), np.uint8)).save(images / f"{i}.png")
    bucket = s3.new_bucket()
    root = tmp_path / "warehouse"

    def ingest(stimuli: int, layers: str) -> str:
        (tmp_path / "labels.csv").write_text("stimulus,uri,label\n" + "".join(
            f"{i},{i}.png,{'a' if i < 2 else 'b'}\n" for i in range(stimuli)))
        return CliRunner().invoke(cli, [
            "--data", f"s3://{bucket}/lake", "ingest", "activations", "--model-id", "r18",
            "--arch", "resnet18", "--stimulus-set", "noise", "--images", str(images),
            "--labels", str(tmp_path / "labels.csv"), "--layers", layers, "--image-size",
            "32", "--resize", "32", "--root", str(root), "--replace-stimuli"]).output

    def thumbnails() -> list[str]:
        return [k for k in s3.keys(bucket) if k.startswith("lake/images/")]

    assert "thumbnails in s3://" in ingest(4, "fc")
    assert thumbnails() == [f"lake/images/noise/{i}.png" for i in range(4)]
    shown = storage.read_bytes(f"s3://{bucket}/lake/images/noise/0.png")
    with Image.open(io.BytesIO(shown)) as thumbnail:
        assert thumbnail.size == (85, 128)
    ingest(3, "fc")
    assert thumbnails() == [f"lake/images/noise/{i}.png" for i in range(3)]
    assert "fc9" in ingest(2, "fc9")  # fails once the model runs: the thumbnails stay
    assert thumbnails() == [f"lake/images/noise/{i}.png" for i in range(3)]
    assert unitsel.lake.clean(root, orphan_age_hours=0)["orphaned_files"] == 0
    assert len(thumbnails()) == 3
