"""Contracts between the registry, the SQL files and the real DuckDB CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import unitsel
from unitsel.sqlfiles import init_script, render_tables_sql, sql_home

from .conftest import REPO

DUCKDB_CLI = Path(sys.executable).with_name("duckdb")


def test_tables_sql_is_generated_from_the_registry() -> None:
    assert (REPO / "sql" / "tables.sql").read_text() == render_tables_sql(), (
        "sql/tables.sql is stale: run `python -m unitsel.sqlfiles`")


def test_loader_runs_the_text_the_cli_runs() -> None:
    assert sql_home() == REPO
    script = init_script()
    assert not re.search(r"^\s*\.read", script, re.MULTILINE)
    for path in (REPO / "sql").rglob("*.sql"):
        if path.name != "init.sql":
            # `.output` only says where the CLI prints; the loader skips it. A `.read` line
            # (lake.sql reads s3.sql) is where the other file's text goes.
            text = "\n".join(line for line in path.read_text().strip().splitlines()
                             if not line.startswith(".output"))
            for part in re.split(r"^\.read .*$", text, flags=re.MULTILINE):
                assert part.strip("\n") in script, f"{path} is not reached from init.sql"


def test_every_view_is_commented(root: Path) -> None:
    with unitsel.connection(root) as con:
        rows = con.sql("SELECT view_name, comment FROM duckdb_views() "
                       "WHERE NOT internal").fetchall()
    assert rows and all(comment for _, comment in rows), rows


def test_macros_are_prefixed_by_their_file_and_commented(root: Path) -> None:
    with unitsel.connection(root) as con:
        comments = dict(con.sql("SELECT function_name, comment FROM duckdb_functions() "
                                "WHERE function_type LIKE '%macro' AND NOT internal").fetchall())
    for path in (REPO / "sql" / "macros").glob("*.sql"):
        for name in re.findall(r"CREATE OR REPLACE MACRO (\w+)", path.read_text()):
            assert path.stem.startswith(name.split("_")[0]), (path.name, name)
            assert comments.get(name), f"{name} in {path.name} has no COMMENT ON MACRO"


@pytest.mark.skipif(not DUCKDB_CLI.exists(), reason="duckdb CLI not installed beside python")
def test_duckdb_cli_versions_match() -> None:
    out = subprocess.run([DUCKDB_CLI, "-version"], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0].lstrip("v") == duckdb.__version__


def test_duckdb_cli_init_from_repo_root_layout(tmp_path: Path) -> None:
    """`duckdb -init sql/init.sql` in a folder laid out like the repo root, default root."""
    shutil.copytree(REPO / "sql", tmp_path / "sql")
    unitsel.init(tmp_path / "warehouse")
    out = subprocess.run(
        [DUCKDB_CLI, "-init", "sql/init.sql", "-csv", "-c",
         "SELECT count(*) AS n FROM activations"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip().splitlines()[-2:] == ["n", "0"]


@pytest.mark.skipif(not DUCKDB_CLI.exists(), reason="duckdb CLI not installed beside python")
def test_init_prints_no_loading_banner_into_pipes(tmp_path: Path) -> None:
    """`duckdb -init sql/init.sql` used in a script: no '-- Loading resources' line (with
    terminal colour codes) before the answer."""
    (tmp_path / "sql").symlink_to(REPO / "sql")
    unitsel.init(tmp_path / "warehouse")
    out = subprocess.run([DUCKDB_CLI, "-init", "sql/init.sql", "-csv", "-c",
                          "SELECT count(*) AS n FROM activations"],
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout == "n\n0\n" and "Loading resources" not in out.stderr, out
