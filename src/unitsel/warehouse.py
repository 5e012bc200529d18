"""The warehouse: a folder of Hive-partitioned Parquet, one file per partition.

`<root>/<table>/<key>=<value>/.../data.parquet`, values percent-encoded (DuckDB and Polars both
decode them), so any model or layer name is safe in a path. A partition is written into
`<root>/.staging/` and moved into place with one `os.replace` at commit, so readers see the old
partition or the new one, never half of one, and re-running a job replaces what it wrote.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from unitsel.errors import InputError
from unitsel.schema import SUMMARISED_FROM, TABLES, Table, table

if TYPE_CHECKING:
    import duckdb

DEFAULT_ROOT = Path("warehouse")
DATA_FILE = "data.parquet"
# The zero-row seed file of each table lives in this reserved partition, so views bind on an
# empty warehouse (DuckDB cannot create a view over a glob that matches nothing).
EMPTY_PARTITION = "__empty__"
# Polars reads this Hive value as NULL even percent-encoded, so no partition may take it.
HIVE_DEFAULT = "__HIVE_DEFAULT_PARTITION__"
_STAGING = ".staging"
# Rows buffered per partition before a row group is written: bounds memory when a job streams
# into many partitions at once, and is near DuckDB's own row-group size.
_ROW_GROUP_ROWS = 1 << 18


def _as_table(t: Table | str) -> Table:
    return t if isinstance(t, Table) else table(t)


def _encode(value: str) -> str:
    """Percent-encoded; 'null' in any case, which DuckDB would read as NULL, byte by byte (both
    engines decode that to the string)."""
    if value.lower() == "null":
        return "".join(f"%{byte:02X}" for byte in value.encode())
    return quote(value, safe="")


def partition_dir(root: Path, t: Table, values: Mapping[str, str]) -> Path:
    """The folder of one partition: `<root>/<table>/<key>=<percent-encoded value>/…`."""
    path = Path(root) / t.name
    for key in t.partition_by:
        path /= f"{key}={_encode(values[key])}"
    return path


def table_glob(root: Path | str, t: Table) -> str:
    """Fixed-depth glob over every data file of a table."""
    return "/".join([str(root), t.name, *("*" for _ in t.partition_by), "*.parquet"])


def _arrow_schema(t: Table) -> pa.Schema:
    empty = pl.DataFrame(schema={c.name: c.dtype for c in t.data_columns})
    return empty.to_arrow().schema


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


class _StagedPartition:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.buffer: list[pa.Table] = []
        self.buffered_rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, data: pa.Table) -> None:
        self.buffer.append(data.cast(self.schema))
        self.buffered_rows += data.num_rows
        if self.buffered_rows >= _ROW_GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        if self.buffer:
            self.writer.write_table(pa.concat_tables(self.buffer))
        self.buffer, self.buffered_rows = [], 0

    def close(self) -> None:
        self.flush()
        assert self.writer is not None
        self.writer.close()


class Transaction:
    """Stages partitions of any tables and moves them into place together at commit.

    Use as a context manager: an exception inside the block discards everything staged, so a
    job that fails on bad input writes nothing. Each partition is moved into place with one
    atomic `os.replace`.
    """

    def __init__(self, root: Path | str = DEFAULT_ROOT, refresh: bool = True) -> None:
        self.root = Path(root)
        self.refresh = refresh
        _remove_abandoned_staging(self.root / _STAGING)
        self.staging = self.root / _STAGING / f"{os.getpid()}-{uuid.uuid4().hex}"
        self._partitions: dict[tuple[str, tuple[str, ...]], _StagedPartition] = {}
        self.rows_written: dict[str, int] = {}

    def __enter__(self) -> Transaction:
        self.staging.mkdir(parents=True)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
        if exc_type is None and self.refresh and SUMMARISED_FROM & set(self.rows_written):
            from unitsel.summaries import refresh

            refresh(self.root)

    def write(self, frame: pl.DataFrame, t: Table | str, source: object = None) -> None:
        """Stage a frame holding every column of `t`; it is split by the partition keys."""
        t = _as_table(t)
        frame = conform(frame, t, t.column_names, source)
        keys = list(t.partition_by)
        for values, part in frame.partition_by(keys, as_dict=True, maintain_order=True).items():
            self._stage(t, dict(zip(keys, map(str, values), strict=True)), part.drop(keys),
                        source)

    def write_partition(
        self, t: Table | str, values: Mapping[str, str], frame: pl.DataFrame, source: object = None
    ) -> None:
        """Stage rows of one partition; `frame` holds the data columns only. May be called
        repeatedly for the same partition to stream a large one in chunks."""
        t = _as_table(t)
        self._stage(t, values, conform(frame, t, [c.name for c in t.data_columns], source), source)

    def _stage(
        self, t: Table, values: Mapping[str, str], frame: pl.DataFrame, source: object
    ) -> None:
        for key in t.partition_by:
            value = values.get(key)
            if not value or value in (EMPTY_PARTITION, HIVE_DEFAULT):
                raise InputError(f"{key} must be a non-empty name other than "
                                 f"{EMPTY_PARTITION!r} and {HIVE_DEFAULT!r}, got {value!r}",
                                 file=source, column=key)
        ident = (t.name, tuple(values[k] for k in t.partition_by))
        staged = self._partitions.get(ident)
        if staged is None:
            final = partition_dir(self.root, t, values)
            staged = _StagedPartition(
                self.staging / final.relative_to(self.root) / DATA_FILE, _arrow_schema(t)
            )
            self._partitions[ident] = staged
        staged.add(frame.to_arrow())
        self.rows_written[t.name] = self.rows_written.get(t.name, 0) + frame.height

    def _commit(self) -> None:
        for staged in self._partitions.values():
            staged.close()
        for staged in self._partitions.values():
            final = self.root / staged.path.relative_to(self.staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged.path, final)


def _remove_abandoned_staging(staging_root: Path) -> None:
    """Delete staging folders whose process is gone (a job killed with SIGKILL)."""
    if not staging_root.is_dir():
        return
    for entry in staging_root.iterdir():
        pid = entry.name.split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write(frame: pl.DataFrame, t: Table | str, root: Path | str = DEFAULT_ROOT) -> None:
    """Write a frame to a table atomically, replacing the partitions it touches."""
    with Transaction(root) as tx:
        tx.write(frame, t)


def init(root: Path | str = DEFAULT_ROOT) -> Path:
    """Create the warehouse folder and a zero-row seed file for every table that has none."""
    root = Path(root)
    for t in TABLES.values():
        seed = partition_dir(root, t, dict.fromkeys(t.partition_by, EMPTY_PARTITION)) / DATA_FILE
        if seed.exists():
            continue
        seed.parent.mkdir(parents=True, exist_ok=True)
        tmp = seed.with_name(f".{DATA_FILE}.{os.getpid()}.tmp")
        pq.write_table(_arrow_schema(t).empty_table(), tmp)
        os.replace(tmp, seed)
    return root


def scan(t: Table | str, root: Path | str = DEFAULT_ROOT) -> pl.LazyFrame:
    """A Polars LazyFrame over a table, columns in registry order and types."""
    t = _as_table(t)
    init(root)
    return pl.scan_parquet(
        table_glob(root, t),
        hive_partitioning=True,
        hive_schema={k: pl.String() for k in t.partition_by},
        schema={c.name: c.dtype for c in t.data_columns},
    ).select(t.column_names)


def read_partition(t: Table | str, values: Mapping[str, str],
                   root: Path | str = DEFAULT_ROOT) -> pl.DataFrame | None:
    """The rows of one partition (data columns), or None if it has never been written."""
    t = _as_table(t)
    path = partition_dir(Path(root), t, values) / DATA_FILE
    return pl.read_parquet(path) if path.exists() else None


def connect(root: Path | str = DEFAULT_ROOT) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view and macro of `sql/init.sql`."""
    import duckdb

    from unitsel.sqlfiles import init_script

    root = init(root).resolve()
    con = duckdb.connect()
    con.execute("SET VARIABLE wh_root = ?", [str(root)])
    con.execute(init_script())
    return con


@contextlib.contextmanager
def replaced_folder(final: Path) -> Iterator[Path]:
    """A staging folder beside `final` to fill; on success it replaces `final` in one move,
    on failure it is removed and `final` is untouched. For folders of files the tables point
    at (images, study packages, corpora)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def connection(root: Path | str = DEFAULT_ROOT) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect(root)` that closes itself."""
    con = connect(root)
    try:
        yield con
    finally:
        con.close()
