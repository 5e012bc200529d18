"""A job whose Dask cluster loses its workers: real scheduler and worker processes on
127.0.0.1, workers killed with SIGKILL mid-job. Every worker gone for `NO_WORKER_TIMEOUT`
seconds fails the job with one line and commits nothing; one lost worker while another lives,
or one replaced in time, is retried by Dask and the job's results are whole."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner

from unitsel.cli import cli
from unitsel.compute import DaskRunner
from unitsel.errors import FaultError

from .conftest import checksum
from .test_dask import cluster, small_warehouse, worker

pytestmark = pytest.mark.slow  # real clusters: `make test` runs it, `make test-quick` not

T = TypeVar("T")
TASKS = 12
SECONDS = 0.5  # a task's length: a worker killed a second in is in the middle of one


def slow_square(seconds: float, x: int) -> int:
    """A task (run by the workers, which import this module)."""
    time.sleep(seconds)
    return x * x


def within(seconds: float, function: Callable[[], T]) -> T:
    """`function()`, run in a thread: its result or its exception, or a failed test when it
    is still running after `seconds` (a job that hangs must fail the test, not hang it)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still waiting after {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]  # type: ignore[no-any-return]


def squares(address: str, *, shared: bool = False) -> list[int]:
    """The squares of 0 to TASKS - 1, a slow task each, on the cluster at `address`; the
    tasks' length sent to every worker beforehand (scattered) when `shared`."""
    from distributed import Client

    tasks = [(x,) if shared else (SECONDS, x) for x in range(TASKS)]
    with Client(address) as client:
        return DaskRunner(client, f"scheduler {address}").map(
            slow_square, tasks, desc="squares", unit="task", progress=False,
            shared=(SECONDS,) if shared else ())


def no_worker_left(address: str) -> None:
    """Wait until the scheduler has noticed that its workers are gone."""
    from distributed import Client

    with Client(address) as client:
        for _ in range(300):
            if client.scheduler_info(n_workers=0)["n_workers"] == 0:
                return
            time.sleep(0.1)
    pytest.fail("the scheduler still lists a killed worker")


def test_a_job_fails_when_every_worker_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only worker killed mid-job: Dask would wait for another forever; the job fails
    once the cluster has had none for `NO_WORKER_TIMEOUT` seconds."""
    monkeypatch.setattr("unitsel.compute.NO_WORKER_TIMEOUT", 3.0)
    with cluster(tmp_path, 1, "--no-nanny") as (address, workers):
        threading.Timer(1.0, workers[0].kill).start()  # mid-job: 6 s of tasks on one worker
        started = time.monotonic()
        with pytest.raises(FaultError) as raised:
            within(60, lambda: squares(address))
        took = time.monotonic() - started
    assert 3 < took < 30
    assert str(raised.value) == (
        f"option --scheduler: the Dask scheduler {address!r} has had no worker for 3 s; "
        f"start workers (`dask worker {address}`) and run the job again; nothing was committed")


def test_a_job_whose_inputs_died_with_the_workers_fails_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inputs sent to every worker (`shared`) die with the last of them: Dask cancels the
    tasks that need them, and the job says so in one line, without waiting."""
    monkeypatch.setattr("unitsel.compute.NO_WORKER_TIMEOUT", 60.0)
    with cluster(tmp_path, 1, "--no-nanny") as (address, workers):
        threading.Timer(1.0, workers[0].kill).start()
        started = time.monotonic()
        with pytest.raises(FaultError) as raised:
            within(60, lambda: squares(address, shared=True))
        took = time.monotonic() - started
    assert took < 30
    message = str(raised.value)
    assert message.startswith(f"option --scheduler: the Dask scheduler {address!r} cancelled "
                              "the job's tasks ("), message
    assert message.endswith("run the job again; nothing was committed")
    assert "\n" not in message


def test_summarise_on_a_cluster_without_workers_fails_and_commits_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's hang: `summarise --rebuild --scheduler` on a cluster whose workers died."""
    root = tmp_path / "warehouse"
    small_warehouse(tmp_path, root)
    before = checksum(root)
    monkeypatch.setattr("unitsel.compute.NO_WORKER_TIMEOUT", 3.0)
    with cluster(tmp_path, 1, "--no-nanny") as (address, workers):
        workers[0].kill()
        no_worker_left(address)
        started = time.monotonic()
        result = within(60, lambda: CliRunner().invoke(
            cli, ["summarise", "--rebuild", "--scheduler", address, "--root", str(root)]))
    assert time.monotonic() - started < 30
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if "Error" in line]
    assert len(lines) == 1, result.output
    assert f"the Dask scheduler {address!r} has had no worker for 3 s" in lines[0]
    assert "--scheduler" in lines[0] and "unexpected" not in result.output
    assert checksum(root) == before, "the warehouse changed"


def test_one_lost_worker_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One of two workers killed mid-job: the other runs its tasks (with its own copy of the
    shared inputs), every result is there."""
    monkeypatch.setattr("unitsel.compute.NO_WORKER_TIMEOUT", 3.0)
    with cluster(tmp_path, 2, "--no-nanny") as (address, workers):
        threading.Timer(1.0, workers[0].kill).start()
        assert within(120, lambda: squares(address, shared=True)) == [
            x * x for x in range(TASKS)]
        assert workers[0].wait(timeout=10) < 0, "the worker was killed during the job"


def test_a_replaced_worker_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The only worker killed mid-job and a new one started: the job waits for it (within
    `NO_WORKER_TIMEOUT`) and completes."""
    monkeypatch.setattr("unitsel.compute.NO_WORKER_TIMEOUT", 60.0)
    with cluster(tmp_path, 1, "--no-nanny") as (address, workers):
        replacement: list[Any] = []

        def replace() -> None:
            workers[0].kill()
            workers[0].wait()
            replacement.append(worker(address, "replacement", tmp_path / "replacement",
                                      "--no-nanny"))

        threading.Timer(1.0, replace).start()
        try:
            assert within(120, lambda: squares(address)) == [x * x for x in range(TASKS)]
        finally:
            for process in replacement:
                process.terminate()
                process.wait(timeout=60)
