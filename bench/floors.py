"""Benchmark: unitsel's write path against the floors of the same hardware, in one run.

On the data of `bench/selectivity.py` (seeded ReLU-like activations, about half exact zeros,
balanced labels, a third of the stimuli "incorrect"), measures in one process, one run each:

- write floor: pyarrow writing the same long table (unit, stimulus, activation and the four
  partition keys as dictionary columns, as unitsel's data files hold them) to Parquet, no
  catalog;
- read floor: reading the activation column of that file back;
- scan floor: DuckDB's `sum(activation)` over that file;
- kernel floor: a plain fused numba kernel over the dense array transposed to units x
  stimuli (the transpose counted), units in parallel: per unit one stable argsort, one walk
  for both subsets' mid-rank sums and tie terms, the top 100, one pass for the per-label
  moments; checked against SciPy's `rankdata` and numpy on sampled units;
- unitsel: `ingest_arrays` from the `.npy` (write + summaries, one commit) and rebuilding
  every summary (`unitsel summarise --rebuild`),

and prints unitsel's times as multiples of (write + kernel) and (read + kernel), so the
numbers mean the same on any machine.

    python bench/floors.py                            # 100,000 x 1,000 x 100 labels = 1e8
    python bench/floors.py --stimuli 20000 --units 1000
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.stats
from numba import njit, prange
from selectivity import generate, size_arguments

import unitsel
from ingest.arrays import ingest_arrays
from ingest.demos import steps

K = 100


def timed(label: str, results: dict[str, float], run: object) -> object:
    started = time.perf_counter()
    value = run()  # type: ignore[operator]
    results[label] = time.perf_counter() - started
    print(f"{label:<44} {results[label]:8.3f} s", flush=True)
    return value


def long_table(acts: np.ndarray) -> tuple[pa.Schema, list[pa.Table]]:
    """The long table unitsel writes (partition keys as dictionary columns), in blocks of
    whole units of at most 8 M rows, as unitsel's data files hold them; built before the
    write floor is timed, so it times the Parquet write alone."""
    n_stimuli, n_units = acts.shape
    block = max(1, 8_000_000 // n_stimuli)
    keys = {name: pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_stimuli * block,
                                                                   np.int32)),
                                                 pa.array([value]))
            for name, value in (("model_id", "bench"), ("stimulus_set", "bench"),
                                ("layer", "fc"), ("pool", "none"))}
    schema = pa.schema([pa.field(n, pa.dictionary(pa.int32(), pa.string())) for n in keys]
                       + [("unit", pa.int32()), ("stimulus", pa.int32()),
                          ("activation", pa.float32())])
    blocks = []
    for first in range(0, n_units, block):
        units = min(block, n_units - first)
        rows = n_stimuli * units
        blocks.append(pa.table({
            **{n: k.slice(0, rows) for n, k in keys.items()},
            "unit": np.repeat(np.arange(first, first + units, dtype=np.int32), n_stimuli),
            "stimulus": np.tile(np.arange(n_stimuli, dtype=np.int32), units),
            "activation": np.ascontiguousarray(acts[:, first:first + units].T).ravel()},
            schema=schema))
    return schema, blocks


def write_floor(schema: pa.Schema, blocks: list[pa.Table], path: Path) -> None:
    """Parquet write of the long table with unitsel's encoding, no catalog."""
    strings = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    with pq.ParquetWriter(path, schema, use_dictionary=strings,
                          store_schema=False) as writer:
        for table in blocks:
            writer.write_table(table)


