from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo warehouse, built once per session through the real jobs and writer."""
    from ingest.demos.demo import run_demo

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


def _postgres_bin(name: str) -> str:
    import glob
    import shutil

    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is missing: `make setup` installs Debian's "
                           "postgresql package")
    return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Callable[[], str]]:
    """A real PostgreSQL server on a free local port for the session; yields a function that
    creates an empty database and returns its unitsel catalog ('postgres:<libpq string>').
    The server refuses to run as root, so as root it runs as the Debian package's `postgres`
    user."""
    import os
    import shutil
    import socket
    import subprocess
    import tempfile

    # Not under pytest's temporary folder: only root may enter that.
    folder = Path(tempfile.mkdtemp(prefix="unitsel-postgres-"))
    data = folder / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, cwd=folder)

    run(_postgres_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    run(_postgres_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
        f"-p {port} -h 127.0.0.1 -k {folder}", "start")
    databases = iter(range(1_000_000))

    def new_catalog() -> str:
        name = f"lake{next(databases)}"
        run(_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            name)
        return f"postgres:dbname={name} host=127.0.0.1 port={port} user=postgres"

    try:
        yield new_catalog
    finally:
        run(_postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the demo warehouse (built once, about two minutes) are slow."""
    for item in items:
        if "demo_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
