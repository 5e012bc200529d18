"""The DuckLake under a warehouse root: its catalog, the extensions, the tables, snapshots.

A warehouse is a data path (Parquet data files, Hive-style folders) plus a catalog that says
which files make up each snapshot. The data path is `<root>/data/` by default, or another
folder or an S3-compatible bucket (`--data s3://bucket/prefix`, `$UNITSEL_DATA`; remembered in
`<root>/data.txt`, `unitsel.storage`). The catalog is `<root>/catalog.sqlite` by default, or a
PostgreSQL database for many machines over a shared data path (`--catalog postgres:…`,
`$UNITSEL_CATALOG`; remembered in `<root>/catalog.txt`). Every table of the registry is a
DuckLake table partitioned by its keys. Extensions come from PyPI wheels and are installed
into DuckDB's extension folder once, so `LOAD ducklake` works offline in Python and in the
DuckDB CLI alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import random
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, unquote

from unitsel import storage
from unitsel.errors import FaultError, InputError
from unitsel.schema import TABLES, Table
from unitsel.sqlfiles import extensions, sql_string

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")

ALIAS = "lake"
DATA_DIR = "data"
SQLITE_CATALOG = "catalog.sqlite"
# Where a root that uses another catalog (PostgreSQL) records it, so later commands find it.
CATALOG_POINTER = "catalog.txt"
# Where a root whose data path is not its own data/ (a bucket) records it.
DATA_POINTER = "data.txt"
# The extensions sql/lake.sql loads, in its order: that file is their one list.
EXTENSIONS = extensions()
# Rows of one activations data file (a block of whole units with all their stimuli) and of one
# summary task: the unit of work, so it bounds a task's memory (about 100 bytes a row).
DATA_FILE_ROWS = 8_000_000
_installed = False
_initialised: set[tuple[str, str]] = set()
_instances: dict[tuple[str, str], duckdb.DuckDBPyConnection] = {}
_read_only_copies: dict[Path, str] = {}  # SQLite catalog of a read-only root: its copy
# Data paths `storage.check_bucket` passed, with the server and account it used.
_usable_buckets: set[tuple[str | None, ...]] = set()


def install_extensions() -> None:
    """Install the DuckLake and catalog extensions from their wheels into DuckDB's extension
    folder (no network), once per process; a no-op when they are there already."""
    global _installed
    if _installed:
        return
    import duckdb

    con = duckdb.connect()
    present = {row[0] for row in con.sql(
        "SELECT extension_name FROM duckdb_extensions() WHERE installed").fetchall()}
    for name in EXTENSIONS:
        if name not in present:
            con.execute(f"INSTALL {sql_string(str(_wheel_file(name)))}")
    con.close()
    _installed = True


def _wheel_file(name: str) -> Path:
    package = f"duckdb_extension_{name}"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise RuntimeError(f"the DuckDB extension {name!r} is missing: pip install "
                           f"{package.replace('_', '-')} (same version as duckdb)") from None
    assert module.__file__ is not None
    found = sorted(Path(module.__file__).parent.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(f"{package} holds no {name}.duckdb_extension")
    return found[-1]


def load_sql() -> str:
    """The statement that loads every extension."""
    return "; ".join(f"LOAD {name}" for name in EXTENSIONS)


def s3_sql() -> str:
    """`sql/s3.sql` with this process's S3 endpoint: how DuckDB reaches a bucket."""
    from unitsel.sqlfiles import sql_file

    endpoint = storage.endpoint()
    return (f"SET VARIABLE wh_s3_endpoint = {sql_string(endpoint) if endpoint else 'NULL'};"
            + sql_file("s3.sql"))


