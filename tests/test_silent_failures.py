"""Failures that used to be silent (issue #23): a missing or empty catalog, a mistyped root, a
second catalog over one root, credentials written down, a failed first job's leftovers, a
read-only share, a full disk, a data file gone, a catalog server lost mid-commit. Each case
runs the command a user would type, must exit non-zero with a line saying what was found, and
must leave every file of the root as it was (or not create the root at all). The faults are
real: a read-only bind mount, a small tmpfs filled up, a PostgreSQL server stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from unitsel.cli import cli
from unitsel.errors import FaultError
from unitsel.integrity import check
from unitsel.warehouse import scan

from .conftest import REPO, Postgres

LABELS = "stimulus,label\n" + "".join(f"{i},c{i % 2}\n" for i in range(4))
READERS = [["query", "SELECT count(*) FROM activations"], ["snapshots"], ["models"],
           ["layers"], ["clean"], ["sql"], ["metrics", "selectivity", "--model-id", "m",
                                            "--stimulus-set", "s", "--out", "x.csv"]]
WRITERS = [["init"], ["ingest", "arrays", "acts.npy", "--labels", "labels.csv", "--model-id",
                      "m", "--stimulus-set", "s", "--layer", "fc"]]


def _fingerprint(root: Path) -> dict[str, str] | None:
    """Every file under `root` (the catalog too) by its content's hash; None: no root.
    SQLite's shared-memory index and an empty WAL are its own bookkeeping, not content (a
    full disk keeps SQLite from removing them)."""
    if not root.exists():
        return None
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()
            and not p.name.endswith("-shm") and not (p.name.endswith("-wal")
                                                     and p.stat().st_size == 0)}


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


def _mounted(*command: str) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.fixture
def read_only(warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The warehouse seen through a read-only bind mount (as a share mounted read-only); as
    a user other than root, a copy whose files and folders lack write permission."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shared = tmp_path / "shared"
    shared.mkdir()
    if os.geteuid() != 0:
        shutil.copytree(warehouse, shared, dirs_exist_ok=True)
        for path in [shared, *shared.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        yield shared
        for path in [shared, *shared.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        return
    if not (_mounted("mount", "--bind", str(warehouse), str(shared))
            and _mounted("mount", "-o", "remount,bind,ro", str(shared))):
        _mounted("umount", "--lazy", str(shared))
        pytest.skip("a read-only bind mount needs CAP_SYS_ADMIN here (root ignores modes)")
    try:
        yield shared
    finally:
        _mounted("umount", "--lazy", str(shared))


def test_a_read_only_warehouse_is_readable(
        warehouse: Path, read_only: Path, folder: Path) -> None:
    before = _fingerprint(warehouse)
    for args, says in [(["query", "SELECT count(*) AS n FROM activations", "--csv"], "n\n12\n"),
                       (["snapshots"], "ingest arrays"), (["models"], "acts.npy"),
                       (["layers"], "fc"), (["check"], "no problems"),
                       (["metrics", "selectivity", "--model-id", "m", "--stimulus-set", "s",
                         "--out", str(folder / "units.csv")], "wrote 3 units")]:
        result = CliRunner().invoke(cli, [*args, "--root", str(read_only)])
        assert result.exit_code == 0 and says in result.output, (args, result.output)
    command = CliRunner().invoke(cli, ["sql", "--root", str(read_only)]).output.strip()
    out = subprocess.run(f"{command} -csv -c 'SELECT count(*) AS n FROM activations'",
                         shell=True, capture_output=True, text=True)
    assert out.stdout == "n\n12\n", out
    for args in [["init"], ["clean"], ["drop", "activations", "model_id=m"], _arrays(read_only)]:
        _refused([a for a in args if a != "--root" and a != str(read_only)], read_only,
                 "the warehouse is read-only")
    assert _fingerprint(warehouse) == before


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own, to fill."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _mounted("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)):
        pytest.skip("mounting a small tmpfs needs CAP_SYS_ADMIN here")
    try:
        yield disk
    finally:
        _mounted("umount", "--lazy", str(disk))  # this process may hold the catalog open


@pytest.mark.parametrize("free_kib", [0, 300, 700])
def test_a_full_disk_is_named_and_nothing_is_committed(
        folder: Path, small_disk: Path, free_kib: int) -> None:
    """Filled to `free_kib` the job fails where it runs out (its data file, the catalog,
    the summaries): always "no space left on device", never a retry as a conflict, every
    error on a line of its own, the root as it was; with space again the same job works."""
    root = small_disk / "warehouse"
    assert CliRunner().invoke(cli, _arrays(root)).exit_code == 0
    rng = np.random.default_rng(0)
    np.save(folder / "big.npy", rng.random((2000, 150), dtype=np.float32))
    (folder / "big.csv").write_text("stimulus,label\n" + "".join(
        f"{i},c{i % 2}\n" for i in range(2000)))
    job = [str(Path(sys.executable).with_name("unitsel")), "ingest", "arrays", "big.npy",
           "--labels", "big.csv", "--model-id", "big", "--stimulus-set", "b", "--layer", "fc",
           "--root", str(root)]
    filler = small_disk / "filler"
    filler.write_bytes(b"")
    with filler.open("ab") as fill, contextlib.suppress(OSError):
        fill.write(b"\0" * max(0, shutil.disk_usage(small_disk).free - free_kib * 1024))
    before = _fingerprint(root)
    out = subprocess.run(job, cwd=folder, capture_output=True, text=True)
    assert out.returncode == 1, out
    assert "no space left on device" in out.stderr, out.stderr
    assert "other jobs" not in out.stderr and "unexpected" not in out.stderr, out.stderr
    assert not re.search(r"[^\n]Error: ", out.stderr), out.stderr  # on a line of its own
    assert _fingerprint(root) == before
    filler.unlink()
    assert subprocess.run(job, cwd=folder, capture_output=True).returncode == 0
    result = CliRunner().invoke(cli, ["check", "--root", str(root)])
    assert result.exit_code == 0 and "no problems" in result.output, result.output


@pytest.fixture
def two_models(warehouse: Path) -> Path:
    result = CliRunner().invoke(cli, [*_arrays(warehouse)[:-2], "--model-id", "m2",
                                      "--root", str(warehouse)])
    assert result.exit_code == 0, result.output
    return warehouse


def _data_file(root: Path, model: str) -> Path:
    (found,) = (root / "data" / "main" / "activations" / f"model_id={model}").rglob("*.parquet")
    return found


def _count(root: Path) -> str:
    return CliRunner().invoke(cli, ["query", "SELECT count(*) AS n FROM activations", "--csv",
                                    "--root", str(root)]).output


@pytest.mark.parametrize("repair", [["drop", "activations", "model_id=m"],
                                    _arrays(Path("unused"))[:-2]], ids=["drop", "re-ingest"])
def test_a_missing_data_file_is_named_and_its_partition_repaired(
        two_models: Path, repair: list[str]) -> None:
    lost = _data_file(two_models, "m")
    lost.unlink()
    result = CliRunner().invoke(cli, ["check", "--root", str(two_models)])
    assert result.exit_code == 1, result.output
    assert (f"problem: activations partition model_id=m, stimulus_set=s, layer=fc, pool=none: "
            f"data file {lost} is missing") in result.output, result.output
    with pytest.raises(FaultError, match=r"model_id=m, stimulus_set=s, layer=fc, pool=none\) "
                                         r"is missing"):
        scan("activations", two_models).collect()
    result = CliRunner().invoke(cli, [*repair, "--root", str(two_models)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["check", "--root", str(two_models)])
    assert result.exit_code == 0 and "no problems" in result.output, result.output
    assert _count(two_models) == ("n\n12\n" if repair[0] == "drop" else "n\n24\n")
    assert not lost.exists()  # the stand-in the DELETE read is gone


def test_check_finds_a_data_file_that_is_not_what_the_catalog_recorded(
        two_models: Path) -> None:
    changed = _data_file(two_models, "m2")
    pq.write_table(pq.read_table(changed).slice(0, 5), changed)
    result = CliRunner().invoke(cli, ["check", "--root", str(two_models)])
    assert result.exit_code == 1, result.output
    assert f"data file {changed} holds 5 rows, the catalog recorded 12" in result.output


def test_check_finds_outdated_summaries_and_orphans(
        two_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orphan = two_models / "data" / "main" / "activations" / "left-by-a-killed-job.parquet"
    pq.write_table(pa.table({"x": [1]}), orphan)
    monkeypatch.setattr("unitsel.summaries.LAYOUT_VERSION", 10**6)
    report = check(two_models)
    assert report.problems == [
        f"activations partition model_id={m}, stimulus_set=s, layer=fc, pool=none: its "
        "summaries are outdated or missing; `unitsel summarise` rebuilds them"
        for m in ("m", "m2")]
    assert report.notes == ["1 data files no snapshot lists (a failed or killed job's; "
                            "`unitsel clean` deletes those older than 24 h): "
                            "main/activations/left-by-a-killed-job.parquet"]


STOP_IN_COMMIT = """
import subprocess, sys
from unitsel import summaries
from unitsel.cli import cli

