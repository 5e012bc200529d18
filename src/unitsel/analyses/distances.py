"""Functional distances between the units of a layer (DORA Sec. 3) into `unit_distances`.

Data-aware measures use the activations standardised per unit over the stimulus set (mean 0,
standard deviation 1 with ddof = 1, DORA Eq. 2); a constant unit standardises to zeros, so it
is uncorrelated with every unit (rho = 0, distance sqrt(1/2)) rather than undefined.

- minkowski: (sum_t |z_i - z_j|^p)^(1/p) (Eq. 3);
- pearson / spearman: sqrt((1 - rho) / 2) (Eqs. 4-5);
- ea_n_*: natural Extreme-Activation distance. The stimuli are shuffled with `seed` (DORA
  assumes i.i.d. data; a set sorted by class would otherwise give one class per block) and cut
  into n disjoint blocks of d; each unit's n-AMS are its most activating stimulus per block
  (Def. 3; ties: lower stimulus). mu^i_j is unit j's mean standardised activation over unit
  i's n-AMS (Def. 4). Pair-wise: angle between (mu^i_i, mu^i_j) and (mu^j_i, mu^j_j); layer-
  wise: between rows mu^i and mu^j; distance sqrt((1 - cos) / 2) (Eqs. 9-10). A zero vector
  has no angle: its cosine is taken as 0.
- ea_s_*: the same from synthetic AMS (raw activations, Def. 7), read from `ams_activations`
  of stimulus set 'synthetic' as written by `unitsel ingest sams`.
The n-AMS and mu are stored (`ams`, `ams_activations`) so EA can be inspected and recomputed.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.spatial.distance
import scipy.stats

from unitsel.analyses.activations import activation_matrix
from unitsel.errors import InputError
from unitsel.schema import AMS, AMS_ACTIVATIONS, UNIT_DISTANCES
from unitsel.warehouse import Transaction

DATA_MEASURES = ("minkowski", "pearson", "spearman")
EA_N = ("ea_n_pairwise", "ea_n_layerwise")
EA_S = ("ea_s_pairwise", "ea_s_layerwise")
MEASURES = (*DATA_MEASURES, *EA_N, *EA_S)
SYNTHETIC = "synthetic"


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to mean 0 and sd 1 (ddof 1); constant columns to 0."""
    sd = x.std(axis=0, ddof=1)
    return np.asarray((x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0))


