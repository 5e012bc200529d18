"""The writer and readers: round trips, atomic replacement, located errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import unitsel
import unitsel.lake
import unitsel.summaries
from unitsel.cli import cli
from unitsel.errors import InputError
from unitsel.lake import partition_dir
from unitsel.names import READ_AS_NULL
from unitsel.schema import ACTIVATIONS, TABLES
from unitsel.warehouse import Transaction

NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1,
                max_size=12).filter(lambda s: s.lower() not in READ_AS_NULL)


def activations_frame(model_id: str, layer: str, matrix: np.ndarray) -> pl.DataFrame:
    n_stimuli, n_units = matrix.shape
    return pl.DataFrame({
        "model_id": model_id, "stimulus_set": "set", "layer": layer, "pool": "none",
        "unit": np.tile(np.arange(n_units), n_stimuli),
        "stimulus": np.repeat(np.arange(n_stimuli), n_units),
        "activation": matrix.reshape(-1).astype(np.float32),
    })


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model_id=NAMES, layer=NAMES,
       matrix=st.integers(1, 6).flatmap(lambda s: st.integers(1, 5).map(lambda u: (s, u))).map(
           lambda shape: np.random.default_rng(sum(shape)).normal(size=shape)))
def test_write_then_scan_and_query_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                              model_id: str, layer: str,
                                              matrix: np.ndarray) -> None:
    root = tmp_path_factory.mktemp("wh")
    frame = activations_frame(model_id, layer, matrix)
    unitsel.write(frame, "activations", root)
    expected = frame.cast(ACTIVATIONS.polars_schema).sort("unit", "stimulus")
    assert_frame_equal(unitsel.scan("activations", root).collect().sort("unit", "stimulus"),
                       expected)
    with unitsel.connection(root) as con:
        got = con.sql("SELECT * FROM activations ORDER BY unit, stimulus").pl()
    assert_frame_equal(got, expected)


def test_empty_warehouse_views_bind_with_registry_columns(root: Path) -> None:
    with unitsel.connection(root) as con:
        for t in TABLES.values():
            described = con.sql(f"DESCRIBE {t.name}").fetchall()
            assert [(r[0], r[1]) for r in described] == [(c.name, c.duckdb_type)
                                                         for c in t.columns]
            assert con.sql(f"SELECT count(*) FROM {t.name}").fetchone() == (0,)
            assert unitsel.scan(t.name, root).collect().schema == t.polars_schema


def test_rewrite_replaces_partition_and_leaves_others(root: Path) -> None:
    unitsel.write(activations_frame("m", "a", np.ones((3, 2))), "activations", root)
    unitsel.write(activations_frame("m", "b", np.ones((3, 2))), "activations", root)
    unitsel.write(activations_frame("m", "a", np.full((2, 2), 7.0)), "activations", root)
    got = unitsel.scan("activations", root).group_by("layer").agg(
        pl.len(), pl.col("activation").sum()).sort("layer").collect()
    assert got.rows() == [("a", 4, 28.0), ("b", 6, 6.0)]


def data_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*.parquet"))


def test_failed_transaction_writes_nothing(root: Path) -> None:
    unitsel.init(root)
    before = data_files(root), unitsel.current_snapshot(root)
    with pytest.raises(RuntimeError), Transaction(root) as tx:
        tx.write(activations_frame("m", "a", np.ones((3, 2))), "activations")
        raise RuntimeError("job failed half way")
    assert (data_files(root), unitsel.current_snapshot(root)) == before


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [("activation", float("nan"), "nan is not allowed"),
     ("activation", float("inf"), "inf is not allowed"),
     ("unit", "three", "is not INTEGER"),
     ("layer", None, "NULL is not allowed")],
)
def test_bad_values_are_located(root: Path, column: str, value: object, message: str) -> None:
    frame = activations_frame("m", "a", np.ones((2, 2))).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(value)).otherwise(pl.col(column))
        .alias(column))
    with pytest.raises(InputError, match=message) as error:
        unitsel.write(frame, "activations", root)
    assert error.value.row == 3 and error.value.column == column
    assert not root.exists()  # a failed first job leaves no root


def test_missing_and_extra_columns_are_named(root: Path) -> None:
    frame = activations_frame("m", "a", np.ones((2, 2))).drop("pool").with_columns(x=1)
    with pytest.raises(InputError, match=r"missing \['pool'\], unexpected \['x'\]"):
        unitsel.write(frame, "activations", root)


def test_partition_values_are_percent_encoded_on_disk(root: Path) -> None:
    name = "a/b'c\"d..e"
    unitsel.write(activations_frame(name, "..", np.ones((1, 1))), "activations", root)
    folder = Path(partition_dir(f"{root}/data/", ACTIVATIONS, {
        "model_id": name, "stimulus_set": "set", "layer": "..", "pool": "none"}))
    assert folder.parent.parent.parent.name == "model_id=a%2Fb%27c%22d..e"
    assert len(list(folder.glob("*.parquet"))) == 1
    assert folder.is_relative_to(root / "data" / "main" / "activations")


def test_sigkill_midway_leaves_no_partial_partition(root: Path) -> None:
    """A writer killed while streaming a large partition: readers see the old data only."""
    unitsel.write(activations_frame("m", "a", np.ones((2, 2))), "activations", root)
    script = textwrap.dedent(f"""
        import sys, numpy as np, polars as pl
        from unitsel.warehouse import Transaction
        with Transaction({str(root)!r}) as tx:
            chunk = pl.DataFrame({{"unit": np.arange(1 << 18, dtype=np.int32),
                                  "stimulus": np.zeros(1 << 18, dtype=np.int32),
                                  "activation": np.ones(1 << 18, dtype=np.float32)}})
            for i in range(10_000):
                tx.write_partition("activations", {{"model_id": "m", "stimulus_set": "set",
                                   "layer": "a", "pool": "none"}}, chunk)
                if i == 3:
                    print("streaming", flush=True)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "streaming"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert unitsel.scan("activations", root).select(pl.len()).collect().item() == 4
    unitsel.write(activations_frame("m", "b", np.ones((1, 1))), "activations", root)
    folder = Path(partition_dir(f"{root}/data/", ACTIVATIONS, {
        "model_id": "m", "stimulus_set": "set", "layer": "a", "pool": "none"}))
    listed = _listed_files(root)
    orphans = [p for p in folder.glob("*.parquet") if p.resolve() not in listed]
    assert len(orphans) == 1, "the dead writer's file, which no snapshot lists"
    # DuckLake's clean-up removes it once it is old enough to belong to no live job.
    assert unitsel.lake.clean(root, orphan_age_hours=1)["orphaned_files"] == 0
    assert unitsel.lake.clean(root, orphan_age_hours=0)["orphaned_files"] == len(orphans)
    assert not any(p.exists() for p in orphans)
    assert unitsel.scan("activations", root).select(pl.len()).collect().item() == 5