@njit(cache=True, parallel=True)
def fused_kernel(units: np.ndarray, labels: np.ndarray, correct: np.ndarray, n_labels: int,
                 k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unit (a row of `units`, units x stimuli): both subsets' mid-rank sums per label
    and tie terms, the top k (activation descending, ties by stimulus), per-label mean and
    M2 of all stimuli. Units in parallel on every core, as unitsel's kernel runs them."""
    n_units, n = units.shape
    rank_sum = np.zeros((n_units, 2, n_labels))
    tie = np.zeros((n_units, 2))
    top = np.empty((n_units, k), np.int64)
    mean = np.zeros((n_units, n_labels))
    m2 = np.zeros((n_units, n_labels))
    count = np.zeros(n_labels)
    for label in labels:
        count[label] += 1
    for u in prange(n_units):
        column = units[u]
        order = np.argsort(column, kind="mergesort")
        i = 0
        seen = 0
        while i < n:
            j = i + 1
            while j < n and column[order[j]] == column[order[i]]:
                j += 1
            c = 0
            for r in range(i, j):
                c += correct[order[r]]
            tie[u, 0] += float(j - i) ** 3 - (j - i)
            tie[u, 1] += float(c) ** 3 - c
            for r in range(i, j):
                s = order[r]
                rank_sum[u, 0, labels[s]] += (i + 1 + j) / 2.0
                if correct[s]:
                    rank_sum[u, 1, labels[s]] += (2 * seen + 1 + c) / 2.0
            seen += c
            i = j
        # Top k: descending, ties by stimulus ascending (the stable order's groups reversed).
        filled = 0
        j = n
        while j > 0 and filled < k:
            i = j - 1
            while i > 0 and column[order[i - 1]] == column[order[j - 1]]:
                i -= 1
            for r in range(i, j):
                if filled < k:
                    top[u, filled] = order[r]
                    filled += 1
            j = i
        for i in range(n):
            mean[u, labels[i]] += column[i]
        for label in range(n_labels):
            mean[u, label] /= count[label]
        for i in range(n):
            d = column[i] - mean[u, labels[i]]
            m2[u, labels[i]] += d * d
    return rank_sum, tie, top, mean, m2


def check_kernel(acts: np.ndarray, labels: np.ndarray, correct: np.ndarray,
                 found: tuple[np.ndarray, ...]) -> None:
    """The floor kernel against SciPy / numpy on 10 units spread over the layer."""
    rank_sum, tie, top, mean, m2 = found
    for u in np.linspace(0, acts.shape[1] - 1, 10).astype(int):
        a = np.asarray(acts[:, u], np.float64)
        for s, chosen in enumerate((np.ones(len(a), bool), correct)):
            ranks = scipy.stats.rankdata(a[chosen])
            expected = np.bincount(labels[chosen], ranks, minlength=rank_sum.shape[2])
            np.testing.assert_allclose(rank_sum[u, s], expected, rtol=1e-12)
            _, t = np.unique(a[chosen], return_counts=True)
            assert tie[u, s] == float((t.astype(float) ** 3 - t).sum())
        order = np.lexsort((np.arange(len(a)), -a))[:K]
        assert (top[u] == order).all()
        for label in range(mean.shape[1]):
            x = a[labels == label]
            np.testing.assert_allclose(mean[u, label], x.mean(), rtol=1e-9)
            np.testing.assert_allclose(m2[u, label], ((x - x.mean()) ** 2).sum(), rtol=1e-9)


def main() -> None:
    args = size_arguments(__doc__)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        labels = generate(work, args.stimuli, args.units, args.labels)
        correct = np.arange(args.stimuli) % 3 > 0
        (work / "labels.csv").write_text("stimulus,label,is_correct\n" + "".join(
            f"{i},c{label},{str(c).lower()}\n" for i, (label, c) in enumerate(zip(
                labels, correct, strict=True))))
        acts = np.load(work / "acts.npy")
        print(f"rows: {acts.size:,} ({args.stimuli:,} stimuli x {args.units:,} units x "
              f"{args.labels} labels)")
        fused_kernel(np.ascontiguousarray(acts[:50, :2].T), labels[:50] % 2, correct[:50], 2,
                     5)  # compile first
        schema, blocks = long_table(acts)
        timed("write floor: pyarrow Parquet write", results,
              lambda: write_floor(schema, blocks, work / "floor.parquet"))
        blocks.clear()  # 1.2 GB at 10^8 rows
        timed("read floor: activation column", results, lambda: pq.read_table(
            work / "floor.parquet", columns=["activation"]))
        timed("scan floor: DuckDB sum(activation)", results, lambda: duckdb.sql(
            f"SELECT sum(activation) FROM '{work / 'floor.parquet'}'").fetchall())
        found = timed("kernel floor: fused numba kernel", results,
                      lambda: fused_kernel(np.ascontiguousarray(acts.T),
                                           labels.astype(np.int64), correct, args.labels, K))
        check_kernel(acts, labels, correct, found)  # type: ignore[arg-type]
        print("the floor kernel agrees with SciPy's rankdata and numpy on 10 units")
        step = steps(work / "warehouse", progress=False)
        timed("unitsel: ingest arrays (write + summaries)", results, lambda: step(
            ingest_arrays, work / "acts.npy", work / "labels.csv", model_id="bench",
            stimulus_set="bench", layer="fc"))
        timed("unitsel: summarise --rebuild", results,
              lambda: step(unitsel.Transaction.rebuild_summaries, every=True))
    kernel = results["kernel floor: fused numba kernel"]
    write = results["write floor: pyarrow Parquet write"]
    read = results["read floor: activation column"]
    ingest = results["unitsel: ingest arrays (write + summaries)"]
    rebuild = results["unitsel: summarise --rebuild"]
    print(f"ingest / (write floor + kernel floor): {ingest / (write + kernel):.2f}x "
          f"(target <= 1.5x)")
    print(f"summarise --rebuild / (read floor + kernel floor): "
          f"{rebuild / (read + kernel):.2f}x (target <= 1.5x)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
