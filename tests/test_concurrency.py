"""The storage under real kills and concurrent writers, on both catalogs (SQLite, PostgreSQL).

Each version v of the test partition has its own stimulus count and labels and activations
10·v + (unit mod 7), so a reader can tell which version it sees and whether its summaries,
stimuli and activations come from one version.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import unitsel
import unitsel.summaries

pytestmark = pytest.mark.slow  # minutes of work: `make test` runs it, `make test-quick` not

UNITS = 60
UNITSEL = str(Path(sys.executable).with_name("unitsel"))

# Rows where the summaries of a snapshot disagree with its activations or stimuli; one
# statement, so one snapshot.
DISAGREEMENTS = """
WITH acts AS (
    -- Summaries count the activations of the set's stimuli (a replaced, shorter set leaves
    -- other layers' activations of stimuli it no longer has).
    SELECT layer, unit, count(*) AS n, sum(activation)::DOUBLE AS total,
           max(activation) AS top
    FROM activations JOIN stimuli USING (stimulus_set, stimulus) GROUP BY ALL
), stats AS (
    SELECT layer, unit, sum(n) AS n, sum(n * mean) AS total
    FROM class_stats WHERE subset = 'all' GROUP BY ALL
), tops AS (
    SELECT layer, unit, top_activation AS top FROM unit_summaries WHERE subset = 'all'
), labels AS (
    SELECT count(*) AS wrong FROM unit_top t JOIN stimuli s USING (stimulus_set, stimulus)
    WHERE t.label <> s.label
)
SELECT (SELECT count(*) FROM acts FULL JOIN stats USING (layer, unit)
        WHERE acts.n IS DISTINCT FROM stats.n
           OR abs(acts.total - stats.total) > 1e-6 * greatest(1, abs(acts.total)))
     + (SELECT count(*) FROM acts FULL JOIN tops USING (layer, unit)
        WHERE acts.top IS DISTINCT FROM tops.top)
     + (SELECT wrong FROM labels)
