"""Consistency of category-selectivity metrics (Lado & Dobs Fig. 1d, 1f): per layer and pool,
the Spearman correlation between every two metrics over the units, lesion effects included
as one more metric where the `lesions` table has them.

Ranking units by metric A and correlating that ranking with metric B's values, as the paper
describes, is Spearman's rho of A and B: both sides are ranked (ties at their mean rank).
"""

from __future__ import annotations

from itertools import combinations

import polars as pl

from unitsel.analyses.category import METRICS, category_metrics
from unitsel.schema import LESIONS, METRIC_CONSISTENCY
from unitsel.warehouse import Transaction

KEYS = ["layer", "pool", "unit"]


def _lesion_effects(tx: Transaction, model_id: str, units: pl.DataFrame) -> pl.DataFrame:
    """Long frame layer, pool, unit, metric, value with value = baseline - lesioned (the drop).
    A layer's lesions match every pool whose unit count equals the number of lesioned units:
    channels match the kernel pools, flat units pool 'none'."""
    lesions = (tx.scan(LESIONS)
               .filter(pl.col("model_id") == model_id).collect()
               .with_columns(metric="lesion:" + pl.col("task"),
                             value=pl.col("baseline") - pl.col("lesioned"))
               .with_columns(n_lesioned=pl.len().over("layer", "metric")))
    pools = units.group_by("layer", "pool").agg(n_units=pl.len())
    return (lesions.join(pools, on="layer")
            .filter(pl.col("n_units") == pl.col("n_lesioned"))
            .select("layer", "pool", "unit", "metric", "value"))


def metric_values(tx: Transaction, model_id: str, stimulus_set: str,
                  category: str) -> pl.DataFrame:
    """Every unit's value of every metric, long: layer, pool, unit, metric, value."""
    units = category_metrics(tx, model_id, stimulus_set, category)
    long = pl.concat([
        units.select(*KEYS, metric=pl.lit(name), value=pl.col(column))
        for name, (column, _) in METRICS.items()
    ])
    return pl.concat([long, _lesion_effects(tx, model_id, units)])


def pairwise_spearman(values: pl.DataFrame) -> pl.DataFrame:
    """Per layer and pool, Spearman's rho for every pair of metrics over the units where both
    are defined (NULL when either side is constant)."""
    wide = values.pivot("metric", index=KEYS, values="value")
    metrics = sorted(c for c in wide.columns if c not in KEYS)
    frames = []
    for a, b in combinations(metrics, 2):
        both = wide.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
        frames.append(both.group_by("layer", "pool").agg(
            metric_a=pl.lit(a), metric_b=pl.lit(b),
            spearman_rho=pl.corr(a, b, method="spearman"),
            n_units=pl.len().cast(pl.Int32)))
    result = pl.concat(frames)
    # Polars gives NaN where a side is constant; the table stores that as unknown.
    return result.with_columns(pl.col("spearman_rho").fill_nan(None)).sort(
        "layer", "pool", "metric_a", "metric_b")


def run_consistency(tx: Transaction, model_id: str, stimulus_set: str,
                    category: str) -> pl.DataFrame:
    """Compute and write `metric_consistency` for one model, stimulus set and category."""
    result = pairwise_spearman(metric_values(tx, model_id, stimulus_set, category))
    result = result.with_columns(model_id=pl.lit(model_id), stimulus_set=pl.lit(stimulus_set),
                                 category=pl.lit(category))
    tx.write(result.select(METRIC_CONSISTENCY.written_columns), METRIC_CONSISTENCY)
    return result
