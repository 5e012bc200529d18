"""Failures that used to be silent (issue #23): a missing or empty catalog, a mistyped root, a
second catalog over one root, credentials written down, a failed first job's leftovers. Each
case runs the command a user would type, must exit non-zero with a line saying what was found,
and must leave every file of the root as it was (or not create the root at all).
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unitsel.cli import cli

from .conftest import REPO

LABELS = "stimulus,label\n" + "".join(f"{i},c{i % 2}\n" for i in range(4))
READERS = [["query", "SELECT count(*) FROM activations"], ["snapshots"], ["models"],
           ["layers"], ["clean"], ["sql"], ["metrics", "selectivity", "--model-id", "m",
                                            "--stimulus-set", "s", "--out", "x.csv"]]
WRITERS = [["init"], ["ingest", "arrays", "acts.npy", "--labels", "labels.csv", "--model-id",
                      "m", "--stimulus-set", "s", "--layer", "fc"]]


def _fingerprint(root: Path) -> dict[str, str] | None:
    """Every file under `root` (the catalog too) by its content's hash; None: no root."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _arrays(root: Path, *options: str) -> list[str]:
    return [*options, "ingest", "arrays", "acts.npy", "--labels", "labels.csv", "--model-id",
            "m", "--stimulus-set", "s", "--layer", "fc", "--root", str(root)]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a small array and its labels."""
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "acts.npy", np.arange(12, dtype=np.float32).reshape(4, 3))
    (tmp_path / "labels.csv").write_text(LABELS)
    return tmp_path


@pytest.fixture
def warehouse(folder: Path) -> Path:
    result = CliRunner().invoke(cli, _arrays(folder / "warehouse"))
    assert result.exit_code == 0, result.output
    return folder / "warehouse"


def _delete(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "*"):  # the catalog and its WAL files
        leftover.unlink()


def _empty(path: Path) -> None:
    _delete(path)
    path.write_bytes(b"")


def _refused(args: list[str], root: Path, says: str) -> None:
    before = _fingerprint(root)
    result = CliRunner().invoke(cli, [*args, "--root", str(root)])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "unexpected" not in result.output, result.output
    assert says in result.output, result.output
    assert _fingerprint(root) == before, "the root changed"


@pytest.mark.parametrize("damage", [_delete, _empty], ids=["deleted", "emptied"])
@pytest.mark.parametrize("args", READERS + WRITERS, ids=lambda a: " ".join(a[:2]))
def test_a_lost_catalog_is_never_replaced_by_a_new_one(
        warehouse: Path, damage: Callable[[Path], None], args: list[str]) -> None:
    damage(warehouse / "catalog.sqlite")
    _refused(args, warehouse, "holds data files")


@pytest.mark.parametrize("damage", [_delete, _empty], ids=["deleted", "emptied"])
def test_the_duckdb_cli_entry_refuses_a_lost_catalog(
        warehouse: Path, damage: Callable[[Path], None]) -> None:
    damage(warehouse / "catalog.sqlite")
    before = _fingerprint(warehouse)
    out = subprocess.run(
        [str(Path(sys.executable).with_name("duckdb")), "-csv", "-cmd",
         f"SET VARIABLE wh_root='{warehouse}'", "-cmd", ".read sql/init.sql", "-c",
         "SELECT count(*) FROM activations"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode != 0
    assert "holds data files but its catalog.sqlite is missing or empty" in out.stderr, out
    assert _fingerprint(warehouse) == before


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_reading_commands_never_create_a_warehouse(folder: Path, args: list[str]) -> None:
    _refused(args, folder / "mistyped", "not a unitsel warehouse")
    assert not (folder / "mistyped").exists()


def test_migrate_refuses_a_folder_without_an_old_warehouse(folder: Path) -> None:
    photos = folder / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8 not really")
    _refused(["migrate"], photos, "holds no warehouse of the old layout")
    _refused(["migrate"], folder / "missing", "holds no warehouse of the old layout")
    assert not (folder / "missing").exists()


def test_a_second_catalog_over_a_root_is_refused(warehouse: Path) -> None:
    other = warehouse.parent / "other.sqlite"
    _refused(["--catalog", f"sqlite:{other}", "query", "SELECT 1"], warehouse,
             "this warehouse's catalog is its own catalog.sqlite")
    _refused(_arrays(warehouse, "--catalog", f"sqlite:{other}")[:-2], warehouse,
             "this warehouse's catalog is its own catalog.sqlite")
    assert not other.exists()


def test_another_sqlite_catalog_is_remembered_by_the_root(folder: Path) -> None:
    """A root made with `--catalog sqlite:<file>` finds that file again without the option."""
    catalog = folder / "elsewhere.sqlite"
    assert CliRunner().invoke(cli, _arrays(folder / "w", "--catalog",
                                           f"sqlite:{catalog}")).exit_code == 0
    result = CliRunner().invoke(cli, ["query", "SELECT count(*) AS n FROM activations",
                                      "--csv", "--root", str(folder / "w")])
    assert result.output == "n\n12\n", result.output
    assert (folder / "w" / "catalog.txt").read_text() == f"sqlite:{catalog}\n"


def test_a_failed_first_job_with_an_unreachable_catalog_leaves_no_root(folder: Path) -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        catalog = (f"postgres:host=127.0.0.1 port={bound.getsockname()[1]} dbname=lake "
                   "connect_timeout=5")
        result = CliRunner().invoke(cli, _arrays(folder / "new", "--catalog", catalog))
    assert result.exit_code != 0, result.output
    assert not (folder / "new").exists(), sorted((folder / "new").rglob("*"))


@pytest.mark.slow
def test_a_password_is_never_written_down(
        folder: Path, postgres_server: Callable[[], str]) -> None:
    """The password of a PostgreSQL catalog (the test server trusts every local connection,
    so any password is accepted) is neither in catalog.txt nor in a commit message."""
    catalog = postgres_server() + " password=hunter2"
    result = CliRunner().invoke(cli, _arrays(folder / "pg", "--catalog", catalog))
    assert result.exit_code == 0, result.output
    assert "hunter2" not in (folder / "pg" / "catalog.txt").read_text()
    result = CliRunner().invoke(cli, ["snapshots", "--root", str(folder / "pg")])
    assert result.exit_code == 0 and "ingest arrays" in result.output, result.output
    assert "hunter2" not in result.output and "--catalog" not in result.output
    everything = b"".join(p.read_bytes() for p in (folder / "pg").rglob("*") if p.is_file())
    assert b"hunter2" not in everything


def test_a_scheduler_that_never_answers_fails_before_any_work(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener that accepts connections and never answers, as a scheduler: the job fails
    within the handshake timeout, names the option, and leaves no root."""
    monkeypatch.setattr("unitsel.compute.SCHEDULER_TIMEOUT", 2.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        result = CliRunner().invoke(cli, [*_arrays(folder / "new")[:1], "--scheduler", address,
                                          *_arrays(folder / "new")[1:]])
    assert time.monotonic() - started < 30
    assert result.exit_code != 0, result.output
    assert f"the Dask scheduler '{address}' did not answer within 2 s" in result.output
    assert "--scheduler" in result.output and "unexpected" not in result.output
    assert not (folder / "new").exists()


@pytest.mark.parametrize("snapshot", ["-1", str(2**70), "99"])
@pytest.mark.parametrize("command", [["query", "SELECT 1"], ["sql"]], ids=["query", "sql"])
def test_a_snapshot_that_does_not_exist_is_named(
        warehouse: Path, snapshot: str, command: list[str]) -> None:
    _refused([*command, "--snapshot", snapshot], warehouse,
             f"option --snapshot: no snapshot {snapshot}: this warehouse has snapshots 0 to")


@pytest.mark.parametrize("age", ["-1", "nan", "inf", "-inf"])
@pytest.mark.parametrize("option", ["--orphans-older-than", "--expire-older-than"])
def test_clean_refuses_ages_that_are_not_ages(warehouse: Path, age: str, option: str) -> None:
    _refused(["clean", option, age], warehouse, "is not an age: give a finite number >= 0")
