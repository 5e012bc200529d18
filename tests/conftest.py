from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse, built once per session through the real jobs and writer."""
    from ingest.demo import run_demo

    root = tmp_path_factory.mktemp("demo") / "warehouse"
    run_demo(root, progress=False)
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "warehouse"


def duckdb_csv(root: Path, sql: str) -> list[list[str]]:
    """Rows (as strings) of `sql` run by the real DuckDB CLI over `root` with sql/init.sql."""
    import subprocess
    import sys

    duckdb = str(Path(sys.executable).with_name("duckdb"))
    out = subprocess.run(
        [duckdb, "-csv", "-noheader", "-cmd", f"SET VARIABLE wh_root='{root}'", "-cmd",
         ".read sql/init.sql", "-c", sql],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [line.split(",") for line in out.splitlines()]
