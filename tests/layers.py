"""Synthetic layers for metric tests: a hypothesis strategy and a loader through the writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import strategies as st

from unitsel import Transaction


def load(root: Path, acts: np.ndarray, labels: list[str],
         correct: list[bool] | None = None) -> None:
    n, units = acts.shape
    with Transaction(root) as tx:
        tx.write(pl.DataFrame({"stimulus_set": "s", "stimulus": range(n), "uri": None,
                               "label": labels, "wnid": None}), "stimuli")
        tx.write(pl.DataFrame({
            "model_id": "m", "stimulus_set": "s", "layer": "l", "pool": "none",
            "unit": np.tile(np.arange(units), n), "stimulus": np.repeat(np.arange(n), units),
            "activation": acts.astype(np.float32).reshape(-1)}), "activations")
        if correct is not None:
            tx.write(pl.DataFrame({"model_id": "m", "stimulus_set": "s", "stimulus": range(n),
                                   "predicted_label": None, "is_correct": correct}),
                     "predictions")



@st.composite
def layers(draw: st.DrawFn, min_labels: int = 1) -> tuple[np.ndarray, list[str]]:
    n_labels = draw(st.integers(min_labels, 5))
    n = draw(st.integers(n_labels, 160))
    units = draw(st.integers(1, 4))
    labels = [f"c{i % n_labels}" for i in range(n_labels)] + [
        f"c{draw(st.integers(0, n_labels - 1))}" for _ in range(n - n_labels)]
    kind = draw(st.sampled_from(["relu", "ties", "negative", "equal"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    acts = rng.normal(size=(n, units))
    if kind == "relu":
        acts = np.maximum(acts, 0)  # about half exact zeros: massive ties
    elif kind == "ties":
        acts = np.round(acts)  # a handful of distinct values
    elif kind == "equal":
        acts = np.full((n, units), 0.5)
    # float32 is what the warehouse stores: compare on the same values.
    return acts.astype(np.float32), labels
