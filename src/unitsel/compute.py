"""Where per-file work runs: in this process, on a local Dask cluster, or on a cluster you
started (a job's `scheduler`: the CLI's `--scheduler ADDRESS`, e.g. dask-jobqueue on Slurm).

Work is a list of independent tasks, each a module-level function and its arguments (a data
file to summarise, a partition to analyse). Workers read and write files in the lake's data
path, so every worker must reach it: a folder at the same path (a shared filesystem), or a
bucket (with the AWS_* variables in the worker's environment, docs/cluster.md); they never
touch the catalog: the job that submitted the tasks commits what they wrote, once.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from tqdm import tqdm

from unitsel.errors import FaultError, InputError

WORKERS_ENV = "UNITSEL_WORKERS"  # workers of the local cluster; default one per core
# Below this much work a local cluster costs more to start (seconds) than it saves.
LOCAL_CLUSTER_ROWS = 200_000_000
# Seconds a scheduler has to answer before a job starts: a listener that accepts and never
# answers would otherwise hang the job (a Client's own timeout does not bound the handshake).
SCHEDULER_TIMEOUT = 30.0
# Seconds a job waits on a cluster that has no worker at all (every worker died or left)
# before it fails: Dask itself would wait forever for one to join. A worker lost while others
# live, or replaced within this time, is not a failure: Dask reruns its tasks elsewhere.
NO_WORKER_TIMEOUT = 60.0
# Seconds between looks at the scheduler's count of workers while a job waits on its tasks.
WORKER_POLL = 1.0
T = TypeVar("T")


class Runner:
    """Runs tasks one after the other in this process."""

    name = "this process"
    # Threads a task may use (DuckDB's default, every core, when None).
    threads: int | None = None

    def map(self, function: Callable[..., T], tasks: Sequence[tuple[Any, ...]], *,
            desc: str, unit: str, progress: bool = True, shared: tuple[Any, ...] = (),
            sizes: Sequence[int] | None = None) -> list[T]:
        """`function(*shared, *task)` for every task, in order, with a progress bar counted
        in `unit`s: one per task, or each task's `sizes` (rows). `shared` are inputs every
        task reads (a matrix): sent to each worker once."""
        sizes = list(sizes) if sizes is not None else [1] * len(tasks)
        bar = tqdm(total=sum(sizes), desc=desc, unit=unit, unit_scale=sum(sizes) > 10_000,
                   disable=not progress or not tasks)
        results = []
        for task, size in zip(tasks, sizes, strict=True):
            results.append(function(*shared, *task))
            bar.update(size)
        bar.close()
        return results


class DaskRunner(Runner):
    """Runs tasks on a Dask cluster's workers."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        # Each worker process runs one task at a time on one core.
        self.threads = 1

    def map(self, function: Callable[..., T], tasks: Sequence[tuple[Any, ...]], *,
            desc: str, unit: str, progress: bool = True, shared: tuple[Any, ...] = (),
            sizes: Sequence[int] | None = None) -> list[T]:
        if not tasks:
            return []
        sizes = list(sizes) if sizes is not None else [1] * len(tasks)
        # In a list, so a dict or list is sent as one value, not element by element.
        inputs = [self.client.scatter([value], broadcast=True)[0] for value in shared]
        futures = [self.client.submit(function, *inputs, *task, pure=False) for task in tasks]
        size_of = {future.key: size for future, size in zip(futures, sizes, strict=True)}
        with tqdm(total=sum(sizes), desc=f"{desc} ({self.name})", unit=unit,
                  unit_scale=sum(sizes) > 10_000, disable=not progress) as bar:
            self._wait(futures, lambda future: bar.update(size_of[future.key]))
        return list(self.client.gather(futures))

    def _wait(self, futures: list[Any], done: Callable[[Any], object]) -> None:
        """Until every future is done (`done(future)` for each), or a FaultError when the
        cluster has had no worker for `NO_WORKER_TIMEOUT` seconds or dropped a task.

        Not a plain `for … in as_completed(…)`: that waits forever on a cluster whose
        workers all died (Dask keeps the tasks for workers that may join), so between
        completions this loop looks at the scheduler's count of workers."""
        from distributed import as_completed
        from distributed.client import FutureCancelledError

        pending = as_completed(futures)
        workerless_since: float | None = None  # since when the cluster had no worker
        next_look = 0.0
        while not pending.is_empty():
            ready = pending.next_batch(block=False)
            for future in ready:
                if future.cancelled():  # not by this job, which cancels only as it fails
                    try:
                        future.result()
                    except FutureCancelledError as error:  # its reason, for the message
                        self._give_up(futures, f"cancelled the job's tasks ({error.reason}: "
                                               "workers holding their inputs died, or it "
                                               "restarted); run the job again")
                done(future)
            now = time.monotonic()
            if now >= next_look:
                next_look = now + WORKER_POLL
                # A cheap call: the count, no details per worker. Missing while the client
                # reconnects to its scheduler: not judged here.
                if self.client.scheduler_info(n_workers=0).get("n_workers") != 0:
                    workerless_since = None
                elif workerless_since is None:
                    workerless_since = now
                elif now - workerless_since >= NO_WORKER_TIMEOUT:
                    address = self.client.scheduler.address
                    self._give_up(futures, f"has had no worker for {NO_WORKER_TIMEOUT:g} s; "
                                           f"start workers (`dask worker {address}`) and run "
                                           "the job again")
            if not ready:
                time.sleep(0.1)  # as_completed's own pace

    def _give_up(self, futures: list[Any], what: str) -> NoReturn:
        """Fail the job before its commit: its tasks are cancelled, so workers that join
        later do not run them."""
        self.client.cancel(futures)
        raise FaultError(f"option --scheduler: the Dask scheduler "
                         f"{self.client.scheduler.address!r} {what}; nothing was committed")


def check_scheduler(address: str) -> int:
    """Contact the Dask scheduler at `address` (before a job does any work); its number of
    workers, or an InputError saying it did not answer within `SCHEDULER_TIMEOUT` seconds."""
    import asyncio

    from distributed.comm.core import connect

    async def identity() -> int:
        comm = await connect(address)
        try:
            await comm.write({"op": "identity", "reply": True})
            return len((await comm.read())["workers"])
        finally:
            await comm.close()

    try:
        return asyncio.run(asyncio.wait_for(identity(), SCHEDULER_TIMEOUT))
    except TimeoutError:
        raise InputError(f"the Dask scheduler {address!r} did not answer within "
                         f"{SCHEDULER_TIMEOUT:g} s; is `dask scheduler` running there?",
                         column="--scheduler") from None
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"the Dask scheduler {address!r} cannot be reached: {error}",
                         column="--scheduler") from None


@contextlib.contextmanager
def runner(scheduler: str | None = None, *, rows: int = 0,
           workers: int | None = None) -> Iterator[Runner]:
    """The runner for `rows` of work: the Dask scheduler at `scheduler`;
    else, when the work is big enough to pay for starting it, a local cluster of
    single-threaded worker processes, one per core (`$UNITSEL_WORKERS` to choose); else this
    process. `workers` > 1 asks for a local cluster of that many workers whatever the size;
    1 for this process."""
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            yield DaskRunner(client, f"scheduler {scheduler}")
        return
    if workers is None:
        if rows < LOCAL_CLUSTER_ROWS:
            yield Runner()
            return
        workers = int(os.environ.get(WORKERS_ENV) or os.cpu_count() or 1)
    elif workers <= 1:
        yield Runner()
        return
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield DaskRunner(client, f"local cluster, {workers} workers")
