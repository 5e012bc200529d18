"""unitsel: a unit-selectivity warehouse for neural-network interpretability.

The public surface: `connect(root)` for DuckDB with every view and macro, `scan(table, root)`
for Polars (both at the newest snapshot or a given `snapshot=`), `write(frame, table, root)`
and `Transaction` for commits, `current_snapshot(root)`, and the table registry `TABLES`.
"""

from __future__ import annotations

from unitsel.errors import InputError
from unitsel.lake import current_snapshot
from unitsel.schema import TABLES, Column, Table
from unitsel.warehouse import DEFAULT_ROOT, Transaction, connect, connection, init, scan, write

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ROOT",
    "TABLES",
    "Column",
    "InputError",
    "Table",
    "Transaction",
    "__version__",
    "connect",
    "connection",
    "current_snapshot",
    "init",
    "scan",
    "write",
]
