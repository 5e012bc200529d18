"""Load `sql/init.sql` exactly as the DuckDB CLI does, and generate `sql/tables.sql`.

The CLI resolves `.read` paths against the working directory (the repo root); this loader
resolves them against the folder that holds `sql/`, and runs the same text (`.output` and
`.startup_text`, which only say what the CLI prints, are skipped). There is no second list of
SQL files.
"""

from __future__ import annotations

import re
from pathlib import Path

from unitsel.schema import TABLES, Table

_HERE = Path(__file__).resolve().parent


def sql_home() -> Path:
    """The folder holding `sql/`: the package itself when installed from a wheel, else the
    repository root (source checkout or editable install)."""
    for home in (_HERE, _HERE.parents[1]):
        if (home / "sql" / "init.sql").is_file():
            return home
    raise FileNotFoundError(f"sql/init.sql not found beside {_HERE} or in {_HERE.parents[1]}")


def sql_string(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def extensions() -> tuple[str, ...]:
    """The DuckDB extensions `sql/lake.sql` loads, in order: the one list of them."""
    return tuple(re.findall(r"^LOAD (\w+);", (sql_home() / "sql" / "lake.sql").read_text(),
                            re.MULTILINE))


def _expand(path: Path, home: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(".read "):
            lines.append(_expand(home / stripped.removeprefix(".read ").strip(), home))
        elif stripped.split(" ", 1)[0] in (".output", ".startup_text"):
            continue  # what and where the CLI prints; nothing to do for Python
        elif stripped.startswith("."):
            raise ValueError(f"{path}: only .read dot-commands are supported, got {stripped!r}")
        else:
            lines.append(line)
    return "\n".join(lines)


def sql_file(name: str) -> str:
    """The text of `sql/<name>`, `.read` lines expanded."""
    home = sql_home()
    return _expand(home / "sql" / name, home)


def init_script() -> str:
    """The full text `duckdb -init sql/init.sql` runs, `.read` lines expanded."""
    return sql_file("init.sql")


def _view(t: Table) -> str:
    columns = ",\n    ".join(t.column_names)
    return (
        f"CREATE OR REPLACE VIEW {t.name} AS\nSELECT\n    {columns}\nFROM lake.{t.name};\n"
        f"COMMENT ON VIEW {t.name} IS {sql_string(t.doc)};\n"
    )


def render_tables_sql() -> str:
    """The text of `sql/tables.sql`, generated from the schema registry."""
    header = (
        "-- GENERATED from src/unitsel/schema.py by `python -m unitsel.sqlfiles`; do not edit.\n"
        "-- One view per table over its DuckLake table (sql/lake.sql attaches the lake).\n"
    )
    return header + "\n" + "\n".join(_view(t) for t in TABLES.values())


def main() -> None:
    """Regenerate `sql/tables.sql` in the source checkout."""
    target = sql_home() / "sql" / "tables.sql"
    target.write_text(render_tables_sql())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
