"""unitsel dashboards: look at units, layers, semantics and people.

Started by `unitsel dashboard [--root DIR] [--port N]`, which passes the warehouse in
$UNITSEL_ROOT. Every number comes from the warehouse through `unitsel.connect()`; nothing is
computed here. A unit's page has a shareable URL (query parameters model, set, layer, pool,
unit).
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="unitsel", layout="wide")
st.navigation([
    st.Page("pages/overview.py", title="Overview", default=True),
    st.Page("pages/layers.py", title="Layer profile"),
    st.Page("pages/unit.py", title="Unit"),
    st.Page("pages/semantics.py", title="Semantics"),
    st.Page("pages/people.py", title="People"),
]).run()