build = summaries.Build.__call__

def stop_the_server_then_build(self, *args, **kwargs):
    subprocess.run(sys.argv[1].split("\\x1f"), check=True, capture_output=True)
    return build(self, *args, **kwargs)

summaries.Build.__call__ = stop_the_server_then_build
cli(sys.argv[2:], prog_name="unitsel")
"""


def test_a_catalog_server_lost_mid_commit_is_one_line(folder: Path) -> None:
    """A real PostgreSQL catalog server stopped inside the commit (while the summaries are
    built in the open transaction): one line naming the catalog, exit 1, no abort, and no
    data file of the job left behind."""
    server = Postgres()
    try:
        catalog = server.new_catalog()
        root = folder / "pg"
        assert CliRunner().invoke(cli, _arrays(root, "--catalog", catalog)).exit_code == 0
        before = _fingerprint(root)
        out = subprocess.run(
            [sys.executable, "-c", STOP_IN_COMMIT, "\x1f".join(server.stop_command),
             *_arrays(root)[:-2], "--model-id", "m2", "--root", str(root)],
            cwd=folder, capture_output=True, text=True)
    finally:
        server.close()
    assert out.returncode == 1, out  # not 134: SIGABRT
    errors = [line for line in out.stderr.splitlines() if line.strip()]
    assert errors[-1] == (f"Error: the catalog {catalog} cannot be used: the connection was "
                          "lost; nothing was committed; check the server and run the job "
                          "again"), out.stderr
    assert "LINE 1" not in out.stderr and "terminate" not in out.stderr
    assert _fingerprint(root) == before
