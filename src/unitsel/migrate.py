"""`unitsel migrate`: convert a warehouse of the old layout (one Parquet file per partition at
`<root>/<table>/<key>=<value>/…/data.parquet`) into the DuckLake layout, once.

The old table folders are first moved aside into `<root>/.old-layout/`, then every partition
is copied into the lake in one commit (the summaries are rebuilt in it from the activations),
and only then is the old copy deleted. A migration that is interrupted is finished by running
it again: the old copy is still there, and re-writing a partition replaces it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from urllib.parse import unquote

import polars as pl
from tqdm import tqdm

from unitsel.errors import InputError
from unitsel.schema import TABLES, Table

OLD = ".old-layout"


def _old_files(old: Path, t: Table) -> list[tuple[dict[str, str], Path]]:
    depth = "/".join("*" for _ in t.partition_by)
    found = []
    for path in sorted((old / t.name).glob(f"{depth}/*.parquet")):
        parts = path.relative_to(old / t.name).parts[:-1]
        values = {part.split("=", 1)[0]: unquote(part.split("=", 1)[1]) for part in parts}
        if "__empty__" not in values.values():  # the old layout's zero-row seed files
            found.append((values, path))
    return found


def migrate(root: Path, catalog: str | None = None) -> dict[str, int]:
    """Copy every partition of the old layout into the lake in one commit; returns the rows
    copied per table. A root already in the new layout is left as it is."""
    from unitsel.lake import SQLITE_CATALOG
    from unitsel.warehouse import Transaction

    root = Path(root)
    old = root / OLD
    if not old.is_dir() and not any(any((root / t.name).glob(f"{t.partition_by[0]}=*"))
                                    for t in TABLES.values()):
        if (root / SQLITE_CATALOG).is_file():
            return {}
        raise InputError(f"{root} holds no warehouse of the old layout (folders such as "
                         "activations/model_id=…): nothing to migrate", file=root)
    old.mkdir(parents=True, exist_ok=True)
    for t in TABLES.values():
        for folder in (root / t.name).glob(f"{t.partition_by[0]}=*"):
            (old / t.name).mkdir(exist_ok=True)
            shutil.rmtree(old / t.name / folder.name, ignore_errors=True)
            folder.rename(old / t.name / folder.name)
        with contextlib.suppress(OSError):
            (root / t.name).rmdir()  # unless other files live there (study packages)
    shutil.rmtree(root / ".staging", ignore_errors=True)
    # Derived tables are rebuilt from the activations in the same commit, not copied.
    files = [(t, values, path) for t in TABLES.values() if not t.derived
             for values, path in _old_files(old, t)]
    with Transaction(root, catalog=catalog) as tx:
        for t, values, path in tqdm(files, desc="migrate", unit="partition"):
            frame = pl.read_parquet(path)
            if "snapshot_id" in t.column_names and "snapshot_id" not in frame.columns:
                # Computed before the warehouse had snapshots.
                frame = frame.with_columns(snapshot_id=pl.lit(None, pl.Int64()))
            tx.write_partition(t, values, frame, path)
    shutil.rmtree(old)
    return dict(tx.rows_written)