def catalog(root: Path, given: str | None = None) -> str:
    """The DuckLake metadata path of `root`: `given`, else `$UNITSEL_CATALOG`, else what the
    root recorded, else its own SQLite file. A root that has a catalog refuses another."""
    if given is not None and given in _read_only_copies.values():
        return given  # what `init` gave a reader of a read-only root, given back
    pointer = Path(root) / CATALOG_POINTER
    recorded = pointer.read_text().strip() if pointer.is_file() else None
    own = f"sqlite:{Path(root) / SQLITE_CATALOG}"
    chosen = given or os.environ.get("UNITSEL_CATALOG") or recorded or own
    if not chosen.startswith(("postgres:", "sqlite:")):
        raise InputError(f"a catalog is 'postgres:<libpq connection string>' or "
                         f"'sqlite:<file>', got {without_secrets(chosen)!r}", column="--catalog")
    if recorded is not None and without_secrets(chosen) != recorded:
        raise InputError(f"this warehouse's catalog is {recorded!r} (see {pointer}), "
                         f"not {without_secrets(chosen)!r}", column="--catalog")
    if recorded is None and chosen != own and (Path(root) / SQLITE_CATALOG).exists():
        raise InputError(f"this warehouse's catalog is its own {SQLITE_CATALOG}, not "
                         f"{without_secrets(chosen)!r}", column="--catalog")
    return chosen


def without_secrets(catalog_path: str) -> str:
    """A catalog path with any libpq `password=…` removed: what may be written down or shown
    (the password then comes from PGPASSWORD, ~/.pgpass or a service file)."""
    return re.sub(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)\s*", "", catalog_path).strip()


def _refuse_unusable(root: Path, catalog_path: str, data: str, create: bool) -> None:
    """Never start a new catalog over data files whose own catalog is missing or empty (that
    loses their history, and `clean` would delete them); readers never create a warehouse."""
    if not catalog_path.startswith("sqlite:"):
        if not create and not root.is_dir():
            raise InputError("not a unitsel warehouse (no such folder); check --root",
                             file=root)
        return
    file = Path(catalog_path.removeprefix("sqlite:"))
    if file.is_file() and file.stat().st_size > 0:
        return
    state = "empty (0 bytes)" if file.is_file() else "missing"
    found = next(iter(storage.parquet_files(data)), None)
    if found is not None:
        raise InputError(
            f"the catalog is {state}, but its data path holds data files ({found} …): "
            "unitsel will not start a new warehouse over them; restore the catalog from a "
            "backup (docs/design.md, 'Backups of the catalog'), or move data/ away to start "
            "afresh", file=file)
    if not create:
        raise InputError(f"not a unitsel warehouse (its catalog {file.name} is {state}); "
                         "check --root, or create one with an ingest or `unitsel init`",
                         file=root)


def refuse_read_only(root: Path) -> None:
    """An InputError when jobs cannot write under `root` (a read-only share or mount)."""
    for folder in (root, root / DATA_DIR):
        if folder.exists() and not os.access(folder, os.W_OK):
            raise InputError("the warehouse is read-only: reading commands work on it, "
                             "jobs that write need a writable root", file=folder)


def _read_only_copy(file: Path) -> str:
    """A readable copy of the SQLite catalog `file` of a read-only root, as a catalog path.

    SQLite reads a catalog in WAL mode only where it can create the `-shm` file beside it, or
    when told the file is immutable, which DuckDB's sqlite extension cannot be told. So the
    catalog is copied once (SQLite's backup, the file opened immutable unless a `-wal` holds
    changes) into the user's cache, named by the file and its state: every reader of an
    unchanged share, the DuckDB CLI command of `unitsel sql` too, uses the same copy."""
    wal = file.with_name(file.name + "-wal")
    state = [file.resolve(), *((f.stat().st_size, f.stat().st_mtime_ns) for f in (file, wal)
                                if f.exists())]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unitsel"
    copy = cache / "read-only" / (hashlib.sha256(repr(state).encode()).hexdigest()[:24]
                                  + ".sqlite")
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        part = copy.with_name(f"{copy.name}.{os.getpid()}.part")
        mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
        try:
            with (sqlite3.connect(f"file:{quote(str(file))}?{mode}", uri=True) as source,
                  sqlite3.connect(part) as target):
                source.backup(target)
            part.replace(copy)
        except sqlite3.Error as error:
            part.unlink(missing_ok=True)
            raise InputError(f"cannot read the catalog of this read-only warehouse: {error}",
                             file=file) from None
    _read_only_copies[file] = f"sqlite:{copy}"
    return _read_only_copies[file]


