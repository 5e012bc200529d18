"""Benchmark: the Mantel job (`run_mantel`: pair tables from the warehouse -> square matrices
-> scikit-bio -> `mantel_results`) against calling `skbio.stats.distance.mantel` on numpy
matrices already in memory.

1. One test, 1000 x 1000, 999 permutations: the job end to end vs scikit-bio alone.
2. A batch of 20 tests (20 functional measures x 1 baseline): the job in its own process
   (the default) and on local clusters of 1 and 2 worker processes vs 20 sequential
   scikit-bio calls.

Each side runs three times (the batch on a cluster once) and the fastest run counts. Checks
that the job's r and p equal scikit-bio's, and prints the ratios.

    python bench/mantel.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.spatial.distance as ssd
from skbio.stats.distance import mantel

from ingest.demos import steps
from unitsel import Transaction
from unitsel.analyses.distances import pair_rows
from unitsel.analyses.mantel import run_mantel
from unitsel.concepts import imagenet_wnids, ingest_concepts

N, PERMUTATIONS, BATCH = 1000, 999, 20


def random_matrix(rng: np.random.Generator) -> np.ndarray:
    return ssd.squareform(ssd.pdist(rng.normal(size=(N, 8))))


def build(root: Path, functional: list[np.ndarray], semantic: np.ndarray) -> None:
    wnids = imagenet_wnids()  # sorted: class index order is wnid order
    a, b = np.triu_indices(N, 1)
    ids = np.asarray(wnids)
    with Transaction(root) as tx:
        ingest_concepts(tx, "imagenet-1k", pl.DataFrame({"label": wnids, "wnid": wnids}))
        tx.write(pl.DataFrame({
            "concept_set": "imagenet-1k", "measure": "path", "wnid_a": ids[a], "wnid_b": ids[b],
            "similarity": -semantic[a, b], "distance": semantic[a, b],
            "distance_max_scaled": semantic[a, b], "source": "random"}), "semantic_distances")
        for i, matrix in enumerate(functional):
            tx.write(pl.DataFrame(pair_rows(matrix)).with_columns(
                model_id=pl.lit("bench"), stimulus_set=pl.lit("s"), layer=pl.lit("output"),
                pool=pl.lit("none"), measure=pl.lit(f"measure_{i:02d}"), setting=pl.lit("")),
                "unit_distances")


def seconds(run: object, repeats: int = 3) -> float:
    """The fastest of `repeats` runs: scikit-bio's permutations are threaded, and their time
    varies by a factor of up to 4 between runs on a shared machine."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    functional = [random_matrix(rng) for _ in range(BATCH)]
    semantic = random_matrix(rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "warehouse"
        build(root, functional, semantic)
        mantel(functional[0], semantic, permutations=9, seed=0)  # warm imports
        own = seconds(lambda: mantel(functional[0], semantic, permutations=PERMUTATIONS, seed=0))
        step = steps(root, progress=False)
        job = seconds(lambda: step(run_mantel, "imagenet-1k", ("bench",), "output",
                                   measures=("measure_00",), permutations=PERMUTATIONS))
        result = step(run_mantel, "imagenet-1k", ("bench",), "output", measures=("measure_00",),
                      permutations=PERMUTATIONS)
        r, p, _ = mantel(functional[0], semantic, permutations=PERMUTATIONS, seed=0)
        assert (result["r"][0], result["p"][0]) == (r, p)
        print(f"one test 1000x1000, {PERMUTATIONS} permutations: scikit-bio {own:.2f} s, "
              f"job {job:.2f} s, ratio {job / own:.2f}")
        sequential = seconds(lambda: [mantel(m, semantic, permutations=PERMUTATIONS, seed=0)
                                      for m in functional])
        for workers in (None, 1, 2):  # the default (this process), then local clusters
            batch = seconds(lambda w=workers: step(  # type: ignore[misc]
                run_mantel, "imagenet-1k", ("bench",), "output", permutations=PERMUTATIONS,
                workers=w), repeats=3 if workers is None else 1)
            where = "in this process" if workers is None else f"with {workers} worker(s)"
            print(f"batch of {BATCH}: job {where} {batch:.2f} s, "
                  f"{BATCH} sequential scikit-bio calls {sequential:.2f} s, "
                  f"ratio {batch / sequential:.2f}")


if __name__ == "__main__":
    main()