def _correlation_distance(z: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(z, axis=0)
    unit = z / np.where(norms > 0, norms, 1.0)
    return np.sqrt(np.clip((1.0 - unit.T @ unit) / 2.0, 0.0, None))


def data_distances(x: np.ndarray, measure: str, p: float = 1.0) -> np.ndarray:
    """Units x units distance matrix of a data-aware measure on stimuli x units `x`."""
    z = standardise(x)
    if measure == "minkowski":
        return np.asarray(scipy.spatial.distance.squareform(
            scipy.spatial.distance.pdist(z.T, "minkowski", p=p)))
    if measure == "pearson":
        return _correlation_distance(z)
    if measure == "spearman":
        return _correlation_distance(standardise(scipy.stats.rankdata(x, axis=0)))
    raise InputError(f"unknown data measure {measure!r}; use {list(DATA_MEASURES)}")


def natural_ams(z: np.ndarray, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's n-AMS (units x n stimulus indices) and mu (units x units)."""
    n_stimuli, n_units = z.shape
    if n < 1 or d < 1 or n * d > n_stimuli:
        raise InputError(f"n-AMS need n * d <= {n_stimuli} stimuli, got n={n}, d={d}")
    blocks = np.random.default_rng(seed).permutation(n_stimuli)[: n * d].reshape(n, d)
    blocks.sort(axis=1)  # ties go to the lower stimulus
    ams = np.empty((n_units, n), dtype=np.int64)
    mu = np.zeros((n_units, n_units))
    for t, block in enumerate(blocks):
        ams[:, t] = block[np.argmax(z[block], axis=0)]
        mu += z[ams[:, t]]
    return ams, mu / n


def _cosine_distance(num: np.ndarray, norm_a: np.ndarray, norm_b: np.ndarray) -> np.ndarray:
    denominator = norm_a * norm_b
    cos = np.divide(num, denominator, out=np.zeros_like(num), where=denominator > 0)
    return np.asarray(np.sqrt(np.clip((1.0 - cos) / 2.0, 0.0, None)))


def ea_distances(mu: np.ndarray, mode: str) -> np.ndarray:
    """EA distance matrix from mu ('pairwise' Eq. 9 or 'layerwise' Eq. 10)."""
    if mode == "layerwise":
        norms = np.linalg.norm(mu, axis=1)
        return _cosine_distance(mu @ mu.T, norms[:, None], norms[None, :])
    own = np.diag(mu)
    # r_ij = (mu[i, i], mu[i, j]) and r_ji = (mu[j, i], mu[j, j]).
    num = own[:, None] * mu.T + mu * own[None, :]
    return _cosine_distance(num, np.hypot(own[:, None], mu), np.hypot(mu.T, own[None, :]))


def pair_rows(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """The unordered pairs (a < b) of a symmetric matrix."""
    a, b = np.triu_indices(matrix.shape[0], k=1)
    return {"unit_a": a.astype(np.int32), "unit_b": b.astype(np.int32),
            "distance": matrix[a, b]}


def square(a: np.ndarray, b: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """A symmetric n x n matrix with zero diagonal from the pairs (a, b) of a pair table."""
    if len(values) != n * (n - 1) // 2:
        raise InputError(f"a pair table of {n} items needs {n * (n - 1) // 2} pairs, "
                         f"found {len(values)}")
    matrix = np.zeros((n, n))
    matrix[a, b] = values
    matrix[b, a] = values
    return matrix


def synthetic_mu(tx: Transaction, model_id: str, layer: str,
                 pool: str) -> tuple[str, np.ndarray]:
    """The s-AMS setting and mu of a layer, from `ams_activations`."""
    rows = (tx.scan(AMS_ACTIVATIONS)
            .filter(model_id=model_id, stimulus_set=SYNTHETIC, layer=layer, pool=pool)
            .sort("ams_unit", "unit").collect())
    if rows.is_empty():
        raise InputError(f"no synthetic AMS for {model_id} {layer} {pool}; generate them with "
                         "`unitsel ingest sams`")
    k = rows["ams_unit"].n_unique()
    return rows["setting"][0], rows["mean_activation"].to_numpy().reshape(k, k)


def distance_matrix(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
                    measure: str) -> tuple[str, np.ndarray]:
    """The setting and square matrix of one stored functional measure."""
    rows = tx.scan(UNIT_DISTANCES).filter(model_id=model_id, stimulus_set=stimulus_set,
                                          layer=layer, pool=pool, measure=measure).collect()
    if rows.is_empty():
        raise InputError(f"no {measure} distances of {model_id} {layer} {pool} on "
                         f"{stimulus_set}; compute them with `unitsel analyse distances`")
    n = int(rows["unit_b"].to_numpy().max()) + 1  # unit_a < unit_b
    return rows["setting"][0], square(rows["unit_a"].to_numpy(), rows["unit_b"].to_numpy(),
                                      rows["distance"].to_numpy(), n)


def _partition(model_id: str, stimulus_set: str, layer: str, pool: str) -> dict[str, str]:
    return {"model_id": model_id, "stimulus_set": stimulus_set, "layer": layer, "pool": pool}


def mu_frame(setting: str, mu: np.ndarray) -> pl.DataFrame:
    """`ams_activations` data rows of a mu matrix."""
    k = mu.shape[0]
    return pl.DataFrame({
        "setting": setting,
        "ams_unit": np.repeat(np.arange(k, dtype=np.int32), k),
        "unit": np.tile(np.arange(k, dtype=np.int32), k),
        "mean_activation": mu.reshape(-1),
    })


def _data_pairs(x: np.ndarray, measure: str, p: float) -> dict[str, np.ndarray]:
    return pair_rows(data_distances(x, measure, p))


def run_unit_distances(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
                       measures: tuple[str, ...] = (*DATA_MEASURES, *EA_N), p: float = 1.0,
                       n: int = 50, d: int = 200, seed: int = 0) -> pl.DataFrame:
    """Compute and write (replace) the requested measures; EA_n also writes its n-AMS and mu.
    EA_s measures are written under stimulus set 'synthetic'. Returns the rows written."""
    unknown = set(measures) - set(MEASURES)
    if unknown or not measures:
        raise InputError(f"unknown functional measures {sorted(unknown)}; use {list(MEASURES)}")
    part = _partition(model_id, stimulus_set, layer, pool)
    if set(measures) - set(EA_S):
        x, _ = activation_matrix(tx, model_id, stimulus_set, layer, pool)
    data_measures = [m for m in measures if m in DATA_MEASURES]
    pairs = []
    if data_measures:
        with tx.runner() as run:  # each measure a task; x goes to each worker once
            pairs = run.map(_data_pairs, [(m, p) for m in data_measures],
                            desc="distances", unit="measure", progress=False, shared=(x,))
    found = [(m, stimulus_set, f"p={p:g}" if m == "minkowski" else "", rows)
             for m, rows in zip(data_measures, pairs, strict=True)]
    ea_jobs = []
    if set(measures) & set(EA_N):
        setting = f"n={n},d={d},seed={seed}"
        ams, mu = natural_ams(standardise(x), n, d, seed)
        k = ams.shape[0]
        tx.write_partition(AMS, part, pl.DataFrame({
            "setting": setting,
            "unit": np.repeat(np.arange(k, dtype=np.int32), n),
            "signal": np.tile(np.arange(n, dtype=np.int32), k),
            "stimulus": ams.reshape(-1).astype(np.int32),
            "uri": pl.Series([None] * (k * n), dtype=pl.String),
            "activation": x[ams.reshape(-1), np.repeat(np.arange(k), n)]}))
        tx.write_partition(AMS_ACTIVATIONS, part, mu_frame(setting, mu))
        ea_jobs += [(m, stimulus_set, setting, mu) for m in EA_N if m in measures]
    if set(measures) & set(EA_S):
        setting, mu_s = synthetic_mu(tx, model_id, layer, pool)
        ea_jobs += [(m, SYNTHETIC, setting, mu_s) for m in EA_S if m in measures]
    found += [(m, source_set, setting, pair_rows(ea_distances(mu, m.rsplit("_", 1)[1])))
              for m, source_set, setting, mu in ea_jobs]
    result = pl.concat([
        pl.DataFrame(rows).with_columns(
            measure=pl.lit(m), setting=pl.lit(setting),
            **{k: pl.lit(v) for k, v in _partition(model_id, source_set, layer, pool).items()})
        .select(UNIT_DISTANCES.written_columns) for m, source_set, setting, rows in found])
    tx.write(result, UNIT_DISTANCES)
    return result