def data_path(root: Path, given: str | None = None) -> str:
    """Where `root`'s data files live (ending in '/'): `given`, else `$UNITSEL_DATA`, else what
    the root recorded, else its own data/ folder (`unitsel.storage.data_path`)."""
    chosen = given or os.environ.get("UNITSEL_DATA")
    return storage.data_path(chosen) if chosen else recorded_data_path(root)


def recorded_data_path(root: Path) -> str:
    """The data path `root` recorded, else its own data/ folder."""
    pointer = Path(root) / DATA_POINTER
    return pointer.read_text().strip() if pointer.is_file() else f"{Path(root) / DATA_DIR}/"


def place(root: Path, data: str | None = None) -> str:
    """The folder or bucket prefix that holds the data path (`data_path`): the root itself for
    its own data/. The files the lake does not list live there, beside the data path rather
    than in it, where DuckLake's clean-up would delete them: images (`images_path`, the
    s-AMS PNGs under images/sams/)."""
    return data_path(root, data).rstrip("/").rsplit("/", 1)[0]


def images_path(root: Path, stimulus_set: str, data: str | None = None) -> str:
    """Where a stimulus set's images live (the torch ingest's thumbnails, what the dashboards
    and study panels show): `<place>/images/<set>`."""
    return storage.join(place(root, data), "images", stimulus_set)


def _checked_data_path(root: Path, given: str | None) -> str:
    """The data path of `root` with `given` (`data_path`); one that is not the path the root
    recorded is refused (its files are elsewhere), and a bucket must be usable before any
    work (`storage.check_bucket`, once per process)."""
    chosen = data_path(root, given)
    recorded = recorded_data_path(root)
    if chosen != recorded and any((Path(root) / name).exists() for name in (
            DATA_POINTER, SQLITE_CATALOG, CATALOG_POINTER)):
        raise InputError(f"this warehouse's data path is {recorded!r}, not {chosen!r}",
                         column="--data")
    if (chosen, *storage.identity()) not in _usable_buckets:
        storage.check_bucket(chosen)
        _usable_buckets.add((chosen, *storage.identity()))
    return chosen


def attach_sql(root: Path, catalog_path: str, *, snapshot: int | None = None) -> str:
    """`ATTACH` of the warehouse's lake as `lake`; pinned and read-only at `snapshot`."""
    options = [f"DATA_PATH {sql_string(data_path(root))}", "OVERRIDE_DATA_PATH true"]
    if snapshot is not None:
        options += [f"SNAPSHOT_VERSION {int(snapshot)}", "READ_ONLY"]
    return (f"ATTACH IF NOT EXISTS {sql_string('ducklake:' + catalog_path)} AS {ALIAS} "
            f"({', '.join(options)})")


