"""unitsel: a unit-selectivity warehouse for neural-network interpretability.

The public surface: `connect(root)` for DuckDB with every view and macro, `scan(table, root)`
for Polars, `write(frame, table, root)` for atomic writes, and the table registry `TABLES`.
"""

from __future__ import annotations

from unitsel.errors import InputError
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
    "init",
    "scan",
    "write",
]
