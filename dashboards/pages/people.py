"""People: Gale's Table 1, annotator agreement, explanation summaries."""

from __future__ import annotations

import streamlit as st
from ui import empty, query


def people() -> None:
    st.title("People")
    studies = query("SELECT * FROM studies ORDER BY study_id")
    if studies.is_empty():
        empty("human studies", "Run `unitsel ingest ratings` or `unitsel ingest annotations`.")
        return
    st.dataframe(studies, hide_index=True)
    if studies["simulated"].any():
        st.warning("Studies marked simulated hold generated data, not people's.")
    st.subheader("Gale et al. Table 1")
    st.dataframe(query("SELECT * FROM rating_summary ORDER BY ALL"), hide_index=True)
    st.subheader("Agreement between annotators (D = 1 / D = 2, Jaccard)")
    st.dataframe(query("SELECT label, avg(jaccard) AS jaccard, avg(d1_agreement) AS d1, "
                       "avg(d2_agreement) AS d2, avg(d1_subset_compatible) AS d1_subset "
                       "FROM annotation_agreement GROUP BY label ORDER BY label"),
                 hide_index=True)
    st.subheader("Coverage and purity")
    st.dataframe(query("SELECT c.label, c.annotator_id, c.activation_coverage, "
                       "c.complete_coverage, p.cx_purity, p.xc_purity FROM annotation_coverage "
                       "c LEFT JOIN annotation_purity p USING (study_id, label, annotator_id) "
                       "ORDER BY ALL"), hide_index=True)
    st.subheader("Explanation summaries (Table 4)")
    st.dataframe(query("SELECT * FROM explanation_summaries WHERE share >= 0.05 ORDER BY "
                       "label, annotator_id, share DESC"), hide_index=True)


people()