def attach(root: Path, catalog_path: str | None = None, *,
           snapshot: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake of an initialised `root` attached (at `snapshot`).

    Connections to the newest snapshot are cursors of one DuckDB instance per root and
    process: loading the extensions and attaching costs a third of a second, a cursor nothing,
    and each cursor still has its own transactions."""
    import duckdb

    install_extensions()
    root = Path(root)
    catalog_path = catalog_path or catalog(root)
    key = (str(root), catalog_path)
    if snapshot is None and key in _instances:
        return _instances[key].cursor()
    con = duckdb.connect()
    con.execute(load_sql())
    con.execute(s3_sql())
    con.execute(attach_sql(root, catalog_path, snapshot=snapshot))
    if snapshot is not None:
        return con
    _instances[key] = con
    return con.cursor()


def create_catalog(root: Path, catalog_path: str, data: str) -> None:
    """Make the root (recording a data path other than its data/ folder) and, for a new
    SQLite catalog, the file in WAL mode: readers then never block a writer's commit
    (DuckLake would create it in rollback-journal mode)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if data != recorded_data_path(root):
        (root / DATA_POINTER).write_text(data + "\n")
    if not storage.is_remote(data):
        Path(data).mkdir(parents=True, exist_ok=True)
    if catalog_path.startswith("sqlite:"):
        with sqlite3.connect(catalog_path.removeprefix("sqlite:")) as db:
            db.execute("PRAGMA journal_mode=WAL")
    if catalog_path != f"sqlite:{root / SQLITE_CATALOG}" and not (root / CATALOG_POINTER).exists():
        (root / CATALOG_POINTER).write_text(without_secrets(catalog_path) + "\n")


def partition_dir(data: str, t: Table, values: Mapping[str, str]) -> str:
    """The folder of one partition's data files under the data path `data`, as DuckLake lays
    its own out: `<data>/main/<table>/<key>=<percent-encoded value>/…`. Only for people
    browsing the files: the catalog, not the path, says which partition a file belongs to."""
    return storage.join(data, "main", t.name,
                        *(f"{key}={quote(values[key], safe='')}" for key in t.partition_by))


def register_files(con: duckdb.DuckDBPyConnection, t: Table, paths: Sequence[str]) -> None:
    """Add data files written under `t`'s folders to `t` in the open transaction of `con`
    (one call for the list: each call costs a catalog round trip)."""
    if paths:
        con.execute(f"CALL ducklake_add_data_files('{ALIAS}', ?, ?)", [t.name, list(paths)])


def column_ddl(t: Table) -> str:
    return ", ".join(f"{c.name} {c.duckdb_type}" for c in t.columns)


def init(root: Path, catalog_given: str | None = None, *, create: bool = False,
         data: str | None = None) -> str:
    """Check the warehouse and add every registry table it lacks (`_init`), with a full or
    failing disk named as such."""
    import duckdb

    try:
        return _init(root, catalog_given, create=create, data=data)
    except (sqlite3.Error, duckdb.Error) as error:
        if _is_storage_fault(error):
            raise storage_fault(Path(root).resolve(), error) from None
        raise


def _init(root: Path, catalog_given: str | None, *, create: bool, data: str | None) -> str:
    """Check the warehouse and add every registry table it lacks (and columns a table lacks,
    for warehouses made by an older unitsel); returns the catalog path. Only with `create`
    (writers) may it make a new warehouse. Idempotent and safe to run from several processes
    at once."""
    root = Path(root).resolve()
    if "\\" in str(root):  # DuckDB's file system reads a backslash as a path separator
        raise InputError("a warehouse root may not contain a backslash", file=root)
    catalog_path = catalog(root, catalog_given)
    data_given = _checked_data_path(root, data)
    # Each time: a file can go while we run.
    _refuse_unusable(root, catalog_path, data_given, create)
    if create:
        refuse_read_only(root)
    elif catalog_path.startswith("sqlite:") and not os.access(root, os.W_OK):
        catalog_path = _read_only_copy(Path(catalog_path.removeprefix("sqlite:")))
    key = (str(root), catalog_path)
    if key in _initialised:
        return catalog_path
    _refuse_old_layout(root)
    if create:
        create_catalog(root, catalog_path, data_given)

    def existing_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
        existing: dict[str, list[str]] = {}
        for name, column in con.sql(
                "SELECT table_name, column_name FROM duckdb_columns() "
                f"WHERE database_name = '{ALIAS}' ORDER BY column_index").fetchall():
            existing.setdefault(name, []).append(column)
        return existing

    def complete(existing: dict[str, list[str]]) -> bool:
        return GUARD in existing and all(
            c.name in existing.get(t.name, []) for t in TABLES.values() for c in t.columns)

    # Reading commands must not write: commit only when a table or column is missing.
    con = attach(root, catalog_path)
    try:
        ready = complete(existing_columns(con))
    finally:
        con.close()
    if ready:
        _initialised.add(key)
        return catalog_path
    refuse_read_only(root)  # an older unitsel's warehouse: its tables need a commit

    def add_tables(con: duckdb.DuckDBPyConnection) -> None:
        existing = existing_columns(con)
        for t in TABLES.values():
            if t.name not in existing:
                con.execute(f"CREATE TABLE {ALIAS}.{t.name} ({column_ddl(t)})")
                con.execute(f"ALTER TABLE {ALIAS}.{t.name} SET PARTITIONED BY "
                            f"({', '.join(t.partition_by)})")
            for c in t.columns:
                if t.name in existing and c.name not in existing[t.name]:
                    con.execute(f"ALTER TABLE {ALIAS}.{t.name} ADD COLUMN {c.name} "
                                f"{c.duckdb_type}")
        if GUARD not in existing:
            con.execute(f"CREATE TABLE {ALIAS}.{GUARD} (writer VARCHAR)")
            con.execute(f"INSERT INTO {ALIAS}.{GUARD} VALUES ('init')")
            # Every row lives in a Parquet file (none inlined in the catalog), so Polars can
            # read a snapshot from its files alone.
            con.execute(f"CALL {ALIAS}.set_option('data_inlining_row_limit', 0)")

    commit(root, catalog_path, add_tables, "init")
    _initialised.add(key)
    return catalog_path


# A one-row table every commit rewrites: two commits that overlap in time then always conflict
# in DuckLake (both delete from it), so the later one re-runs on the new snapshot instead of
# committing beside it. Without it two jobs that only insert (a new partition each, or the
# same new partition twice) would both commit, the second on inputs the first changed.
GUARD = "commit_guard"


def _refuse_old_layout(root: Path) -> None:
    old = [t.name for t in TABLES.values()
           if any((root / t.name).glob(f"{t.partition_by[0]}=*"))]
    if old:
        raise InputError(f"{root} holds a warehouse of the old layout (folders {old[:3]}…); "
                         f"convert it once with `unitsel migrate --root {root}`")


def current_snapshot(root: Path, catalog_path: str | None = None) -> int:
    """The id of the newest snapshot of `root`'s lake."""
    init(root, catalog_path)
    con = attach(root, catalog_path)
    try:
        row = con.sql(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0])


