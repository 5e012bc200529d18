"""Functional distances against scipy and a direct numpy transcription of DORA's equations;
Mantel tests against scikit-bio; outliers and the atlas on planted structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.spatial.distance as ssd
import scipy.stats
from skbio.stats.distance import mantel as skbio_mantel

from unitsel import Transaction, wordnet
from unitsel.analyses.atlas import hypernym, run_atlas
from unitsel.analyses.distances import (
    data_distances,
    ea_distances,
    natural_ams,
    pair_rows,
    run_unit_distances,
    standardise,
)
from unitsel.analyses.mantel import run_mantel
from unitsel.analyses.outliers import DETECTORS, run_outliers
from unitsel.concepts import ingest_concepts
from unitsel.errors import InputError
from unitsel.warehouse import scan

from .layers import load


def _activations(seed: int = 0, stimuli: int = 120, units: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(stimuli, 2))
    x = shared @ rng.normal(size=(2, units)) + 0.5 * rng.normal(size=(stimuli, units))
    return np.maximum(x, 0.0)  # ReLU: ties at zero


def test_data_measures_match_scipy() -> None:
    x = _activations()
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    for p in (1.0, 2.0, 3.0):
        assert np.allclose(data_distances(x, "minkowski", p),
                           ssd.squareform(ssd.pdist(z.T, "minkowski", p=p)))
    rho = 1 - ssd.squareform(ssd.pdist(x.T, "correlation"))
    assert np.allclose(data_distances(x, "pearson"), np.sqrt((1 - rho) / 2), atol=1e-7)
    spearman = scipy.stats.spearmanr(x).statistic
    assert np.allclose(data_distances(x, "spearman"), np.sqrt((1 - spearman) / 2), atol=1e-7)


def test_constant_unit_is_uncorrelated() -> None:
    x = _activations()
    x[:, 2] = 3.0
    d = data_distances(x, "pearson")
    assert np.allclose(np.delete(d[2], 2), np.sqrt(0.5)) and np.isfinite(d).all()


def _direct_ea(x: np.ndarray, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """DORA Defs. 3-5 written out with loops."""
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    k = x.shape[1]
    order = np.random.default_rng(seed).permutation(len(x))[: n * d]
    blocks = [sorted(order[t * d:(t + 1) * d]) for t in range(n)]
    mu = np.zeros((k, k))
    for i in range(k):
        ams = [max(block, key=lambda s: (z[s, i], -s)) for block in blocks]
        for j in range(k):
            mu[i, j] = np.mean([z[s, j] for s in ams])
    pairwise, layerwise = np.zeros((k, k)), np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            r_ij, r_ji = np.array([mu[i, i], mu[i, j]]), np.array([mu[j, i], mu[j, j]])
            cos = r_ij @ r_ji / np.linalg.norm(r_ij) / np.linalg.norm(r_ji)
            pairwise[i, j] = np.sqrt(max(1 - cos, 0)) / np.sqrt(2)
            cos = mu[i] @ mu[j] / np.linalg.norm(mu[i]) / np.linalg.norm(mu[j])
            layerwise[i, j] = np.sqrt(max(1 - cos, 0)) / np.sqrt(2)
    return mu, pairwise, layerwise


def test_ea_matches_the_papers_equations() -> None:
    x = _activations(seed=3)
    _, mu = natural_ams(standardise(x), n=8, d=15, seed=5)
    mu_ref, pairwise, layerwise = _direct_ea(x, 8, 15, 5)
    assert np.allclose(mu, mu_ref)
    assert np.allclose(ea_distances(mu, "pairwise"), np.nan_to_num(pairwise), atol=1e-7)
    assert np.allclose(ea_distances(mu, "layerwise"), layerwise, atol=1e-7)
    with pytest.raises(InputError, match="n \\* d"):
        natural_ams(standardise(x), n=10, d=20, seed=0)


def test_unit_distances_job_writes_pairs_and_ams_and_replaces(root: Path) -> None:
    x = _activations(units=5).astype(np.float32).astype(np.float64)  # as stored
    load(root, x, [str(i % 3) for i in range(len(x))])
    with Transaction(root) as tx:
        result = run_unit_distances(tx, "m", "s", "l", "none", n=10, d=12, seed=1)
    assert result.height == 5 * 10 and (result["unit_a"] < result["unit_b"]).all()
    pearson = result.filter(measure="pearson").sort("unit_a", "unit_b")["distance"].to_numpy()
    assert np.allclose(pearson, pair_rows(data_distances(x, "pearson"))["distance"])
    ams = scan("ams", root).collect()
    assert ams.height == 5 * 10
    _, mu = natural_ams(standardise(x), 10, 12, 1)
    stored = scan("ams_activations", root).sort("ams_unit", "unit").collect()
    assert np.allclose(stored["mean_activation"].to_numpy().reshape(5, 5), mu)
    # The stored n-AMS are the block maxima behind mu: mu recomputes from them.
    z = standardise(x)
    first = ams.filter(unit=0).sort("signal")["stimulus"].to_numpy()
    assert np.allclose(z[first].mean(0), mu[0])
    with Transaction(root) as tx:
        run_unit_distances(tx, "m", "s", "l", "none", n=10, d=12, seed=1)
    assert scan("unit_distances", root).collect().height == result.height
    assert scan("ams", root).collect().height == 50
    with pytest.raises(InputError, match="no synthetic AMS"), Transaction(root) as tx:
        run_unit_distances(tx, "m", "s", "l", "none", ("ea_s_pairwise",))
    with pytest.raises(InputError, match="unknown functional measures"), Transaction(root) as tx:
        run_unit_distances(tx, "m", "s", "l", "none", ("cosine",))


def _distance_frame(matrix: np.ndarray, measure: str, model_id: str = "m") -> pl.DataFrame:
    return pl.DataFrame(pair_rows(matrix)).with_columns(
        model_id=pl.lit(model_id), stimulus_set=pl.lit("s"), layer=pl.lit("output"),
        pool=pl.lit("none"), measure=pl.lit(measure), setting=pl.lit(""))


WNIDS = ["n02084071", "n02121620", "n02958343", "n01484850", "n01440764", "n02691156",
         "n04490091", "n02206856"]


def load_semantic(root: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Concept set 'toy' (WNIDS) and two semantic baselines of it; returns their matrices."""
    n = len(WNIDS)
    semantic = {"path": ssd.squareform(rng.integers(1, 3, n * (n - 1) // 2).astype(float)),
                "wup": ssd.squareform(ssd.pdist(rng.normal(size=(n, 2))))}
    order = np.argsort(WNIDS)
    with Transaction(root) as tx:
        ingest_concepts(tx, "toy", pl.DataFrame({"label": WNIDS, "wnid": WNIDS}))
        for measure, matrix in semantic.items():
            # Stored by wnid order (wnid_a < wnid_b), as the semantic job writes them.
            m = matrix[np.ix_(order, order)]
            a, b = np.triu_indices(n, 1)
            ids = np.asarray(WNIDS)[order]
            tx.write(pl.DataFrame({
                "concept_set": "toy", "measure": measure, "wnid_a": ids[a], "wnid_b": ids[b],
                "similarity": -m[a, b], "distance": m[a, b], "distance_max_scaled": m[a, b],
                "source": "test"}), "semantic_distances")
    return semantic


def test_mantel_batch_equals_scikit_bio(root: Path) -> None:
    rng = np.random.default_rng(11)
    n = len(WNIDS)
    functional = {
        "pearson": ssd.squareform(ssd.pdist(rng.normal(size=(n, 3)))),
        # Tie-heavy: small integer distances.
        "minkowski": ssd.squareform(rng.integers(1, 4, n * (n - 1) // 2).astype(float)),
    }
    semantic = load_semantic(root, rng)
    with Transaction(root) as tx:
        for measure, matrix in functional.items():
            tx.write(_distance_frame(matrix, measure), "unit_distances")
    for method in ("pearson", "spearman"):
        for alternative in ("two-sided", "greater", "less"):
            with Transaction(root, progress=False) as tx:
                result = run_mantel(tx, "toy", ("m",), "output", method=method,
                                    alternative=alternative, permutations=199, seed=3)
            assert result.height == 4
            for row in result.iter_rows(named=True):
                r, p, count = skbio_mantel(functional[row["measure"]],
                                           semantic[row["baseline"]], method=method,
                                           permutations=199, alternative=alternative, seed=3)
                assert (row["r"], row["p"], row["n"]) == (r, p, count)
    with Transaction(root, progress=False) as tx:
        parallel = run_mantel(tx, "toy", ("m",), "output", permutations=99, seed=1, workers=2)
    with Transaction(root, progress=False) as tx:
        serial = run_mantel(tx, "toy", ("m",), "output", permutations=99, seed=1)
    assert parallel.sort("measure", "baseline").equals(serial.sort("measure", "baseline"))
    assert scan("mantel_results", root).collect().height == 4  # re-runs replaced
    with pytest.raises(InputError, match="no unit distances"), Transaction(root) as tx:
        run_mantel(tx, "toy", ("other",), "output")
    with Transaction(root) as tx:
        tx.write(_distance_frame(functional["pearson"][:5, :5], "pearson", "small"),
                 "unit_distances")
    with pytest.raises(InputError, match="10 unit pairs but concept set 'toy' has 8"), \
            Transaction(root, progress=False) as tx:
        run_mantel(tx, "toy", ("small",), "output")


def _planted(root: Path, outliers: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(2)
    points = rng.normal(size=(60, 4))
    for axis, unit in enumerate(outliers):  # each far out on its own axis: isolated
        points[unit, axis] += 8.0
    matrix = ssd.squareform(ssd.pdist(points))
    with Transaction(root) as tx:
        tx.write(_distance_frame(matrix, "pearson"), "unit_distances")
    return matrix


def test_detectors_find_planted_outliers(root: Path) -> None:
    planted = (3, 17, 41)
    _planted(root, planted)
    with Transaction(root, progress=False) as tx:
        result = run_outliers(tx, "m", "s", "output", "none", "pearson", DETECTORS,
                              contamination=0.05, truth=planted, repeats=3)
    assert result.filter(scored_on="distances")["detector"].unique().to_list() == ["lof"]
    for name in DETECTORS:
        rows = result.filter(detector=name)
        top = rows.sort("score", descending=True)["unit"].head(3).sort().to_list()
        assert top == list(planted), name
        assert rows["is_outlier"].sum() == 3, name
    auc = scan("outlier_auc", root).collect()
    assert auc.height == len(DETECTORS) and (auc["auc"] == 1.0).all()
    assert (auc["n_outliers"] == 3).all() and (auc["repeats"] == 3).all()
    with Transaction(root, progress=False) as tx:
        again = run_outliers(tx, "m", "s", "output", "none", "pearson", DETECTORS,
                             contamination=0.05, truth=planted, repeats=3)
    assert again.equals(result)  # re-run: same rows, replaced, not added
    assert scan("unit_outliers", root).collect().height == len(DETECTORS) * 60
    assert scan("outlier_auc", root).collect().height == len(DETECTORS)
    with pytest.raises(InputError, match="not units"), Transaction(root) as tx:
        run_outliers(tx, "m", "s", "output", "none", "pearson", truth=(99,))


def _lof_by_definition(matrix: np.ndarray, k: int) -> np.ndarray:
    """Breunig et al.'s local outlier factor from a distance matrix, point by point."""
    n = len(matrix)
    neighbours = [np.argsort(np.where(np.arange(n) == p, np.inf, matrix[p]))[:k]
                  for p in range(n)]
    k_distance = np.array([matrix[p, neighbours[p][-1]] for p in range(n)])
    lrd = np.array([1 / np.mean([max(k_distance[o], matrix[p, o]) for o in neighbours[p]])
                    for p in range(n)])
    return np.array([np.mean(lrd[neighbours[p]]) / lrd[p] for p in range(n)])


def test_lof_scores_the_distance_matrix_as_dora_does(root: Path) -> None:
    """DORA's protocol: LOF on the distance matrix itself (not on its rows as vectors)."""
    matrix = _planted(root, (5, 30))
    with Transaction(root, progress=False) as tx:
        result = run_outliers(tx, "m", "s", "output", "none", "pearson", ("lof", "lof_rows"),
                              contamination=0.05)
    lof = result.filter(detector="lof").sort("unit")
    assert lof["scored_on"].unique().to_list() == ["distances"]
    assert np.allclose(lof["score"].to_numpy(), _lof_by_definition(matrix, 20), rtol=1e-6)
    rows = result.filter(detector="lof_rows").sort("unit")["score"].to_numpy()
    assert not np.allclose(rows, lof["score"].to_numpy())  # a different scoring


def test_atlas_separates_clusters_and_colours_by_hypernym(root: Path) -> None:
    rng = np.random.default_rng(4)
    points = np.vstack([rng.normal(size=(len(WNIDS) * 2, 3)),
                        rng.normal(size=(len(WNIDS) * 2, 3)) + 10])
    with Transaction(root) as tx:
        tx.write(_distance_frame(ssd.squareform(ssd.pdist(points)), "pearson"),
                 "unit_distances")
    with Transaction(root) as tx:
        atlas = run_atlas(tx, "m", "s", "output", "none", "pearson")
    xy = atlas.sort("unit").select("x", "y").to_numpy()
    half = len(points) // 2
    within = ssd.pdist(xy[:half]).mean()
    between = ssd.cdist(xy[:half], xy[half:]).mean()
    assert between > 2 * within
    assert atlas["hypernym"].null_count() == atlas.height
    with Transaction(root) as tx:
        assert run_atlas(tx, "m", "s", "output", "none", "pearson").equals(atlas)  # seeded
    assert scan("unit_atlas", root).collect().height == len(points)  # re-run replaced
    wn = wordnet.wordnet()
    dog = wordnet.synset("n02084071")
    path = min(dog.hypernym_paths(), key=len)
    assert hypernym("n02084071", 6) == path[6].name()
    assert hypernym("n02084071", 99) == "dog.n.01"
    assert path[0] == wn.synset("entity.n.01")


def test_mantel_runs_on_the_concepts_a_baseline_covers(root: Path) -> None:
    """A concept without a word vector (NULL distances) leaves that baseline's test on the
    other concepts: r and p are scikit-bio's on the reduced matrices, n says how many."""
    rng = np.random.default_rng(4)
    n = len(WNIDS)
    functional = ssd.squareform(ssd.pdist(rng.normal(size=(n, 3))))
    semantic = ssd.squareform(ssd.pdist(rng.normal(size=(n, 2))))
    order = np.argsort(WNIDS)
    ids = np.asarray(WNIDS)[order]
    a, b = np.triu_indices(n, 1)
    m = semantic[np.ix_(order, order)]
    gap = WNIDS[2]  # no vector: every pair with it is NULL
    values = pl.Series([None if gap in (ids[i], ids[j]) else m[i, j]
                        for i, j in zip(a, b, strict=True)], dtype=pl.Float64)
    with Transaction(root) as tx:
        ingest_concepts(tx, "toy", pl.DataFrame({"label": WNIDS, "wnid": WNIDS}))
        tx.write(_distance_frame(functional, "pearson"), "unit_distances")
        tx.write(pl.DataFrame({
            "concept_set": "toy", "measure": "vectors-x", "wnid_a": ids[a], "wnid_b": ids[b],
            "similarity": values, "distance": values, "distance_max_scaled": values,
            "source": "test"}), "semantic_distances")
    with Transaction(root, progress=False) as tx:
        row = run_mantel(tx, "toy", ("m",), "output", permutations=99, seed=2).row(0, named=True)
    keep = [i for i in range(n) if i != 2]
    r, p, count = skbio_mantel(functional[np.ix_(keep, keep)], semantic[np.ix_(keep, keep)],
                               permutations=99, seed=2)
    assert (row["r"], row["p"], row["n"]) == (r, p, count) and count == n - 1
