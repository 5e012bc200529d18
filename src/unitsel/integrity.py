"""`unitsel check`: does the warehouse hold what its catalog says?

Four questions, each answered from the newest snapshot: is the catalog itself sound (SQLite's
integrity check; a PostgreSQL server checks its own); is every data file the catalog lists
there, readable, with the rows it recorded; which Parquet files under `data/` no snapshot lists
(orphans: a killed job's, which `clean` deletes after a day); and do the summaries of every
activations partition agree with its activations (built by the current layout, and counting
the same rows). Reading only: nothing is repaired here (`unitsel drop` and re-ingesting a
partition are the repair, docs/design.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from unitsel import lake, storage, summaries
from unitsel.schema import ACTIVATIONS, TABLES, UNIT_SUMMARIES

if TYPE_CHECKING:
    import duckdb

# Named in full up to this many; more are counted.
SHOWN = 10


@dataclass
class Report:
    """What `check` found: problems (the warehouse is damaged), notes (worth knowing)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0


def check(root: Path, catalog: str | None = None) -> Report:
    import pyarrow.parquet as pq

    root = Path(root).resolve()
    catalog_path = lake.init(root, catalog)
    report = Report()
    if catalog_path.startswith("sqlite:"):
        _check_sqlite(Path(catalog_path.removeprefix("sqlite:")), report)
    present = set(storage.parquet_files(lake.data_path(root)))  # one listing, not a request a file
    con = lake.attach(root, catalog_path)
    try:
        for t in TABLES.values():
            for key, path, rows, _ in lake.data_files(con, root, t):
                report.files += 1
                report.rows += rows
                where = f"{lake.describe_partition(t, key)}: data file {path}"
                if path not in present:
                    report.problems.append(f"{where} is missing")
                    continue
                fs, inner = storage.filesystem(path)
                try:
                    found = pq.read_metadata(inner, filesystem=fs).num_rows
                except OSError as error:
                    report.problems.append(f"{where} cannot be read: {error}")
                    continue
                if found != rows:
                    report.problems.append(f"{where} holds {found} rows, the catalog "
                                           f"recorded {rows}")
        _check_summaries(con, root, report)
        listed = lake.listed_files(con)
    finally:
        con.close()
    data = lake.data_path(root)
    orphans = sorted(path.removeprefix(data) for path in present
                     if path.removeprefix(data) not in listed)
    if orphans:
        report.notes.append(
            f"{len(orphans)} data files no snapshot lists (a failed or killed job's; "
            f"`unitsel clean` deletes those older than {lake.ORPHAN_AGE_HOURS} h): "
            + ", ".join(orphans[:SHOWN]) + (" …" if len(orphans) > SHOWN else ""))
    return report


def _check_sqlite(file: Path, report: Report) -> None:
    try:
        with sqlite3.connect(f"file:{quote(str(file))}?mode=ro", uri=True) as db:
            found = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.Error as error:
        found = [str(error)]
    if found != ["ok"]:
        report.problems.append(f"the catalog {file} is damaged: " + "; ".join(found[:SHOWN]))


def _check_summaries(con: duckdb.DuckDBPyConnection, root: Path, report: Report) -> None:
    """Every activations partition's summaries: built by this layout, over as many rows."""
    import duckdb
    for part in summaries.stale(con, root):
        report.problems.append(
            f"{lake.describe_partition(ACTIVATIONS, tuple(part.values()))}: its summaries "
            "are outdated or missing; `unitsel summarise` rebuilds them")
    rows: dict[tuple[str, ...], int] = {}
    for key, _, n, _ in lake.data_files(con, root, ACTIVATIONS):
        rows[key] = rows.get(key, 0) + n
    keys = ", ".join(ACTIVATIONS.partition_by)
    try:
        counted = {tuple(row[:-1]): int(row[-1]) for row in con.sql(
            f"SELECT {keys}, sum(n) FROM {lake.ALIAS}.{UNIT_SUMMARIES.name} "
            "WHERE subset = 'all' GROUP BY ALL").fetchall()}
    except duckdb.IOException:  # a summary file is missing: reported above
        return
    for key, n in rows.items():
        if key in counted and counted[key] != n:
            report.problems.append(
                f"{lake.describe_partition(ACTIVATIONS, key)}: its summaries count "
                f"{counted[key]} activations, the partition holds {n}")
