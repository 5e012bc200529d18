"""What every dashboard page shares: the warehouse connection, queries, empty states and
selectors that keep their choice in the URL (so a unit's page is a shareable link)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

import unitsel


def root() -> Path:
    """The warehouse: $UNITSEL_ROOT (read per run, so one server process serves what it was
    started with and tests can point each app at another)."""
    return Path(os.environ.get("UNITSEL_ROOT", "warehouse"))


@st.cache_resource
def _connection(root: str) -> tuple[Any, threading.Lock]:
    # One connection (its session variable wh_root carries the warehouse; cursors would lose
    # it) behind a lock: Streamlit serves sessions from several threads.
    return unitsel.connect(root), threading.Lock()


def query(sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """Run SQL over the warehouse."""
    con, lock = _connection(str(root()))
    with st.spinner("Querying the warehouse…"), lock:
        return con.execute(sql, params or []).pl()


def empty(what: str, how: str) -> None:
    st.info(f"No {what} yet. {how}")


def choose(label: str, options: list[Any], key: str) -> Any:
    """A selectbox that starts from (and writes back) the URL's query parameter `key`."""
    wanted = st.query_params.get(key)
    index = next((i for i, o in enumerate(options) if str(o) == wanted), 0)
    value = st.sidebar.selectbox(label, options, index=index, key=f"pick-{key}")
    st.query_params[key] = str(value)
    return value


