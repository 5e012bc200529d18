"""Outlier units from a layer's functional distance matrix (DORA Sec. 4 and Table 3).

`lof` is DORA's protocol: outlier detection "based on the computed distance matrix" (Sec. 4),
as DORA's notebook runs it, scikit-learn's LocalOutlierFactor with `metric='precomputed'` on
the matrix itself. The detectors that need vectors describe each unit by its row of the matrix
(its distances to every unit) and PyOD scores those rows: `lof_rows` (LOF on the rows), Isolation
Forest, one-class SVM, ABOD (fast, 10 neighbours) and feature bagging; `scored_on` says which
input a detector used. `is_outlier` marks the top `contamination` share of scores. With known
true outliers, DORA's protocol scores each detector by ROC AUC, repeated with random states
0 … repeats - 1 (LOF is deterministic: its sd is 0).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from unitsel.analyses.distances import distance_matrix
from unitsel.errors import InputError
from unitsel.schema import OUTLIER_AUC, UNIT_OUTLIERS
from unitsel.warehouse import Transaction

DETECTORS = ("lof", "lof_rows", "iforest", "ocsvm", "abod", "feature_bagging")
DEFAULT_DETECTORS = ("lof", "iforest", "ocsvm", "abod", "feature_bagging")
# The one detector that scores the distance matrix itself; the others score its rows.
ON_DISTANCES = "lof"
NEIGHBOURS = 20  # LOF's neighbours (scikit-learn's and PyOD's default), fewer for small layers


class _PrecomputedLOF:
    """scikit-learn's LOF on a precomputed distance matrix, exposing PyOD's fitted
    attributes (scores: higher is more anomalous)."""

    def __init__(self, n_neighbors: int, contamination: float) -> None:
        from sklearn.neighbors import LocalOutlierFactor

        self.model = LocalOutlierFactor(n_neighbors=n_neighbors, metric="precomputed",
                                        contamination=contamination)

    def fit(self, matrix: np.ndarray) -> _PrecomputedLOF:
        self.labels_ = self.model.fit_predict(matrix) == -1
        self.decision_scores_ = -self.model.negative_outlier_factor_
        return self


def detector(name: str, contamination: float, n: int, seed: int) -> Any:
    """A PyOD detector; neighbour counts are capped below the number of units."""
    from pyod.models.abod import ABOD
    from pyod.models.feature_bagging import FeatureBagging
    from pyod.models.iforest import IForest
    from pyod.models.lof import LOF
    from pyod.models.ocsvm import OCSVM

    if not 0 < contamination <= 0.5:
        raise InputError(f"contamination must be in (0, 0.5], got {contamination}")
    if n < 3:
        raise InputError(f"outlier detection needs at least 3 units, got {n}")
    neighbours = min(NEIGHBOURS, n - 1)
    builders: dict[str, Callable[[], Any]] = {
        "lof": lambda: _PrecomputedLOF(neighbours, contamination),
        "lof_rows": lambda: LOF(n_neighbors=neighbours, contamination=contamination),
        "iforest": lambda: IForest(contamination=contamination, random_state=seed),
        "ocsvm": lambda: OCSVM(contamination=contamination),
        "abod": lambda: ABOD(contamination=contamination, n_neighbors=min(10, n - 1)),
        "feature_bagging": lambda: FeatureBagging(
            LOF(n_neighbors=neighbours), contamination=contamination, random_state=seed),
    }
    if name not in builders:
        raise InputError(f"unknown detector {name!r}; use {list(DETECTORS)}")
    return builders[name]()


def scores(matrix: np.ndarray, name: str, contamination: float,
           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(outlier scores, outlier flags) of each unit, from the distance matrix (`lof`) or
    from each unit's row of it (the others)."""
    model = detector(name, contamination, matrix.shape[0], seed).fit(matrix)
    return np.asarray(model.decision_scores_, float), np.asarray(model.labels_, bool)


def detection_auc(matrix: np.ndarray, truth: np.ndarray, name: str, contamination: float,
                  repeats: int) -> tuple[float, float]:
    """Mean and sd of the ROC AUC of the detector's scores over `repeats` random states."""
    from sklearn.metrics import roc_auc_score

    if truth.all() or not truth.any():
        raise InputError("true outliers must be some, not none or all, of the units")
    aucs = [roc_auc_score(truth, scores(matrix, name, contamination, seed)[0])
            for seed in range(repeats)]
    return float(np.mean(aucs)), float(np.std(aucs))


def run_outliers(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
                 measure: str, detectors: Sequence[str] = DEFAULT_DETECTORS,
                 contamination: float = 0.01, truth: Sequence[int] | None = None,
                 repeats: int = 100, seed: int = 0) -> pl.DataFrame:
    """Score every unit with each detector; with `truth` (true outlier units) also write the
    detectors' AUC. Re-running replaces the measure's rows."""
    setting, matrix = distance_matrix(tx, model_id, stimulus_set, layer, pool, measure)
    n = matrix.shape[0]
    frames, aucs = [], []
    flags = None
    if truth is not None:
        bad = [u for u in truth if not 0 <= u < n]
        if bad:
            raise InputError(f"true outlier units {bad} are not units of {layer} (0…{n - 1})")
        flags = np.isin(np.arange(n), list(truth))
    for name in tqdm(detectors, desc="outlier detectors", unit="detector",
                     disable=not tx.progress):
        score, is_outlier = scores(matrix, name, contamination, seed)
        scored_on = "distances" if name == ON_DISTANCES else "rows"
        frames.append(pl.DataFrame({
            "detector": name, "scored_on": scored_on, "unit": np.arange(n, dtype=np.int32),
            "score": score, "is_outlier": is_outlier}))
        if flags is not None:
            mean, sd = detection_auc(matrix, flags, name, contamination, repeats)
            aucs.append({"detector": name, "scored_on": scored_on,
                         "n_outliers": int(flags.sum()), "repeats": repeats,
                         "auc": mean, "auc_sd": sd})
    keys = {"model_id": model_id, "stimulus_set": stimulus_set, "layer": layer, "pool": pool,
            "measure": measure, "setting": setting, "contamination": contamination}
    result = pl.concat(frames).with_columns(**{k: pl.lit(v) for k, v in keys.items()})
    tx.write(result.select(UNIT_OUTLIERS.written_columns), UNIT_OUTLIERS)
    if aucs:
        tx.write(pl.DataFrame(aucs, schema_overrides={"n_outliers": pl.Int32, "repeats": pl.Int32})
                 .with_columns(**{k: pl.lit(v) for k, v in keys.items()})
                 .select(OUTLIER_AUC.written_columns), OUTLIER_AUC)
    return result
