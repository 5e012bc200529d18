"""Overview: models with provenance, layers, stimulus sets, computed tables."""

from __future__ import annotations

import polars as pl
import streamlit as st
from ui import empty, query, root

from unitsel.schema import TABLES


def overview() -> None:
    st.title("unitsel warehouse")
    st.caption(f"Warehouse: {root().resolve()}")
    models = query("SELECT * FROM models ORDER BY model_id")
    if models.is_empty():
        empty("models", "Run `unitsel demo` or `unitsel ingest activations`.")
        return
    st.subheader("Models")
    st.dataframe(models, hide_index=True)
    st.subheader("Layers")
    st.dataframe(query("SELECT model_id, layer, pool, kind, n_units FROM layers "
                       "ORDER BY ALL").pivot(on="pool", index=["model_id", "layer", "kind"],
                                             values="n_units"), hide_index=True)
    st.subheader("Stimulus sets")
    st.dataframe(query("SELECT stimulus_set, count(*) AS stimuli, count(DISTINCT label) AS "
                       "labels, count(uri) AS images FROM stimuli GROUP BY ALL ORDER BY 1"),
                 hide_index=True)
    st.subheader("What has been computed")
    counts = [(name, query(f"SELECT count(*) AS n FROM {name}")["n"][0]) for name in TABLES]
    st.dataframe(pl.DataFrame(counts, schema=["table", "rows"], orient="row"),
                 hide_index=True)


overview()
