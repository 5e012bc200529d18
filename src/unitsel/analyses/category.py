"""Reading category-selectivity metrics out of the warehouse for the analysis jobs."""

from __future__ import annotations

import polars as pl

from unitsel.errors import InputError
from unitsel.warehouse import Transaction

# Each metric's continuous value (what units are ranked by) and its selection flag.
METRICS = {
    "fsi": ("fsi", "is_fsi_selective"),
    "dprime": ("dprime", "is_dprime_selective"),
    "ranksum": ("ranksum_z", "is_ranksum_selective"),
    "ttest": ("ttest_min_t", "is_ttest_selective"),
}


def category_metrics(tx: Transaction, model_id: str, stimulus_set: str, category: str,
                     layer: str | None = None, pool: str | None = None) -> pl.DataFrame:
    """`category_selectivity` rows for one model (optionally one layer and pool); an error
    naming what exists when nothing matches."""
    with tx.sql() as con:
        frame = con.execute(
            "SELECT * FROM category_selectivity($set, $category, model_name := $model, "
            "layer_name := $layer, pool_name := $pool)",
            {"set": stimulus_set, "category": category, "model": model_id, "layer": layer,
             "pool": pool}).pl()
        if frame.is_empty():
            labels = con.execute(
                "SELECT DISTINCT label FROM class_stats WHERE model_id = $1 AND stimulus_set = $2 "
                "ORDER BY label", [model_id, stimulus_set]).pl()["label"].to_list()
    if frame.is_empty():
        where = ", ".join(f"{k} {v}" for k, v in
                          (("layer", layer), ("pool", pool)) if v is not None)
        raise InputError(
            f"no category selectivity for model {model_id}, stimulus set {stimulus_set}, "
            f"category {category!r}{', ' + where if where else ''}: "
            + (f"the summarised labels are {labels[:20]}" if labels else
               "no summarised activations of that model and set"))
    return frame
