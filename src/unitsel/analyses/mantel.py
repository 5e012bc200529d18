"""Mantel tests of functional against semantic distances (DORA Tables 1-2), as one batch.

For every `unit_distances` partition of the models and layer asked for (every stimulus set,
'synthetic' included) and every semantic baseline of the concept set, unit i is paired with
the concept of class index i, both pair tables become square matrices and scikit-bio's own
`skbio.stats.distance.mantel` runs on them: r, p and n are scikit-bio's, p identical at a fixed
seed. One task per functional partition reads that partition itself and tests it against
every baseline (the baselines are sent to each worker once). scikit-bio's permutations
already use every core through BLAS, so tasks run one after another by default; `workers` > 1
runs them on a local Dask cluster of that many single-threaded worker processes (Dask limits
each to one BLAS thread), which pays off with more cores than BLAS keeps busy
(docs/benchmarks.md), and `--scheduler` on your own cluster (`unitsel.compute`). The SQL view
`mantel_summary` averages r over baselines, as DORA's tables do.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from unitsel.analyses.distances import square
from unitsel.analyses.semantics import concept_set_frame
from unitsel.errors import InputError
from unitsel.schema import MANTEL_RESULTS, SEMANTIC_DISTANCES, UNIT_DISTANCES
from unitsel.warehouse import Transaction, scan_files

METHODS = ("pearson", "spearman")
ALTERNATIVES = ("two-sided", "greater", "less")
CONVERSIONS = ("distance", "distance_max_scaled")


def mantel(x: np.ndarray, y: np.ndarray, method: str, permutations: int, alternative: str,
           seed: int) -> tuple[float | None, float | None, int]:
    """scikit-bio's Mantel test; r and p None where scikit-bio gives NaN (constant matrix)."""
    from skbio.stats.distance import mantel as skbio_mantel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant input: r is NaN
        r, p, n = skbio_mantel(x, y, method=method, permutations=permutations,
                               alternative=alternative, seed=seed)
    return (None if np.isnan(r) else float(r), None if np.isnan(p) else float(p), int(n))


def baseline_matrices(tx: Transaction, concept_set: str, conversion: str,
                      baselines: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """Each semantic baseline of a concept set as a matrix in class-index order."""
    concepts = concept_set_frame(tx, concept_set)
    index = dict(zip(concepts["wnid"], concepts["class_index"], strict=True))
    pairs = (tx.scan(SEMANTIC_DISTANCES).filter(concept_set=concept_set)
             .select("measure", "wnid_a", "wnid_b", conversion).collect())
    found = sorted(pairs["measure"].unique())
    wanted = list(baselines) if baselines else found
    missing = sorted(set(wanted) - set(found))
    if missing or not wanted:
        raise InputError(f"concept set {concept_set!r} has no semantic distances {missing or ''}"
                         "; compute them with `unitsel analyse semantic`")
    matrices = {}
    for measure in wanted:
        rows = pairs.filter(measure=measure)
        a = rows["wnid_a"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
        b = rows["wnid_b"].replace_strict(index, return_dtype=pl.Int64).to_numpy()
        matrices[measure] = square(a, b, rows[conversion].to_numpy(), concepts.height)
    return matrices


def _test_partition(semantic: dict[str, np.ndarray], concept_set: str, method: str,
                    permutations: int, alternative: str, seed: int, key: dict[str, str],
                    files: list[str]
                    ) -> dict[str, dict[str, float | int | None]]:
    """Every baseline's test of one `unit_distances` partition, which the task reads itself
    from its data `files` (on a Dask worker: the partition never travels through the
    scheduler, and the worker needs no catalog)."""
    n = next(iter(semantic.values())).shape[0]
    # Only the numeric columns: the partition keys would be materialised per row.
    part = (scan_files(UNIT_DISTANCES, files).filter(**key)
            .select("unit_a", "unit_b", "distance").collect())
    if part.height != n * (n - 1) // 2:
        raise InputError(f"{key['model_id']} {key['layer']} ({key['measure']}) has "
                         f"{part.height} unit pairs but concept set {concept_set!r} has "
                         f"{n} concepts ({n * (n - 1) // 2} pairs): unit i must stand for "
                         "class index i")
    matrix = square(part["unit_a"].to_numpy(), part["unit_b"].to_numpy(),
                    part["distance"].to_numpy(), n)
    tested = {}
    for baseline, other in semantic.items():
        # Only the concepts the baseline covers (word vectors may lack some): n says how many.
        covered = np.isnan(other).sum(axis=0) < n - 1  # uncovered: NaN beside every other
        if not covered.all():
            matrix_c, other = matrix[np.ix_(covered, covered)], other[np.ix_(covered, covered)]
        else:
            matrix_c = matrix
        r, p, count = mantel(matrix_c, other, method, permutations, alternative, seed)
        tested[baseline] = {"r": r, "p": p, "n": count}
    return tested


def run_mantel(tx: Transaction, concept_set: str, model_ids: tuple[str, ...], layer: str,
               pool: str = "none", measures: tuple[str, ...] | None = None,
               baselines: tuple[str, ...] | None = None, method: str = "pearson",
               alternative: str = "two-sided", permutations: int = 999, seed: int = 0,
               conversion: str = "distance", workers: int = 1) -> pl.DataFrame:
    """Run every (functional measure x baseline) test of the models' layer; write (replace)
    each tested functional measure's rows."""
    for value, allowed in ((method, METHODS), (alternative, ALTERNATIVES),
                           (conversion, CONVERSIONS)):
        if value not in allowed:
            raise InputError(f"{value!r} is not one of {list(allowed)}")
    semantic = baseline_matrices(tx, concept_set, conversion, baselines)
    # The partitions from the catalog's list of files, then the settings inside each from
    # its files' setting column: reading every row's keys cost more than the tests' own
    # overhead (0.6 s for twenty 1000-unit partitions).
    tasks = []
    for values, paths in tx.files(UNIT_DISTANCES).items():
        part = dict(zip(UNIT_DISTANCES.partition_by, values, strict=True))
        if (part["model_id"] in model_ids and part["layer"] == layer and part["pool"] == pool
                and (not measures or part["measure"] in measures)):
            settings = scan_files(UNIT_DISTANCES, paths).select("setting").unique().collect()
            tasks += [(part | {"setting": setting}, paths)
                      for setting in sorted(settings["setting"])]
    if not tasks:
        raise InputError(f"no unit distances of {list(model_ids)} {layer} {pool}"
                         f"{' for ' + str(list(measures)) if measures else ''}; compute them "
                         "with `unitsel analyse distances`")
    with tx.runner(workers=workers) as run:
        outcomes = run.map(_test_partition, tasks, desc="Mantel", unit="partition",
                           progress=tx.progress, shared=(semantic, concept_set, method,
                                                      permutations, alternative, seed))
    rows = [key | {"baseline": baseline} | outcome
            for (key, _), tested in zip(tasks, outcomes, strict=True)
            for baseline, outcome in tested.items()]
    result = pl.DataFrame([
        row | {"concept_set": concept_set, "conversion": conversion, "method": method,
               "alternative": alternative, "permutations": permutations, "seed": seed}
        for row in rows], schema_overrides={"r": pl.Float64, "p": pl.Float64})
    tx.write(result.select(MANTEL_RESULTS.written_columns), MANTEL_RESULTS)
    return result
