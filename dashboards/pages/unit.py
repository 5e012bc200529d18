"""One unit: jitterplot, histogram, metrics, top stimuli, concepts, INVERT labels,
lesions."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st
from ui import choose, empty, query, root

from unitsel import lake, storage
from unitsel.adapters.labels import image_file


def unit_page() -> None:
    st.title("Unit")
    layers = query("SELECT DISTINCT model_id, stimulus_set, layer, pool, n_units FROM layers "
                   "JOIN (SELECT DISTINCT model_id, stimulus_set, layer, pool FROM unit_summaries)"
                   " USING (model_id, layer, pool) ORDER BY ALL")
    if layers.is_empty():
        empty("units", "Run `unitsel demo` or `unitsel ingest activations`.")
        return
    model = choose("Model", sorted(layers["model_id"].unique()), "model")
    part = layers.filter(model_id=model)
    stimulus_set = choose("Stimulus set", sorted(part["stimulus_set"].unique()), "set")
    layer = choose("Layer", sorted(part.filter(stimulus_set=stimulus_set)["layer"].unique()),
                   "layer")
    rows = part.filter(stimulus_set=stimulus_set, layer=layer)
    pool = choose("Pool", sorted(rows["pool"].unique()), "pool")
    n_units = int(rows.filter(pool=pool)["n_units"][0])
    unit = choose("Unit", list(range(n_units)), "unit")
    metrics = query("SELECT * FROM unit_selectivity($1, $2, $3, $4) WHERE unit = $5",
                    [model, stimulus_set, layer, pool, unit])
    jitter = query("SELECT * FROM unit_jitter($1, $2, $3, $4, $5)",
                   [model, stimulus_set, layer, pool, unit])
    st.subheader("Jitterplot (Gale Figs. 3-4): the top label in colour, the rest grey")
    st.altair_chart(alt.Chart(jitter.to_arrow()).mark_circle(size=18).encode(
        x=alt.X("jitter:Q", axis=None), y="activation:Q",
        color=alt.condition("datum.is_top_label", alt.value("#d62728"), alt.value("#bbbbbb")),
        tooltip=["stimulus", "label", "activation"]), width="stretch")
    top = jitter.filter(pl.col("is_top_label"))
    st.subheader("Activations of the top label")
    st.altair_chart(alt.Chart(top.to_arrow()).mark_bar().encode(
        x=alt.X("activation:Q", bin=alt.Bin(maxbins=30)), y="count()"),
        width="stretch")
    st.subheader("Every metric (definitions: docs/metrics.md)")
    st.dataframe(metrics.transpose(include_header=True, column_names=["value"])
                 .with_columns(pl.col("value").cast(pl.String)), hide_index=True)
    _top_stimuli(model, stimulus_set, layer, pool, unit)
    concepts = query("SELECT crop, similarity, concept, score FROM unit_concepts WHERE "
                     "model_id = $1 AND stimulus_set = $2 AND layer = $3 AND pool = $4 AND "
                     "unit = $5 ORDER BY crop, similarity, score DESC",
                     [model, stimulus_set, layer, pool, unit])
    st.subheader("Concepts (WWW)")
    if concepts.is_empty():
        empty("concept scores for this unit", "Run `unitsel analyse concepts`.")
    else:
        st.dataframe(concepts, hide_index=True)
    labels = query("SELECT concept_set, mode, rank, formula, length, auroc, p, q "
                   "FROM unit_labels WHERE model_id = $1 AND stimulus_set = $2 AND layer = $3 "
                   "AND pool = $4 AND unit = $5 AND subset = 'all' "
                   "ORDER BY concept_set, mode DESC, rank",
                   [model, stimulus_set, layer, pool, unit])
    st.subheader("Concept labels (INVERT): best formulas, AUROC and p")
    if labels.is_empty():
        empty("INVERT labels for this unit", "Run `unitsel ingest concept-masks` and "
              "`unitsel analyse invert`.")
    else:
        st.dataframe(labels, hide_index=True)
    lesion = query("SELECT task, baseline, lesioned, baseline - lesioned AS drop FROM lesions "
                   "WHERE model_id = $1 AND layer = $2 AND unit = $3", [model, layer, unit])
    st.subheader("Lesion effect")
    if lesion.is_empty():
        empty("lesions of this unit", "Run `unitsel ingest lesions`.")
    else:
        st.dataframe(lesion, hide_index=True)


def _top_stimuli(model: str, stimulus_set: str, layer: str, pool: str, unit: int) -> None:
    top = query("SELECT t.rank, t.label, t.activation, s.uri FROM unit_top t JOIN stimuli s "
                "USING (stimulus_set, stimulus) WHERE t.model_id = $1 AND t.stimulus_set = $2 "
                "AND t.layer = $3 AND t.pool = $4 AND t.unit = $5 AND t.subset = 'all' "
                "AND t.rank <= 12 ORDER BY t.rank", [model, stimulus_set, layer, pool, unit])
    st.subheader("Top stimuli")
    # Only files inside the warehouse's image folder (a uri of '../' or an absolute path,
    # stored before the rule or by hand, is refused and logged), on disk or in its bucket.
    folder = lake.images_path(root(), stimulus_set)
    images = [image_file(folder, uri) for uri in top["uri"].drop_nulls()]
    found = [p for p in images if p is not None]
    if images and len(found) == len(images) and not storage.missing(found):
        st.image([storage.read_bytes(p) for p in found], width=72,
                 caption=[f"{label} {a:.2f}" for label, a in top.select("label", "activation")
                          .rows()])
    else:
        st.dataframe(top.drop("uri"), hide_index=True)


unit_page()
