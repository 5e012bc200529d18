"""Layer profile: selectivity per layer, trained vs untrained, unit vs kernel, consistency."""

from __future__ import annotations

import altair as alt
import streamlit as st
from ui import choose, empty, query

POOL_ORDER = ["none", "mean", "max", "l2"]


def layer_profile() -> None:
    st.title("Layer profile")
    layers = query("SELECT * FROM layer_selectivity WHERE subset = 'all'")
    if layers.is_empty():
        empty("selectivity summaries", "Ingest activations (`unitsel ingest …`).")
        return
    sets = sorted(layers["stimulus_set"].unique())
    chosen = choose("Stimulus set", sets, "set")
    # Units before kernels; the kernel pools in the order ingest computes them.
    pools = sorted(layers["pool"].unique(), key=lambda p: (POOL_ORDER.index(p)
                                                           if p in POOL_ORDER else 9, p))
    pool = choose("Pool", pools, "pool")
    # Layers in the network's order (recorded at ingest), not alphabetically.
    order = query("SELECT layer FROM layers GROUP BY layer "
                  "ORDER BY min(position) NULLS LAST, layer")["layer"].to_list()
    part = layers.filter(stimulus_set=chosen, pool=pool)
    metric = st.selectbox("Metric (Gale Fig. 2)", ["top_class_selectivity", "ccmas",
                                                    "precision_100"])
    values = query(f"SELECT s.model_id, m.state, s.layer, s.{metric} AS value FROM selectivity s "
                   "JOIN models m USING (model_id) WHERE s.stimulus_set = $1 AND s.pool = $2 "
                   "AND s.subset = 'all'", [chosen, pool])
    st.caption(f"Distribution over units per layer; layer means: {len(part)} rows in "
               "layer_selectivity.")
    st.altair_chart(alt.Chart(values.to_arrow()).mark_boxplot().encode(
        x=alt.X("layer:N", sort=order), y=alt.Y("value:Q", title=metric), color="state:N",
        xOffset="model_id:N", tooltip=["model_id", "layer"]), width="stretch")
    _invert_labels(chosen, pool, order)
    categories = query("SELECT DISTINCT stimulus_set, category FROM metric_consistency")
    st.subheader("Category selectivity (Lado & Dobs Fig. 1b-c, 1f)")
    if categories.is_empty():
        empty("category analyses", "Run `unitsel demo --faces` or `unitsel analyse "
              "consistency`.")
        return
    cat_set, category = categories.row(0)
    percent = query("SELECT * FROM layer_category_selectivity($1, $2)", [cat_set, category])
    st.altair_chart(alt.Chart(percent.to_arrow()).mark_line(point=True).encode(
        x=alt.X("layer:N", sort=order), y="percent_selective:Q", color="state:N",
        strokeDash="pool:N", column="metric:N"))
    consistency = query("SELECT model_id, layer, pool, metric_a, metric_b, spearman_rho "
                        "FROM metric_consistency WHERE stimulus_set = $1", [cat_set])
    st.altair_chart(alt.Chart(consistency.to_arrow()).mark_rect().encode(
        x="metric_a:N", y="metric_b:N", color=alt.Color("spearman_rho:Q",
                                                        scale=alt.Scale(domain=[-1, 1])),
        row="model_id:N", column="layer:N", tooltip=["spearman_rho"]))


def _invert_labels(stimulus_set: str, pool: str, order: list[str]) -> None:
    """Per layer, the best INVERT label of every unit: its AUROC and its length."""
    st.subheader("Concept labels (INVERT): best formula per unit")
    best = query("SELECT model_id, state, layer, concept_set, auroc, length "
                 "FROM unit_label_selectivity WHERE stimulus_set = $1 AND pool = $2 "
                 "AND subset = 'all' AND mode = 'positive'", [stimulus_set, pool])
    if best.is_empty():
        empty("INVERT labels", "Run `unitsel ingest concept-masks` and `unitsel analyse "
              "invert`.")
        return
    concept_set = choose("Concept set (INVERT)", sorted(best["concept_set"].unique()),
                         "concepts")
    chosen = best.filter(concept_set=concept_set).to_arrow()
    st.altair_chart(alt.Chart(chosen).mark_boxplot().encode(
        x=alt.X("layer:N", sort=order), y=alt.Y("auroc:Q", title="best AUROC"),
        color="state:N", xOffset="model_id:N"), width="stretch")
    st.altair_chart(alt.Chart(chosen).mark_bar().encode(
        x=alt.X("layer:N", sort=order), y=alt.Y("count():Q", title="units"),
        color=alt.Color("length:O", title="formula length"), xOffset="model_id:N"),
        width="stretch")


layer_profile()
