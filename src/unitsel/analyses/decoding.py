"""Decoding from selected units (Lado & Dobs Fig. 1e): a linear SVM decodes the labels of a
stimulus set from the activations of the top-N units of each category-selectivity metric, N
the same for every metric (by default the fewest units any metric selects), plus N random
units as a baseline; leave-one-stimulus-out and stratified k-fold cross-validation.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.stats
from tqdm import tqdm

from unitsel.analyses.activations import activation_matrix
from unitsel.analyses.category import METRICS, category_metrics
from unitsel.errors import InputError
from unitsel.schema import DECODING
from unitsel.warehouse import Transaction

CV_SCHEMES = ("leave-one-out", "k-fold")


def top_units(units: pl.DataFrame, n_units: int | None,
              seed: int) -> tuple[int, dict[str, list[int]]]:
    """N and, per metric, its N units with the highest values (ties: lower unit first);
    'random' draws N units with `seed`."""
    if n_units is None:
        selected = {name: int(units[flag].sum()) for name, (_, flag) in METRICS.items()}
        n_units = min(selected.values())
        if n_units == 0:
            raise InputError(f"a metric selects no unit ({selected}); pass n_units to decode "
                             "from the top units of each metric anyway")
    if not 0 < n_units <= units.height:
        raise InputError(f"n_units must be between 1 and the layer's {units.height} units, "
                         f"got {n_units}")
    chosen = {
        name: units.sort([column, "unit"], descending=[True, False], nulls_last=True)
        ["unit"].head(n_units).to_list()
        for name, (column, _) in METRICS.items()
    }
    rng = np.random.default_rng(seed)
    chosen["random"] = sorted(rng.choice(units["unit"].to_numpy(), n_units, replace=False).tolist())
    return n_units, chosen


def fold_accuracies(x: np.ndarray, y: np.ndarray, cv: str, folds: int, seed: int) -> np.ndarray:
    """Held-out accuracy of each fold of a standardised linear SVM."""
    from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    splitter = (LeaveOneOut() if cv == "leave-one-out"
                else StratifiedKFold(folds, shuffle=True, random_state=seed))
    model = make_pipeline(StandardScaler(), LinearSVC(max_iter=20_000))
    return np.asarray(cross_val_score(model, x, y, cv=splitter))


def interval(scores: np.ndarray) -> tuple[float | None, float | None]:
    """95 % t-interval of the mean over folds (None with one fold)."""
    if len(scores) < 2:
        return None, None
    half = scipy.stats.t.ppf(0.975, len(scores) - 1) * scores.std(ddof=1) / np.sqrt(len(scores))
    return float(scores.mean() - half), float(scores.mean() + half)


def run_decoding(tx: Transaction, model_id: str, stimulus_set: str, category: str, layer: str,
                 pool: str, decode_set: str | None = None, n_units: int | None = None,
                 folds: int = 10, cv: tuple[str, ...] = CV_SCHEMES, seed: int = 0
                 ) -> pl.DataFrame:
    """Select units on `stimulus_set`, decode `decode_set`'s labels (default the same set) and
    write the `decoding` rows of this selection."""
    decode_set = decode_set or stimulus_set
    unknown = set(cv) - set(CV_SCHEMES)
    if unknown:
        raise InputError(f"unknown cross-validation {sorted(unknown)}; use {CV_SCHEMES}")
    units = category_metrics(tx, model_id, stimulus_set, category, layer, pool)
    n, chosen = top_units(units, n_units, seed)
    needed = sorted({u for us in chosen.values() for u in us})
    x_all, y = activation_matrix(tx, model_id, decode_set, layer, pool, needed)
    column = {u: i for i, u in enumerate(needed)}
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise InputError(f"stimulus set {decode_set}: every label needs 2 stimuli to decode")
    rows = []
    jobs = [(metric, scheme) for metric in chosen for scheme in cv]
    for metric, scheme in tqdm(jobs, desc="decoding", unit="fit", disable=not tx.progress):
        x = x_all[:, [column[u] for u in chosen[metric]]]
        scores = fold_accuracies(x, y, scheme, min(folds, int(counts.min())), seed)
        low, high = interval(scores)
        rows.append({"metric": metric, "cv": scheme, "n_units": n, "n_folds": len(scores),
                     "accuracy": float(scores.mean()), "ci_low": low, "ci_high": high})
    result = pl.DataFrame(rows).with_columns(
        model_id=pl.lit(model_id), stimulus_set=pl.lit(stimulus_set), category=pl.lit(category),
        layer=pl.lit(layer), pool=pl.lit(pool), decode_set=pl.lit(decode_set),
        chance=pl.lit(counts.max() / counts.sum()))
    tx.write(result.select(DECODING.written_columns), DECODING)
    return result