def require_snapshot(root: Path, catalog_path: str, snapshot: int) -> None:
    """An InputError unless the lake has (still) got snapshot `snapshot`."""
    con = attach(root, catalog_path)
    try:
        ids = [row[0] for row in con.sql(
            f"SELECT snapshot_id FROM {ALIAS}.snapshots() ORDER BY 1").fetchall()]
    finally:
        con.close()
    if snapshot not in ids:
        raise InputError(f"no snapshot {snapshot}: this warehouse has snapshots {ids[0]} to "
                         f"{ids[-1]} (`unitsel snapshots` lists them)", column="--snapshot")


# A data file's path relative to the data path, from the catalog's tables `f` (data file),
# `tb` (its table) and `s` (its schema).
_FILE_PATH = "CASE WHEN f.path_is_relative THEN s.path || tb.path || f.path ELSE f.path END"


def data_files(con: duckdb.DuckDBPyConnection, root: Path, t: Table,
               snapshot: int | None = None) -> list[tuple[tuple[str, ...], str, int, int]]:
    """Every data file of `t`'s newest state (or its state at `snapshot`) as (partition
    values, path, rows, footer size in bytes), from the catalog's own record of each file (no
    data file is read). This is the catalog's newest state, not an open transaction's: a
    commit made since the transaction began makes the transaction's own commit conflict
    (`GUARD`) and re-run, so work that relies on this list never commits on a stale one."""
    meta = f"__ducklake_metadata_{ALIAS}"
    pivot = ", ".join(f"max(v.partition_value) FILTER (v.partition_key_index = {i})"
                      for i in range(len(t.partition_by)))

    def alive(x: str) -> str:
        if snapshot is None:
            return f"{x}.end_snapshot IS NULL"
        return (f"{x}.begin_snapshot <= {int(snapshot)} AND ({x}.end_snapshot IS NULL "
                f"OR {x}.end_snapshot > {int(snapshot)})")

    rows = con.sql(f"""
        SELECT {pivot}, any_value({_FILE_PATH}),
               any_value(f.record_count), any_value(f.footer_size)
        FROM {meta}.ducklake_file_partition_value v
        JOIN {meta}.ducklake_data_file f USING (data_file_id)
        JOIN {meta}.ducklake_table tb ON tb.table_id = f.table_id
        JOIN {meta}.ducklake_schema s ON s.schema_id = tb.schema_id
        WHERE tb.table_name = '{t.name}' AND {alive("tb")} AND {alive("s")} AND {alive("f")}
        GROUP BY v.data_file_id ORDER BY ALL""").fetchall()
    return [(tuple(key), storage.join(data_path(root), path), int(n), int(footer))
            for *key, path, n, footer in rows]