def _listed_files(root: Path) -> set[Path]:
    con = unitsel.lake.attach(root.resolve())
    try:
        return {Path(row[0]).resolve() for row in con.sql(
            "SELECT data_file FROM ducklake_list_files('lake', 'activations')").fetchall()}
    finally:
        con.close()


@pytest.mark.parametrize("layer", ["NULL", "null", "Null", "__HIVE_DEFAULT_PARTITION__"])
def test_partition_values_that_read_as_null_are_refused(tmp_path: Path, layer: str) -> None:
    # DuckLake reads these partition values back as SQL NULL.
    frame = activations_frame("m", layer, np.ones((2, 2)))
    with pytest.raises(InputError, match="read back as NULL"):
        unitsel.write(frame, "activations", tmp_path)


def test_time_travel_reads_an_earlier_snapshot(root: Path) -> None:
    unitsel.write(activations_frame("m", "a", np.ones((2, 2))), "activations", root)
    first = unitsel.current_snapshot(root)
    unitsel.write(activations_frame("m", "a", np.full((3, 2), 5.0)), "activations", root)
    total = pl.col("activation").sum()
    assert unitsel.scan("activations", root).select(total).collect().item() == 30.0
    assert unitsel.scan("activations", root, snapshot=first).select(total).collect().item() == 4
    with unitsel.connection(root, snapshot=first) as con:
        assert con.sql("SELECT sum(activation) FROM activations").fetchone() == (4.0,)
    with unitsel.connection(root) as con:
        assert con.sql("SELECT sum(activation) FROM activations").fetchone() == (30.0,)


def test_a_moved_warehouse_still_opens(tmp_path: Path) -> None:
    unitsel.write(activations_frame("m", "a", np.ones((2, 2))), "activations", tmp_path / "a")
    (tmp_path / "a").rename(tmp_path / "b")
    with unitsel.connection(tmp_path / "b") as con:
        assert con.sql("SELECT count(*) FROM activations").fetchone() == (4,)


def test_a_warehouse_of_the_old_layout_is_refused(root: Path) -> None:
    (root / "activations" / "model_id=m").mkdir(parents=True)
    with pytest.raises(InputError, match="unitsel migrate"):
        unitsel.init(root)


def test_migrate_copies_an_old_layout_warehouse_once(root: Path) -> None:
    """An old-layout root (a data.parquet per percent-encoded partition folder, zero-row seed
    files in `__empty__` partitions, a stale summary) becomes a lake with fresh summaries."""
    import pyarrow.parquet as pq

    acts = activations_frame("m/1", "fc 7", np.arange(6.0).reshape(3, 2))
    stimuli = pl.DataFrame({"stimulus": [0, 1, 2], "uri": [None] * 3, "label": ["a", "b", "a"],
                            "wnid": [None] * 3}, schema_overrides={"stimulus": pl.Int32})
    old = {
        "activations/model_id=m%2F1/stimulus_set=set/layer=fc%207/pool=none":
            acts.drop("model_id", "stimulus_set", "layer", "pool"),
        "stimuli/stimulus_set=set": stimuli,
        "models/model_id=__empty__": pl.DataFrame(schema={"architecture": pl.String}),
        "summary_builds/model_id=m%2F1/stimulus_set=set/layer=fc%207/pool=none":
            pl.DataFrame({"k": [100], "fingerprint": ["stale"]}),
    }
    for folder, frame in old.items():
        (root / folder).mkdir(parents=True)
        pq.write_table(frame.to_arrow(), root / folder / "data.parquet")
    result = CliRunner().invoke(cli, ["migrate", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "migrated 9 rows of 2 tables" in result.output
    assert sorted(p.name for p in root.iterdir()) == ["catalog.sqlite", "data"]
    got = unitsel.scan("activations", root).collect().sort("unit", "stimulus")
    assert_frame_equal(got, acts.cast(ACTIVATIONS.polars_schema).sort("unit", "stimulus"))
    with unitsel.connection(root) as con:
        assert con.sql("SELECT unit, top_label, n FROM unit_summaries WHERE subset = 'all' "
                       "ORDER BY unit").fetchall() == [(0, "a", 3), (1, "a", 3)]
        assert con.sql("SELECT layout FROM summary_builds").fetchall() == [
            (unitsel.summaries.LAYOUT_VERSION,)]
