"""A layer's activations as a dense stimuli x units matrix, for jobs that need numpy."""

from __future__ import annotations

import numpy as np

from unitsel.errors import InputError
from unitsel.warehouse import Transaction


def activation_matrix(tx: Transaction, model_id: str, stimulus_set: str, layer: str, pool: str,
                      units: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stimuli x units float64 activations (stimuli ascending; columns the ascending `units`,
    default every unit) and the stimuli's labels."""
    where = "model_id = $1 AND stimulus_set = $2 AND layer = $3 AND pool = $4"
    with tx.sql() as con:
        long = con.execute(f"""
            SELECT stimulus, unit, activation FROM activations
            WHERE {where} AND ($5::INTEGER[] IS NULL OR list_contains($5, unit))
            ORDER BY stimulus, unit
        """, [model_id, stimulus_set, layer, pool, units]).fetchnumpy()
        labels = con.execute("SELECT label FROM stimuli WHERE stimulus_set = $1 ORDER BY "
                             "stimulus", [stimulus_set]).fetchnumpy()["label"]
    n_units = len(np.unique(long["unit"]))
    if n_units == 0:
        raise InputError(f"no activations of model {model_id}, stimulus set {stimulus_set}, "
                         f"layer {layer}, pool {pool}")
    if len(long["unit"]) != n_units * len(labels):
        raise InputError(f"activations of {model_id} {layer} {pool} on {stimulus_set} do not "
                         f"cover all {len(labels)} stimuli x {n_units} units")
    matrix = long["activation"].astype(np.float64).reshape(len(labels), n_units)
    return matrix, np.asarray(labels)