"""


def n_stimuli(version: int) -> int:
    return 300 + 50 * (version % 4)


def version_files(folder: Path, version: int) -> tuple[Path, Path]:
    """The activations (.npy) and labels (.csv) of one version."""
    acts, labels = folder / f"v{version}.npy", folder / f"v{version}.csv"
    if not acts.exists():
        n = n_stimuli(version)
        values = 10.0 * version + (np.arange(UNITS) % 7)
        np.save(acts, np.tile(values, (n, 1)).astype(np.float32))
        labels.write_text("stimulus,label\n" + "".join(
            f"{s},c{(s + version) % 3}\n" for s in range(n)))
    return acts, labels


def ingest_command(root: Path, folder: Path, version: int, layer: str) -> list[str]:
    acts, labels = version_files(folder, version)
    return [UNITSEL, "ingest", "arrays", str(acts), "--labels", str(labels), "--model-id", "m",
            "--stimulus-set", "set", "--layer", layer, "--replace-stimuli", "--root", str(root)]


def check(root: Path) -> dict[str, tuple[int, int]]:
    """Assert the newest snapshot is consistent; return per layer (version, rows)."""
    with unitsel.connection(root) as con:
        assert con.sql(DISAGREEMENTS).fetchone() == (0,)
        layers = con.sql("""
            SELECT layer, min(floor(activation / 10))::INTEGER, max(floor(activation / 10)),
                   count(*)
            FROM activations GROUP BY layer""").fetchall()
    seen = {}
    for layer, low, high, rows in layers:
        assert low == high, f"{layer}: versions {low}..{high} mixed"
        assert rows == n_stimuli(low) * UNITS, f"{layer}: {rows} rows of version {low}"
        seen[layer] = (low, rows)
    return seen


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_root(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """An initialised warehouse on each catalog."""
    root = tmp_path / "warehouse"
    catalog = (request.getfixturevalue("postgres_server")()
               if request.param == "postgres" else None)
    unitsel.init(root, catalog=catalog)
    return root


def test_kill_at_random_moments_leaves_old_or_new(tmp_path: Path, catalog_root: Path) -> None:
    root = catalog_root
    rng = random.Random(13)
    start = time.monotonic()
    subprocess.run(ingest_command(root, tmp_path, 1, "fc"), check=True, capture_output=True)
    duration = time.monotonic() - start
    versions = {"fc": 1}
    outcomes = {"old": 0, "new": 0}
    # Jobs grow longer (each new stimulus set re-summarises every layer), so the kill window
    # follows the outcomes: later after a kill that came too early, earlier after a late one.
    scale = 1.0
    for kill in range(32):
        # Even kills replace the existing partition, odd ones write a new one.
        layer = "fc" if kill % 2 == 0 else f"new{kill}"
        version = kill + 2
        child = subprocess.Popen(ingest_command(root, tmp_path, version, layer),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.05) * duration * scale)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        seen = check(root)
        now = seen.get(layer, (None,))[0]
        assert now in (versions.get(layer), version)
        outcomes["new" if now == version else "old"] += 1
        scale *= 0.9 if now == version else 1.15
        if layer in seen:
            versions[layer] = seen[layer][0]
    assert min(outcomes.values()) >= 3, outcomes  # kills landed before and after commits
    subprocess.run(ingest_command(root, tmp_path, 99, "fc"), check=True, capture_output=True)
    assert check(root)["fc"][0] == 99


def test_readers_see_summaries_that_agree_during_rewrites(tmp_path: Path,
                                                          catalog_root: Path) -> None:
    root = catalog_root
    subprocess.run(ingest_command(root, tmp_path, 1, "fc"), check=True, capture_output=True)
    for version in range(2, 8):
        version_files(tmp_path, version)
    script = "; ".join(
        f"subprocess.run({ingest_command(root, tmp_path, v, 'fc')!r}, check=True, "
        "capture_output=True)" for v in range(2, 8))
    writer = subprocess.Popen([sys.executable, "-c", f"import subprocess; {script}"])
    seen, queries = set(), 0
    while writer.poll() is None:
        seen.add(check(root)["fc"][0])
        queries += 1
    assert writer.returncode == 0
    assert queries >= 10 and len(seen) >= 3, (queries, seen)
    assert check(root)["fc"][0] == 7


def test_writers_of_different_partitions_both_commit(tmp_path: Path, catalog_root: Path) -> None:
    children = [subprocess.Popen(ingest_command(catalog_root, tmp_path, 2, layer),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for layer in ("a", "b")]
    outputs = [child.communicate()[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert check(catalog_root) == {"a": (2, n_stimuli(2) * UNITS), "b": (2, n_stimuli(2) * UNITS)}


def test_writers_of_the_same_partition_commit_one_after_the_other(
        tmp_path: Path, catalog_root: Path) -> None:
    children = [subprocess.Popen(ingest_command(catalog_root, tmp_path, version, "fc"),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for version in (2, 3)]
    outputs = [child.communicate()[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert check(catalog_root)["fc"][0] in (2, 3)
    # Neither write was lost: both committed, in turn, and the last one stands whole.
    with unitsel.connection(catalog_root) as con:
        jobs = con.sql("SELECT count(*) FROM lake.snapshots() "
                       "WHERE commit_message LIKE '%activations[m/set/fc/none]%'").fetchone()
        assert jobs == (2,)
        assert con.sql("SELECT count(*) FROM summary_builds").fetchone() == (1,)


def test_a_paused_writer_rebuilds_on_the_new_snapshot(
        tmp_path: Path, catalog_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writer A has built its summaries and pauses before its commit; writer B rewrites the
    partition and finishes; A resumes. A's commit must not land beside B's data."""
    from ingest.arrays import ingest_arrays

    built = threading.Event()
    resume = threading.Event()
    calls: list[int] = []
    original: Callable[..., None] = unitsel.summaries.Build.__call__

    def pausing_update(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            built.set()
            assert resume.wait(120)

    monkeypatch.setattr(unitsel.summaries.Build, "__call__", pausing_update)
    acts, labels = version_files(tmp_path, 2)

    def write_a() -> None:
        with unitsel.Transaction(catalog_root, progress=False) as tx:
            ingest_arrays(tx, acts, labels, model_id="m", stimulus_set="set", layer="fc",
                          replace_stimuli=True)

    writer_a = threading.Thread(target=write_a)
    writer_a.start()
    assert built.wait(120)
    subprocess.run(ingest_command(catalog_root, tmp_path, 3, "fc"), check=True,
                   capture_output=True)
    assert check(catalog_root)["fc"][0] == 3
    resume.set()
    writer_a.join(120)
    assert len(calls) >= 2, "A re-ran its summaries on B's snapshot"
    assert check(catalog_root)["fc"][0] == 2
