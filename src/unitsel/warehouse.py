"""The warehouse: every table a DuckLake table (Parquet data files plus a catalog).

A job stages rows into Parquet files inside the lake's data path (Hive-style folders, values
percent-encoded) and commits them, with the summaries derived from them, in one DuckLake
transaction: readers see the snapshot before the job or the one after, never a mix, and a job
killed at any moment leaves the old snapshot whole. Re-running a job replaces the partitions it
wrote. See `unitsel.lake` for the catalog and docs/design.md for why.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from unitsel import compute, lake, names, storage, summaries
from unitsel.errors import FaultError, InputError
from unitsel.schema import ACTIVATIONS, TABLES, Table, table

if TYPE_CHECKING:
    import duckdb

DEFAULT_ROOT = Path("warehouse")
# Rows buffered per partition before a row group is written: bounds memory when a job streams
# into many partitions at once, and is near DuckDB's own row-group size.
_ROW_GROUP_ROWS = 1 << 18
# Files finished at once at commit (waiting, not computing: a bucket's last uploads).
_FINISHING_THREADS = 8


def _as_table(t: Table | str) -> Table:
    return t if isinstance(t, Table) else table(t)


def _describe_row(frame: pl.DataFrame, index: int, t: Table) -> str:
    keys = [c for c in (*t.partition_by, "unit", "stimulus") if c in frame.columns]
    row = frame.row(index, named=True)
    return ", ".join(f"{k}={row[k]!r}" for k in keys) or f"index {index}"


def conform(frame: pl.DataFrame, t: Table, columns: list[str], source: object) -> pl.DataFrame:
    """Check and cast `frame` to `columns` of `t`, or raise an InputError naming the problem.

    Missing or extra columns, values that do not cast, NULLs where the registry forbids them
    and non-finite floats are all rejected; nothing is coerced silently.
    """
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise InputError(
            f"table {t.name!r} needs columns {columns}; missing {missing}, unexpected {extra}",
            file=source,
        )
    exprs = []
    for name in columns:
        col = t.column(name)
        try:
            frame.select(pl.col(name).cast(col.dtype, strict=True))
        except pl.exceptions.PolarsError:
            bad = frame.select(
                pl.col(name).is_not_null() & pl.col(name).cast(col.dtype, strict=False).is_null()
            ).to_series().arg_true()
            index = int(bad[0]) if len(bad) else 0
            raise InputError(
                f"value {frame[name][index]!r} is not {col.duckdb_type} "
                f"(at {_describe_row(frame, index, t)})",
                file=source, row=index, column=name,
            ) from None
        exprs.append(pl.col(name).cast(col.dtype))
    out = frame.select(exprs)
    for col in t.columns:
        if col.name not in columns:
            continue
        series = out[col.name]
        bad = series.is_null() & (not col.nullable)
        if col.dtype in (pl.Float32(), pl.Float64()):
            bad = bad | ~series.is_finite().fill_null(True)
        if bad.any():
            index = int(bad.arg_true()[0])
            raise InputError(
                f"{'NULL' if series[index] is None else series[index]} is not allowed "
                f"(at {_describe_row(out, index, t)})",
                file=source, row=index, column=col.name,
            )
    return out


class _Encoders:
    """Parquet encoding on background threads, so that a job reads or records its next block
    while the last one is encoded: a file's row groups in order, files in parallel, at most
    two row groups per thread waiting (memory stays bounded)."""

    def __init__(self) -> None:
        threads = os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="unitsel-encode")
        self.waiting: deque[Future[None]] = deque()
        self.limit = 2 * threads

    def submit(self, after: Future[None] | None, write: Callable[[pa.Table], None],
               data: pa.Table) -> Future[None]:
        """`write(data)` once `after` (the file's previous row group) is written; a failure
        of `after` fails this one too, so waiting on a file's last write sees every error."""
        while len(self.waiting) >= self.limit:
            self.waiting.popleft().result()  # a failed write (a full disk) ends the job now
        future = self.pool.submit(_write_after, after, write, data)
        self.waiting.append(future)
        return future

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _write_after(after: Future[None] | None, write: Callable[[pa.Table], None],
                 data: pa.Table) -> None:
    if after is not None:
        after.result()
    write(data)


class _StagedFile:
    """One partition's rows, streamed into a Parquet file in the lake's data path. The file
    holds every column, the partition keys as constant dictionary columns (DuckLake reads a
    file's partition values from them), and is registered in the catalog only at commit."""

    def __init__(self, path: str, t: Table, values: Mapping[str, str],
                 encoders: _Encoders) -> None:
        self.path = path
        self.t = t
        self.values = dict(values)
        self.schema = _arrow_schema(t)
        self.buffer: list[pa.Table] = []
        self.buffered_rows = 0
        self.writer: pq.ParquetWriter | None = None
        self.encoders = encoders
        self.last: Future[None] | None = None  # the latest row group handed to the encoders

    def add(self, data: pa.Table) -> None:
        self.buffer.append(data)
        self.buffered_rows += data.num_rows
        if self.buffered_rows >= _ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.buffer or self.last is None:  # an empty partition still gets its file
            data = pa.concat_tables(self.buffer) if self.buffer else None
            self.last = self.encoders.submit(self.last, self._write, data)
        self.buffer, self.buffered_rows = [], 0

    def _write(self, data: pa.Table | None) -> None:
        # Dictionaries only for strings: numbers (activations above all) gain nothing from
        # them and cost a third of the write time.
        strings = [c.name for c in self.t.columns if c.dtype == pl.String()]
        fs, inner = storage.filesystem(self.path)
        for attempt in range(2):  # a failed job beside may remove the empty folder meanwhile
            if self.writer is not None:
                break
            storage.prepare(self.path)
            try:
                self.writer = pq.ParquetWriter(
                    inner, self.schema, filesystem=fs, use_dictionary=strings,
                    store_schema=False, **storage.compression(self.path))
            except FileNotFoundError:
                if attempt:
                    raise
        assert self.writer is not None
        if data is not None:
            n = data.num_rows
            columns = {key: pa.DictionaryArray.from_arrays(
                pa.array(_zeros(n)), pa.array([value], pa.string()))
                for key, value in self.values.items()}
            self.writer.write_table(pa.table(
                [columns[c.name] if c.name in columns else data.column(c.name)
                 for c in self.t.columns], schema=self.schema))

    def finish(self) -> None:
        """Finish the file once its row groups are written (`flush` first); raises what any
        of its writes raised. In a bucket this waits for the file's last uploads."""
        assert self.last is not None
        self.last.result()
        assert self.writer is not None
        self.writer.close()

    def abandon(self) -> None:
        """Stop writing (a failed job): wait for the file's writes, ignore their errors."""
        if self.last is not None:
            with contextlib.suppress(Exception):
                self.last.result()
        with contextlib.suppress(OSError):
            if self.writer is not None:
                self.writer.close()


def _matching(partitions: Mapping[tuple[str, ...], object], t: Table,
              values: Mapping[str, str]) -> list[tuple[str, ...]]:
    index = {key: i for i, key in enumerate(t.partition_by)}
    return [key for key in partitions
            if all(key[index[k]] == v for k, v in values.items())]


def _remove(path: str, top: str) -> None:
    """Delete a staged file and, on disk, its folder and their parents below `top` while
    they are empty: a failed job leaves no partition folder of its own behind."""
    storage.remove(path)
    if storage.is_remote(path):
        return  # a bucket has no folders
    folder, top_folder = Path(path).parent, Path(top)
    while folder != top_folder and top_folder in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another job's files), or already gone
            return
        folder = folder.parent


def _zeros(n: int) -> object:
    import numpy as np

    return np.zeros(n, dtype=np.int32)


def _arrow_schema(t: Table) -> pa.Schema:
    data = pl.DataFrame(schema={c.name: c.dtype for c in t.data_columns}).to_arrow().schema
    return pa.schema([pa.field(c.name, pa.dictionary(pa.int32(), pa.string()), nullable=False)
                      if c.name in t.partition_by else data.field(c.name) for c in t.columns])


class Transaction:
    """A job's one handle: reads pinned to the snapshot it started from, the runner its
    per-file work goes to, its progress bars, its writes and their commit, with the summaries
    of what they change, as one DuckLake snapshot.

    Use as a context manager: an exception inside the block discards everything staged, so a
    job that fails on bad input writes nothing. Every partition written replaces the rows the
    partition had. `snapshot` is the snapshot the job reads (default: the newest when the
    transaction starts); result tables record it in their `snapshot_id` column. `data` is
    the data path of a new warehouse (`unitsel.lake.data_path`). `scheduler`
    is a Dask scheduler's address for the per-file work (`unitsel.compute`); `name` what
    the commit message calls the job (default: the program's name); a job that only reads
    is opened with `create=False`, so a mistyped root is refused instead of made.
    """

    def __init__(self, root: Path | str = DEFAULT_ROOT, *, catalog: str | None = None,
                 data: str | None = None, snapshot: int | None = None,
                 scheduler: str | None = None,
                 progress: bool = True, name: str | None = None, create: bool = True) -> None:
        self.root = Path(root).resolve()
        # What the commit message calls the job: never its options, which may hold secrets.
        self.name = name or Path(sys.argv[0]).name
        if scheduler:  # before any work: a scheduler that does not answer fails fast
            compute.check_scheduler(scheduler)
        self._new_root = not self.root.exists()
        # A job that fails on bad input leaves no trace: not even a new root's empty lake.
        try:
            self.catalog = lake.init(self.root, catalog, create=create, data=data)
        except BaseException:  # a catalog that cannot be opened: no root bound to it
            if self._new_root:
                lake.remove_new_root(self.root, None)
            raise
        self.data = lake.data_path(self.root)
        self.place = lake.place(self.root)
        self.scheduler = scheduler
        self.progress = progress
        self.snapshot = (lake.current_snapshot(self.root, self.catalog) if snapshot is None
                         else snapshot)
        self._files: dict[tuple[str, tuple[str, ...], int], _StagedFile] = {}
        self._encoders = _Encoders()
        self._held_bytes = 0
        self._unheld: set[str] = set()
        self._drops: list[tuple[Table, dict[str, str]]] = []
        self.rows_written: dict[str, int] = {}
        self._summaries = summaries.Build(self.root, self.data)
        self._committed = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            for staged in self._files.values():
                staged.abandon()
            self._encoders.close()
            for staged in self._files.values():
                if exc_type is not None or not self._committed:
                    _remove(staged.path, self.data)
            if not self._committed and self._new_root:
                lake.remove_new_root(self.root, self.catalog)

    def scan(self, t: Table | str) -> pl.LazyFrame:
        """`t` as the job reads it: at its snapshot."""
        return scan(t, self.root, snapshot=self.snapshot, catalog=self.catalog)

    def files(self, t: Table | str) -> dict[tuple[str, ...], list[str]]:
        """The data files of `t` at the job's snapshot, by partition values: what a task on a
        Dask worker reads (`scan_files`) without the catalog."""
        t = _as_table(t)
        con = lake.attach(self.root, self.catalog)
        try:
            if any(delete is not None for _, delete in _listed(con, t, self.snapshot)):
                raise FaultError(f"{t.name} has rows deleted from inside its data files (not "
                                 "by unitsel): write the table again before running this on "
                                 "workers")
            files: dict[tuple[str, ...], list[str]] = {}
            for key, path, _, _ in lake.data_files(con, self.root, t, self.snapshot):
                files.setdefault(key, []).append(path)
            return files
        finally:
            con.close()

    def read_partition(self, t: Table | str, values: Mapping[str, str]) -> pl.DataFrame | None:
        """The rows of one partition at the job's snapshot (data columns), or None if it
        has none."""
        t = _as_table(t)
        frame = self.scan(t).filter([pl.col(k) == v for k, v in values.items()]).collect()
        return None if frame.is_empty() else frame.drop(list(t.partition_by))

    @contextlib.contextmanager
    def sql(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection with every view and macro at the job's snapshot."""
        with connection(self.root, snapshot=self.snapshot, catalog=self.catalog,
                        create=False) as con:
            yield con

    def runner(self, *, rows: int = 0, workers: int | None = None
               ) -> contextlib.AbstractContextManager[compute.Runner]:
        """Where `rows` of the job's per-file work run: its scheduler, else this process or
        a local cluster (`unitsel.compute.runner`)."""
        return compute.runner(self.scheduler, rows=rows, workers=workers)

    def rebuild_summaries(self, *, every: bool = False) -> int:
        """Rebuild, in this commit, the summaries an older unitsel left outdated or missing
        (every summary with `every`); returns how many partitions."""
        con = lake.attach(self.root, self.catalog)
        try:
            self._summaries.rebuild = summaries.stale(con, self.root, rebuild=every)
        finally:
            con.close()
        return len(self._summaries.rebuild)

    def write(self, frame: pl.DataFrame, t: Table | str, source: object = None) -> None:
        """Stage a frame holding every column of `t`; it is split by the partition keys."""
        t = _as_table(t)
        if "snapshot_id" in t.column_names and "snapshot_id" not in frame.columns:
            frame = frame.with_columns(snapshot_id=pl.lit(self.snapshot, pl.Int64()))
        frame = conform(frame, t, t.column_names, source)
        keys = list(t.partition_by)
        for values, part in frame.partition_by(keys, as_dict=True, maintain_order=True).items():
            self._stage(t, dict(zip(keys, map(str, values), strict=True)), part.drop(keys),
                        source)

    def write_partition(
        self, t: Table | str, values: Mapping[str, str], frame: pl.DataFrame,
        source: object = None, *, block: int = 0, held: summaries.Held | None = None,
    ) -> None:
        """Stage rows of one partition; `frame` holds the data columns only. May be called
        repeatedly for the same partition to stream a large one in chunks; each `block` of a
        partition goes to a data file of its own (activations: a block of units). `held`:
        activations' rows as a matrix too, kept (up to `summaries.HELD_BYTES` in all) so
        that the commit summarises their file from memory instead of reading it back."""
        t = _as_table(t)
        if "snapshot_id" in t.column_names and "snapshot_id" not in frame.columns:
            frame = frame.with_columns(snapshot_id=pl.lit(self.snapshot, pl.Int64()))
        self._stage(t, values, conform(frame, t, [c.name for c in t.data_columns], source),
                    source, block, held)

    def _hold(self, path: str, held: summaries.Held | None) -> None:
        """Keep `held` for the summaries of the file at `path`; once the budget is spent or
        a part of the file comes without a matrix, none of the file is kept (it is read
        back at commit). A job with a scheduler keeps nothing: its summaries are the
        cluster's work, every file read there."""
        kept = self._summaries.held
        if held is not None and self.scheduler is None and path not in self._unheld and \
                self._held_bytes + held[2].nbytes <= summaries.HELD_BYTES:
            kept.setdefault(path, []).append(held)
            self._held_bytes += held[2].nbytes
            return
        self._unheld.add(path)
        self._held_bytes -= sum(matrix.nbytes for _, _, matrix in kept.pop(path, []))

    def drop(self, t: Table | str, values: Mapping[str, str]) -> list[tuple[str, ...]]:
        """Delete, in this commit, every partition of `t` whose keys have `values` (some or
        all of its partition keys), and for activations their summaries: the repair of a
        partition whose data file is gone (the DELETE reads a stand-in, `lake`). Returns the
        partitions that match now."""
        t = _as_table(t)
        if t.derived:
            raise InputError(f"{t.name} is derived from activations: drop those, or rebuild "
                             "it with `unitsel summarise --rebuild`")
        unknown = set(values) - set(t.partition_by)
        if unknown:
            raise InputError(f"{t.name} is partitioned by {', '.join(t.partition_by)}, not "
                             f"{', '.join(sorted(unknown))}")
        lake.refuse_read_only(self.root)
        self._drops.append((t, dict(values)))
        con = lake.attach(self.root, self.catalog)
        try:
            return _matching(lake.partition_files(con, self.root, t), t, values)
        finally:
            con.close()

    def _stage(
        self, t: Table, values: Mapping[str, str], frame: pl.DataFrame, source: object,
        block: int = 0, held: summaries.Held | None = None,
    ) -> None:
        for key in t.partition_by:
            why = names.problem(values.get(key) or "")
            if why:
                raise InputError(f"{key} {values.get(key)!r}: {why}", file=source, column=key)
        ident = (t.name, tuple(values[k] for k in t.partition_by), block)
        staged = self._files.get(ident)
        if staged is None:
            folder = lake.partition_dir(self.data, t, values)
            staged = _StagedFile(storage.join(folder, f"unitsel-{uuid.uuid4().hex}.parquet"),
                                 t, values, self._encoders)
            self._files[ident] = staged
        staged.add(frame.to_arrow())
        self.rows_written[t.name] = self.rows_written.get(t.name, 0) + frame.height
        if t == ACTIVATIONS:
            self._hold(staged.path, held)

    def _commit(self) -> None:
        if not self._files and not self._summaries.rebuild and not self._drops:
            self._committed = True  # nothing to commit: no empty snapshot
            return
        for staged in self._files.values():
            staged.flush()
        # Files are finished side by side: in a bucket each waits for its last uploads.
        with ThreadPoolExecutor(_FINISHING_THREADS, thread_name_prefix="unitsel-finish") as pool:
            list(pool.map(_StagedFile.finish, self._files.values()))
        by_table: dict[str, list[tuple[dict[str, str], str]]] = {}
        for staged in self._files.values():
            by_table.setdefault(staged.t.name, []).append((staged.values, staged.path))

        def work(con: duckdb.DuckDBPyConnection) -> None:
            for t, values in self._drops:
                keys = _matching(lake.partition_files(con, self.root, t), t, values)
                parts = [dict(zip(t.partition_by, key, strict=True)) for key in keys]
                for dropped in [t] + ([d for d in TABLES.values() if d.derived]
                                      if t == ACTIVATIONS else []):
                    lake.delete_partitions(con, self.root, dropped, parts)
            for name, files in by_table.items():
                lake.delete_partitions(con, self.root, table(name), [v for v, _ in files])
                lake.register_files(con, table(name), [path for _, path in files])
            self._summaries(con, by_table, run, self.progress)

        committed = False
        with self.runner(rows=self.rows_written.get(ACTIVATIONS.name, 0)) as run:
            try:
                lake.commit(self.root, self.catalog, work, self.describe())
                committed = True
            finally:
                self._summaries.discard(committed)
        self._committed = True

    def describe(self) -> str:
        """The commit message: the command and the partitions it writes."""
        parts = []
        for name in dict.fromkeys(n for n, _, _ in self._files):
            values = list(dict.fromkeys(v for (n, v, _) in self._files if n == name))
            shown = ", ".join("/".join(v) for v in values[:3])
            more = f" +{len(values) - 3}" if len(values) > 3 else ""
            parts.append(f"{name}[{shown}{more}]")
        parts += [f"drop {t.name}[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"
                  for t, values in self._drops]
        return f"{self.name} (pid {os.getpid()}): {'; '.join(parts) or 'no rows'}"


def write(frame: pl.DataFrame, t: Table | str, root: Path | str = DEFAULT_ROOT) -> None:
    """Write a frame to a table as one commit, replacing the partitions it touches."""
    with Transaction(root) as tx:
        tx.write(frame, t)


def init(root: Path | str = DEFAULT_ROOT, catalog: str | None = None,
         data: str | None = None) -> Path:
    """Create the warehouse (its lake and every table, its data files under `data`) if
    needed; returns the root."""
    lake.init(Path(root).resolve(), catalog, create=True, data=data)
    return Path(root)


def scan(t: Table | str, root: Path | str = DEFAULT_ROOT, *, snapshot: int | None = None,
         catalog: str | None = None) -> pl.LazyFrame:
    """A Polars LazyFrame over a table's data files at the newest snapshot (or `snapshot`),
    columns in registry order and types."""
    t = _as_table(t)
    root = Path(root).resolve()
    catalog_path = lake.init(root, catalog)
    con = lake.attach(root, catalog_path)
    try:
        files = _listed(con, t, snapshot)
        if any(delete is not None for _, delete in files):
            # Rows deleted from inside a file (never by unitsel's own writes): let DuckDB
            # apply the deletes.
            at = "" if snapshot is None else f" AT (VERSION => {int(snapshot)})"
            return con.sql(f"SELECT * FROM {lake.ALIAS}.{t.name}{at}").pl().lazy().select(
                [pl.col(c.name).cast(c.dtype) for c in t.columns])
    finally:
        con.close()
    return scan_files(t, [f for f, _ in files])


def _listed(con: duckdb.DuckDBPyConnection, t: Table, snapshot: int | None
            ) -> list[tuple[str, str | None]]:
    """(data file, delete file or None) of `t` at `snapshot` (default the newest)."""
    return [(str(data), delete) for data, delete in con.sql(
        f"SELECT data_file, delete_file FROM ducklake_list_files('{lake.ALIAS}', ?"
        + ("" if snapshot is None else ", snapshot_version => ?") + ")",
        params=[t.name] if snapshot is None else [t.name, snapshot]).fetchall()]


def scan_files(t: Table | str, files: list[str]) -> pl.LazyFrame:
    """A Polars LazyFrame over data files of `t` (on disk or in a bucket): what a Dask
    worker reads, given the files by its job, with no access to the catalog."""
    t = _as_table(t)
    if not files:
        return pl.LazyFrame(schema=t.polars_schema)
    for path in storage.missing(files)[:1]:
        raise FaultError(f"{t.name}: data file {path} ({lake.partition_of(path)}) is "
                         "missing: `unitsel check` lists every damage; `unitsel drop` the "
                         "partition, or ingest it again, to repair it")
    return pl.scan_parquet(
        files, glob=False, hive_partitioning=False, schema=t.polars_schema,
        missing_columns="insert", extra_columns="ignore",
        storage_options=storage.polars_options(files[0]),
    ).select([pl.col(c.name).cast(c.dtype) for c in t.columns])


def connect(root: Path | str = DEFAULT_ROOT, *, snapshot: int | None = None,
            catalog: str | None = None, create: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view and macro of `sql/init.sql` over the
    newest snapshot of the warehouse, or over `snapshot` (read-only: DuckLake time travel).
    A new warehouse is made at `root` unless `create` is False (the CLI's reading commands)."""
    import duckdb

    from unitsel.sqlfiles import init_script

    root = Path(root).resolve()
    catalog_path = lake.init(root, catalog, create=create)
    if snapshot is not None:
        lake.require_snapshot(root, catalog_path, snapshot)
    lake.install_extensions()
    con = duckdb.connect()
    con.execute("SET VARIABLE wh_root = ?", [str(root)])
    con.execute("SET VARIABLE wh_catalog = ?", [catalog_path])
    con.execute("SET VARIABLE wh_data = ?", [lake.data_path(root)])
    con.execute("SET VARIABLE wh_s3_endpoint = ?", [storage.endpoint()])
    if snapshot is not None:
        con.execute(lake.load_sql())
        con.execute(lake.attach_sql(root, catalog_path, snapshot=snapshot))
    con.execute(init_script())
    return con


@contextlib.contextmanager
def connection(root: Path | str = DEFAULT_ROOT, *, snapshot: int | None = None,
               catalog: str | None = None, create: bool = True
               ) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect(root)` that closes itself."""
    con = connect(root, snapshot=snapshot, catalog=catalog, create=create)
    try:
        yield con
    finally:
        con.close()
