"""Benchmark: a warehouse whose data files live in an S3-compatible bucket against one on local
disk, on the same data, in one run.

On the data of `bench/selectivity.py` (seeded ReLU-like activations, about half exact zeros,
balanced labels), measures for a local-disk warehouse and for one whose data path is a bucket
on a local moto server (`tests.s3.S3Server`, over HTTP on 127.0.0.1): `ingest arrays` from the
`.npy` (write + summaries, one commit), `summarise --rebuild` (every summary, one commit) and
the full `unit_selectivity` query (first, then the median of repeats). Checks that both
warehouses answer the query with the same rows, and prints bucket / local ratios against the
targets: ingest and rebuild within 1.5x of local disk, the repeated query within 2x.

    python bench/object_storage.py                    # 100,000 x 1,000 x 100 labels = 1e8
    python bench/object_storage.py --stimuli 20000 --units 500
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from selectivity import generate, size_arguments, timed

import unitsel
from ingest.arrays import ingest_arrays
from tests.s3 import S3Server

REPEATS = 5
QUERY = "SELECT * FROM unit_selectivity('bench', 'bench', 'fc', 'none')"
# The targets: the most each step may take in the bucket, as a multiple of local disk.
TARGETS = {"ingest arrays": 1.5, "summarise --rebuild": 1.5, "unit_selectivity (repeated)": 2.0}


def ingest(work: Path, root: Path, data: str | None) -> None:
    """`unitsel ingest arrays` of work/acts.npy into the warehouse at `root` (data files at
    `data`, default its own folder)."""
    with unitsel.Transaction(root, data=data, progress=False) as tx:
        ingest_arrays(tx, work / "acts.npy", work / "labels.csv", model_id="bench",
                      stimulus_set="bench", layer="fc")


def rebuild(root: Path, data: str | None) -> None:
    """What `unitsel summarise --rebuild` runs."""
    with unitsel.Transaction(root, data=data, progress=False) as tx:
        tx.rebuild_summaries(every=True)


def measure(work: Path, root: Path, data: str | None, where: str,
            results: dict[str, float]) -> pl.DataFrame:
    """Ingest, rebuild and query the warehouse at `root`, each a job of its own as the CLI
    runs them; returns the query's rows."""
    timed(f"{where}: ingest arrays", results, lambda: ingest(work, root, data))
    timed(f"{where}: summarise --rebuild", results, lambda: rebuild(root, data))
    with unitsel.connection(root) as con:
        rows: pl.DataFrame = timed(f"{where}: unit_selectivity (first)", results,
                                   lambda: con.sql(QUERY).pl())
        repeats: dict[str, float] = {}
        for i in range(REPEATS):
            timed(f"{where}: unit_selectivity (repeat {i + 1})", repeats,
                  lambda: con.sql(QUERY).pl())
    results[f"{where}: unit_selectivity (repeated)"] = statistics.median(repeats.values())
    return rows.sort("unit")


def main() -> None:
    args = size_arguments(__doc__)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        generate(work, args.stimuli, args.units, args.labels)
        print(f"rows: {args.stimuli * args.units:,} ({args.stimuli:,} stimuli x "
              f"{args.units:,} units x {args.labels} labels)")
        # A process's first job loads numba's compiled kernels and DuckDB's extensions (over
        # a second): a tiny untimed ingest pays that, so it falls on neither warehouse.
        warm_up = work / "warm-up"
        warm_up.mkdir()
        generate(warm_up, 100, 10, 2)
        ingest(warm_up, warm_up / "warehouse", None)
        local = measure(work, work / "local", None, "local", results)
        server = S3Server()
        try:
            # unitsel, pyarrow, Polars and DuckDB all take the bucket's keys and endpoint from
            # the process's environment, as a user's job would.
            os.environ.update(server.env)
            bucket = measure(work, work / "bucket", f"s3://{server.new_bucket()}/lake",
                             "bucket", results)
        finally:
            server.close()
    try:
        assert_frame_equal(local, bucket)
    except AssertionError as error:
        raise SystemExit(f"the bucket warehouse's unit_selectivity differs from the local "
                         f"one's:\n{error}") from None
    print(f"unit_selectivity: the same {local.height:,} rows from both warehouses")
    print(f"\n{'step':<30} {'local s':>9} {'bucket s':>9} {'ratio':>7}  target")
    for step in ("ingest arrays", "summarise --rebuild", "unit_selectivity (first)",
                 "unit_selectivity (repeated)"):
        on_disk, in_bucket = results[f"local: {step}"], results[f"bucket: {step}"]
        ratio = in_bucket / on_disk
        target = TARGETS.get(step)
        verdict = ("" if target is None else
                   f"<= {target}x: {'met' if ratio <= target else 'not met'} ({ratio:.2f}x)")
        print(f"{step:<30} {on_disk:9.3f} {in_bucket:9.3f} {ratio:6.2f}x  {verdict}".rstrip())


if __name__ == "__main__":
    main()