def listed_files(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every data file any snapshot lists, relative to the data path (what is not among them
    is an orphan)."""
    meta = f"__ducklake_metadata_{ALIAS}"
    return {row[0] for row in con.sql(
        f"SELECT {_FILE_PATH} FROM {meta}.ducklake_data_file f "
        f"JOIN {meta}.ducklake_table tb USING (table_id) "
        f"JOIN {meta}.ducklake_schema s USING (schema_id)").fetchall()}


def partition_files(con: duckdb.DuckDBPyConnection, root: Path,
                    t: Table) -> dict[tuple[str, ...], list[str]]:
    """The data files of every committed partition of `t`, by partition values
    (`data_files`)."""
    files: dict[tuple[str, ...], list[str]] = {}
    for key, path, _, _ in data_files(con, root, t):
        files.setdefault(key, []).append(path)
    return files


def partition_of(path: str) -> str:
    """The partition a data file's Hive-style folders name (`model_id=m, layer=fc, …`)."""
    return ", ".join(unquote(part) for part in Path(path).parent.parts if "=" in part)


def describe_partition(t: Table, key: Sequence[str]) -> str:
    return f"{t.name} partition " + ", ".join(
        f"{k}={v}" for k, v in zip(t.partition_by, key, strict=True))


def delete_partitions(con: duckdb.DuckDBPyConnection, root: Path, t: Table,
                      partitions: Iterable[Mapping[str, str]]) -> None:
    """Delete every row of those `partitions` of `t` that hold data. Only partitions that
    exist are named: each DELETE costs tens of milliseconds even when it matches nothing,
    which a job writing hundreds of new partitions would pay for each. DuckLake's DELETE
    opens the partition's data files even when the filter is its keys, so a file that went
    missing (deleted by hand, lost with a disk) gets a stand-in of its recorded rows for the
    DELETE to read: the partition can then be replaced or dropped, and every other snapshot
    still names the missing file."""
    partitions = list(partitions)
    if not partitions:
        return
    existing: dict[tuple[str, ...], list[tuple[str, int, int]]] = {}
    for key, path, rows, footer in data_files(con, root, t):
        existing.setdefault(key, []).append((path, rows, footer))
    for key in dict.fromkeys(tuple(values[k] for k in t.partition_by) for values in partitions):
        if key in existing:
            with _stand_ins(t, key, existing[key]):
                con.execute(f"DELETE FROM {ALIAS}.{t.name} WHERE "
                            + " AND ".join(f"{k} = ?" for k in t.partition_by), list(key))


@contextlib.contextmanager
def _stand_ins(t: Table, key: Sequence[str],
               files: list[tuple[str, int, int]]) -> Iterator[None]:
    """Where `files` (path, rows, footer size) are missing, Parquet files of as many rows
    (the partition's keys, every other column null) with a footer of the recorded size
    (DuckLake checks it), for as long as a DELETE reads them; removed afterwards."""
    import polars as pl
    import pyarrow.parquet as pq

    values = dict(zip(t.partition_by, key, strict=True))
    made: list[str] = []
    try:
        for path, rows, footer in files:
            if storage.exists(path):
                continue
            data = pl.select(pl.repeat(values.get(c.name), rows, dtype=c.dtype).alias(c.name)
                             for c in t.columns).to_arrow()
            storage.prepare(path)
            made.append(path)
            fs, inner = storage.filesystem(path)
            padding = written = 0
            for _ in range(4):  # the padding's own length field may grow by a byte or two
                with pq.ParquetWriter(inner, data.schema, store_schema=False,
                                      filesystem=fs) as writer:
                    writer.write_table(data)
                    writer.add_key_value_metadata({"unitsel-stand-in": " " * padding})
                written = pq.read_metadata(inner, filesystem=fs).serialized_size
                padding += footer - written
                if written == footer or padding < 0:
                    break
            if written != footer:
                raise FaultError(f"{describe_partition(t, key)}: its data file {path} is "
                                 "missing and cannot be replaced; restore it from a backup")
        yield
    finally:
        for stand_in in made:
            storage.remove(stand_in)


def remove_new_root(root: Path, catalog_path: str | None) -> None:
    """Delete a root a failed first job created, when its lake holds no data file (only
    what `init` made, or not even that: a catalog that could not be opened), so a failed
    first job leaves no root and no `catalog.txt` binding it to a catalog."""
    import shutil

    if catalog_path is not None and catalog_path.startswith("sqlite:"):
        con = attach(root, catalog_path)
        try:
            meta = f"__ducklake_metadata_{ALIAS}"
            files = con.sql(f"SELECT count(*) FROM {meta}.ducklake_data_file f JOIN "
                            f"{meta}.ducklake_table t USING (table_id) "
                            f"WHERE t.table_name <> '{GUARD}'").fetchone()
        finally:
            con.close()
        if files is None or files[0] > 0:
            return
    elif storage.parquet_files(data_path(root)):
        return
    if catalog_path is not None:
        instance = _instances.pop((str(Path(root)), catalog_path), None)
        if instance is not None:
            instance.close()
        _initialised.discard((str(Path(root).resolve()), catalog_path))
    shutil.rmtree(root, ignore_errors=True)


class ConflictError(FaultError):
    """Other jobs kept committing while this one tried to: nothing of it was written."""


# Commits are short (the data files are written before), so a few retries with a growing,
# jittered pause let every writer through in turn.
COMMIT_ATTEMPTS = 12


def commit(root: Path, catalog_path: str, work: Callable[[duckdb.DuckDBPyConnection], T],
           job: str) -> T:
    """Run `work` on a fresh connection inside one transaction and commit it as one snapshot
    with the commit message `job`. When another commit lands first (SQLite reports its catalog
    locked, DuckLake a conflict), roll back and run `work` again on the new snapshot, so what
    `work` derives (summaries) always comes from exactly the inputs it commits beside."""
    import duckdb

    newest: int | None = None
    for attempt in range(COMMIT_ATTEMPTS):
        con = attach(root, catalog_path)
        try:
            con.execute("BEGIN")
            started = con.sql(f"SELECT id FROM {ALIAS}.current_snapshot()").fetchone()
            result = work(con)
            con.execute(f"DELETE FROM {ALIAS}.{GUARD}")
            con.execute(f"INSERT INTO {ALIAS}.{GUARD} VALUES (?)", [job])
            con.execute(f"CALL {ALIAS}.set_commit_message('unitsel', ?)", [job])
            con.execute("COMMIT")
            return result
        except BaseException as error:
            _roll_back(con)
            if not isinstance(error, duckdb.Error):
                raise
            if _is_storage_fault(error):
                raise storage_fault(root, error) from None
            lost = catalog_server_lost(error, catalog_path)
            if lost is not None:
                raise lost from None
            if not (isinstance(error, duckdb.TransactionException | duckdb.IOException)
                    and _is_conflict(error)):
                raise
            newest = started[0] if started else None
            # The next attempt gets a fresh DuckDB instance: one whose DuckLake commit failed
            # crashed (SIGSEGV) in ducklake_add_data_files on reuse, about 1 retry in 30.
            _instances.pop((str(Path(root)), catalog_path), None)
        finally:
            con.close()
        time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
    raise ConflictError(
        f"could not commit {job!r}: other jobs committed to {root} in every one of "
        f"{COMMIT_ATTEMPTS} attempts ({_commits_since(root, catalog_path, newest)}); "
        "nothing was written, run it again")


def _roll_back(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back a failed commit's transaction here, where an error is an exception: left to
    the connection's destructor, a ROLLBACK that fails (a PostgreSQL catalog server that went
    away) aborts the whole process."""
    import duckdb

    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


# What SQLite and DuckDB say when the disk under them fails or fills (SQLite says "disk I/O
# error" when its WAL index cannot grow on a full disk).
_STORAGE_FAULTS = ("No space left on device", "disk is full", "disk I/O error")


def _is_storage_fault(error: Exception) -> bool:
    return any(part in str(error) for part in _STORAGE_FAULTS)


def storage_fault(root: Path, error: Exception) -> FaultError:
    """The one line for a disk that failed under `root`: full when little space is left."""
    import shutil

    free = shutil.disk_usage(next(p for p in (root, *root.parents) if p.exists())).free
    if free < 64 * 2**20:
        return FaultError(f"no space left on device under {root} ({free // 1024} KiB free): "
                          "nothing was committed; free some space and run it again")
    return FaultError(f"the disk under {root} failed: {error}; nothing was committed")


# What DuckDB's postgres extension says when the catalog server is down or went away.
_SERVER_LOST = ("Unable to connect to Postgres", "server closed the connection",
                "terminating connection", "no connection to the server")


def catalog_server_lost(error: Exception, catalog_path: str | None = None
                        ) -> FaultError | None:
    """The one line for a PostgreSQL catalog that cannot be reached or went away mid-job
    (DuckDB's own message runs over several lines and names the failed query)."""
    text = str(error)
    if not any(part in text for part in _SERVER_LOST):
        return None
    at = re.search(r'Postgres at "([^"]*)"', text)
    server = (without_secrets(catalog_path) if catalog_path else
              f"postgres:{without_secrets(at.group(1))}" if at else "of the PostgreSQL server")
    reason = ("it refused the connection" if "Connection refused" in text
              else "the connection was lost")
    return FaultError(f"the catalog {server} cannot be used: {reason}; nothing was "
                      "committed; check the server and run the job again")


def _is_conflict(error: Exception) -> bool:
    text = str(error)
    return any(part in text for part in ("locked", "conflict", "Failed to commit",
                                         "busy", "violates primary key"))


def _commits_since(root: Path, catalog_path: str, snapshot: int | None) -> str:
    con = attach(root, catalog_path)
    try:
        rows = con.sql(f"SELECT commit_message FROM {ALIAS}.snapshots() WHERE snapshot_id > ? "
                       "AND commit_message IS NOT NULL ORDER BY snapshot_id DESC LIMIT 3",
                       params=[snapshot or 0]).fetchall()
    finally:
        con.close()
    return "latest: " + "; ".join(r[0] for r in rows) if rows else "no message"


# Data files no snapshot lists and older than this are a killed job's leftovers: no live job
# takes this long between writing a file and committing it.
ORPHAN_AGE_HOURS = 24


def clean(root: Path, catalog: str | None = None, *,
          orphan_age_hours: float = ORPHAN_AGE_HOURS,
          expire_days: float | None = None) -> dict[str, int]:
    """DuckLake's own clean-up: delete data files no snapshot lists that are older than
    `orphan_age_hours` (left by killed jobs) and, with `expire_days`, forget snapshots older
    than that and delete the files only they used (time travel to them ends). Returns how many
    files and snapshots went."""
    root = Path(root).resolve()
    catalog_path = init(root, catalog)
    refuse_read_only(root)
    con = attach(root, catalog_path)
    try:
        expired = 0
        if expire_days is not None:
            expired = len(con.sql(
                f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => "
                f"now() - to_microseconds({int(expire_days * 86400e6)}))").fetchall())
        old = len(con.sql(f"CALL ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)"
                          ).fetchall())
        orphans = len(con.sql(
            f"CALL ducklake_delete_orphaned_files('{ALIAS}', older_than => "
            f"now() - to_microseconds({int(orphan_age_hours * 3600e6)}))").fetchall())
    finally:
        con.close()
    return {"expired_snapshots": expired, "replaced_files": old, "orphaned_files": orphans}


def main() -> None:
    """`python -m unitsel.lake`: install the extensions (for the DuckDB CLI; `make` runs it)."""
    install_extensions()
    print("DuckDB extensions installed: " + ", ".join(EXTENSIONS))


if __name__ == "__main__":
    main()
