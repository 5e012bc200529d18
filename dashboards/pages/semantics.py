"""Semantics: distance matrices, Mantel tests, the representation atlas."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st
from ui import choose, empty, query


def semantics() -> None:
    st.title("Semantics (DORA)")
    parts = query("SELECT DISTINCT model_id, stimulus_set, layer, pool, measure FROM "
                  "unit_distances ORDER BY ALL")
    if parts.is_empty():
        empty("functional distances", "Run `unitsel analyse distances`.")
        return
    model = choose("Model", sorted(parts["model_id"].unique()), "model")
    part = parts.filter(model_id=model)
    layer = choose("Layer", sorted(part["layer"].unique()), "layer")
    measure = choose("Measure", sorted(part.filter(layer=layer)["measure"].unique()), "measure")
    row = part.filter(layer=layer, measure=measure).row(0, named=True)
    distances = query("SELECT unit_a, unit_b, distance FROM unit_distances WHERE model_id = $1 "
                      "AND stimulus_set = $2 AND layer = $3 AND pool = $4 AND measure = $5",
                      [model, row["stimulus_set"], layer, row["pool"], measure])
    symmetric = pl.concat([distances, distances.select(
        pl.col("unit_b").alias("unit_a"), pl.col("unit_a").alias("unit_b"), "distance")])
    left, right = st.columns(2)
    left.subheader(f"Functional: {measure}")
    left.altair_chart(_heatmap(symmetric, "unit_a", "unit_b"), width="stretch")
    sets = query("SELECT DISTINCT concept_set, measure FROM semantic_distances ORDER BY ALL")
    right.subheader("Semantic baseline")
    if sets.is_empty():
        right.info("No semantic distances yet. Run `unitsel analyse semantic`.")
    else:
        concept_set, baseline = sets.row(0)
        pairs = query("SELECT c1.class_index AS a, c2.class_index AS b, s.distance FROM "
                      "semantic_distances s JOIN concepts c1 ON c1.concept_set = s.concept_set "
                      "AND c1.wnid = s.wnid_a JOIN concepts c2 ON c2.concept_set = "
                      "s.concept_set AND c2.wnid = s.wnid_b WHERE s.concept_set = $1 AND "
                      "s.measure = $2", [concept_set, baseline])
        both = pl.concat([pairs, pairs.select(pl.col("b").alias("a"), pl.col("a").alias("b"),
                                              "distance")])
        right.caption(f"{concept_set}: {baseline}")
        right.altair_chart(_heatmap(both, "a", "b"), width="stretch")
    st.subheader("Mantel tests (DORA Tables 1-2)")
    st.dataframe(query("SELECT * FROM mantel_summary ORDER BY model_id, measure"),
                 hide_index=True)
    atlas = query("SELECT a.unit, a.x, a.y, coalesce(a.hypernym, 'unknown') AS hypernym, "
                  "coalesce(bool_or(o.is_outlier), false) AS outlier FROM unit_atlas a "
                  "LEFT JOIN unit_outliers o USING (model_id, stimulus_set, layer, pool, "
                  "measure, unit) WHERE a.model_id = $1 AND a.layer = $2 GROUP BY ALL",
                  [model, layer])
    st.subheader("Representation atlas (outliers as crosses)")
    if atlas.is_empty():
        empty("atlas", "Run `unitsel analyse atlas`.")
    else:
        st.altair_chart(alt.Chart(atlas.to_arrow()).mark_point(filled=True).encode(
            x="x:Q", y="y:Q", color="hypernym:N",
            shape=alt.condition("datum.outlier", alt.value("cross"), alt.value("circle")),
            tooltip=["unit", "hypernym", "outlier"]), width="stretch")


def _heatmap(frame: pl.DataFrame, x: str, y: str) -> alt.Chart:
    return alt.Chart(frame.to_arrow()).mark_rect().encode(
        x=alt.X(f"{x}:O", axis=None), y=alt.Y(f"{y}:O", axis=None), color="distance:Q")


semantics()
