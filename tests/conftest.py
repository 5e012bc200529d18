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


def checksum(root: Path) -> str | None:
    """Every file's path and content (the catalog by its newest snapshot: SQLite may rewrite
    its pages without a change); None when the root does not exist."""
    import hashlib
    import sqlite3

    if not root.exists():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("catalog.sqlite"):
            continue
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    catalog = root / "catalog.sqlite"
    if catalog.exists():
        with sqlite3.connect(catalog) as con:
            digest.update(repr(con.execute(
                "SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()).encode())
    return digest.hexdigest()


def _postgres_bin(name: str) -> str:
    import glob
    import shutil

    found = shutil.which(name) or next(iter(sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is missing: `make setup` installs Debian's "
                           "postgresql package")
    return found


class Postgres:
    """A real PostgreSQL server on a free local port, in a folder of its own. The server
    refuses to run as root, so as root it runs as the Debian package's `postgres` user."""

    def __init__(self) -> None:
        import os
        import shutil
        import socket
        import tempfile

        # Not under pytest's temporary folder: only root may enter that.
        self.folder = Path(tempfile.mkdtemp(prefix="unitsel-postgres-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.databases = iter(range(1_000_000))
        self._run(_postgres_bin("initdb"), "-D", str(self.folder / "data"), "-A", "trust",
                  "-U", "postgres")
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.folder / "data"), "-l",
                  str(self.folder / "log"), "-w", "-o",
                  f"-p {self.port} -h 127.0.0.1 -k {self.folder}", "start")

    def _run(self, *command: str) -> None:
        import subprocess

        subprocess.run([*self.as_user, *command], check=True, capture_output=True,
                       cwd=self.folder)

    def new_catalog(self) -> str:
        """An empty database, as a unitsel catalog ('postgres:<libpq string>')."""
        name = f"lake{next(self.databases)}"
        self._run(_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  "postgres", name)
        return f"postgres:dbname={name} host=127.0.0.1 port={self.port} user=postgres"

    @property
    def stop_command(self) -> list[str]:
        """Stops the server at once, as a crash would (no clean shutdown of sessions)."""
        return [*self.as_user, _postgres_bin("pg_ctl"), "-D", str(self.folder / "data"),
                "-m", "immediate", "-w", "stop"]

    def close(self) -> None:
        import shutil
        import subprocess

        subprocess.run(self.stop_command, capture_output=True, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Callable[[], str]]:
    """A PostgreSQL server for the session; yields a function that creates an empty
    database and returns its unitsel catalog."""
    server = Postgres()
    try:
        yield server.new_catalog
    finally:
        server.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the demo warehouse (built once, about two minutes) are slow."""
    for item in items:
        if "demo_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
