"""Benchmark: Gale et al.'s class selectivity and Lado & Dobs' category (face) family over one
layer, SQL on summaries vs numpy / SciPy.

Generates (seeded) a layer of stimuli x units activations with balanced labels, ReLU-like with
about half exact zeros, writes it through the real ingest path (`ingest_arrays` from a .npy),
then measures in one run: the DuckDB scan floor (sum over the same file), building the
summaries (moments, mid-rank sums and tie terms, top-k), a full `unit_selectivity` query and
a full `unit_category_selectivity` query (label c0 against the rest; 99 t-tests per unit), each
first and repeated, and a naive per-unit numpy loop (what a researcher writes today). Checks
that SQL agrees with numpy on every unit and with SciPy on a sample of units, and prints the
ratios.

    python bench/selectivity.py                       # 100,000 x 1,000 x 100 labels = 1e8
    python bench/selectivity.py --stimuli 20000 --units 500
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import scipy.stats

import unitsel
from ingest.arrays import ingest_arrays
from ingest.demos import steps

T = TypeVar("T")


def timed(label: str, results: dict[str, float], run: Callable[[], T]) -> T:
    started = time.perf_counter()
    value = run()
    results[label] = time.perf_counter() - started
    print(f"{label:<34} {results[label]:8.3f} s", flush=True)
    return value


def generate(path: Path, n_stimuli: int, n_units: int, n_labels: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = np.arange(n_stimuli) % n_labels
    acts = np.lib.format.open_memmap(path / "acts.npy", "w+", np.float32, (n_stimuli, n_units))
    for start in range(0, n_stimuli, 10_000):
        block = rng.normal(size=(min(10_000, n_stimuli - start), n_units)).astype(np.float32)
        # A per-unit preferred label shifts its mean, so the metrics are not all trivial.
        block += 0.5 * (labels[start:start + len(block), None] == np.arange(n_units) % n_labels)
        acts[start:start + len(block)] = np.maximum(block, 0)
    acts.flush()
    (path / "labels.csv").write_text(
        "stimulus,label\n" + "".join(f"{i},c{lab}\n" for i, lab in enumerate(labels)))
    return labels


def size_arguments(doc: str | None) -> argparse.Namespace:
    """The data size of a benchmark (default 10⁸ rows) and where its files go."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    parser.add_argument("--stimuli", type=int, default=100_000)
    parser.add_argument("--units", type=int, default=1_000)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=None)
    return parser.parse_args()


def numpy_metrics(acts: np.ndarray, labels: np.ndarray, n_labels: int) -> dict[str, np.ndarray]:
    """The per-unit loop a researcher writes: sort, bincount, compare."""
    n_units = acts.shape[1]
    out = {m: np.empty(n_units) for m in ("tcs", "ccmas", "precision_100")}
    counts = np.bincount(labels, minlength=n_labels)
    stimulus = np.arange(len(labels))
    for u in range(n_units):
        a = np.asarray(acts[:, u], dtype=np.float64)
        order = np.lexsort((stimulus, -a))
        top = labels[order[0]]
        others = a[labels != top].max()
        out["tcs"][u] = np.sum(a[labels == top] > others) / counts[top]
        means = np.bincount(labels, weights=a, minlength=n_labels) / counts
        best = np.lexsort((np.arange(n_labels), -means))[0]
        rest = (means.sum() - means[best]) / (n_labels - 1)
        out["ccmas"][u] = (means[best] - rest) / (means[best] + rest)
        out["precision_100"][u] = np.bincount(labels[order[:100]]).max() / 100
    return out


def check_category_sample(sql: pl.DataFrame, acts: np.ndarray, labels: np.ndarray) -> None:
    """SciPy on 20 units spread over the layer: d', rank-sum p, the smallest t."""
    for u in np.linspace(0, acts.shape[1] - 1, 20).astype(int):
        a = np.asarray(acts[:, u], dtype=np.float64)
        target, rest = a[labels == 0], a[labels != 0]
        row = sql.row(int(u), named=True)
        dprime = (target.mean() - rest.mean()) / np.sqrt((target.var(ddof=1)
                                                          + rest.var(ddof=1)) / 2)
        p = scipy.stats.mannwhitneyu(target, rest, alternative="greater").pvalue
        t = min(scipy.stats.ttest_ind(target, a[labels == k]).statistic
                for k in range(1, labels.max() + 1))
        np.testing.assert_allclose(row["dprime"], dprime, rtol=1e-6)
        np.testing.assert_allclose(row["ranksum_p"], p, atol=1e-6)
        np.testing.assert_allclose(row["ttest_min_t"], t, rtol=1e-6)


def main() -> None:
    args = size_arguments(__doc__)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        root = work / "warehouse"
        labels = timed("generate (.npy)", results,
                       lambda: generate(work, args.stimuli, args.units, args.labels))
        step = steps(root, progress=False)
        timed("ingest (write + summaries)", results, lambda: step(
            ingest_arrays, work / "acts.npy", work / "labels.csv", model_id="bench",
            stimulus_set="bench", layer="fc"))
        with unitsel.connection(root) as con:
            timed("scan floor: sum(activation)", results, lambda: con.sql(
                "SELECT sum(activation) FROM activations WHERE model_id = 'bench' AND "
                "stimulus_set = 'bench' AND layer = 'fc' AND pool = 'none'").fetchall())
            timed("build summaries", results,
                  lambda: step(unitsel.Transaction.rebuild_summaries, every=True))
            query = "SELECT * FROM unit_selectivity('bench', 'bench', 'fc', 'none')"
            sql = timed("unit_selectivity (first)", results, lambda: con.sql(query).pl())
            timed("unit_selectivity (repeated)", results, lambda: con.sql(query).pl())
            face_query = ("SELECT * FROM unit_category_selectivity('bench', 'bench', 'fc', "
                          "'none', 'c0')")
            faces = timed("unit_category_selectivity (first)", results,
                          lambda: con.sql(face_query).pl())
            timed("unit_category_selectivity (repeated)", results,
                  lambda: con.sql(face_query).pl())
        acts = np.load(work / "acts.npy", mmap_mode="r")
        ref = timed("numpy per-unit loop", results,
                    lambda: numpy_metrics(acts, labels, args.labels))
    for metric, column in (("tcs", "top_class_selectivity"), ("ccmas", "ccmas"),
                           ("precision_100", "precision_100")):
        np.testing.assert_allclose(sql[column].to_numpy(), ref[metric], rtol=1e-6, atol=1e-9)
    print("SQL and numpy agree on top-class selectivity, CCMAS and precision for every unit")
    check_category_sample(faces, acts, labels)
    print("SQL and SciPy agree on d', rank-sum and t-test p-values for 20 sampled units")
    floor = results["scan floor: sum(activation)"]
    profile = results["build summaries"] + results["unit_selectivity (first)"]
    print(f"rows: {args.stimuli * args.units:,}")
    print(f"(summaries + full profile) / scan floor: {profile / floor:.1f}x")
    numpy_loop = results["numpy per-unit loop"]
    print(f"numpy loop / (summaries + full profile): {numpy_loop / profile:.1f}x")
    print(f"repeated query: {results['unit_selectivity (repeated)'] * 1000:.0f} ms")
    face = results["build summaries"] + results["unit_category_selectivity (first)"]
    print(f"face family (summaries + unit_category_selectivity) / scan floor: "
          f"{face / floor:.1f}x; repeated query "
          f"{results['unit_category_selectivity (repeated)'] * 1000:.0f} ms")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
