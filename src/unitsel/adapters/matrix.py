"""A stimuli x units matrix -> the long (unit, stimulus, activation) rows of one partition."""

from __future__ import annotations

import numpy as np
import polars as pl

from unitsel.errors import InputError


def long_frame(matrix: np.ndarray, first_stimulus: int, source: object,
               first_unit: int = 0, first_row: int | None = None) -> pl.DataFrame:
    """Rows of `matrix` are stimuli `first_stimulus, …`, its columns units `first_unit, …`.

    Non-finite values are rejected with the unit as the column and as the row the stimulus,
    or `first_row + i` when `source` holds only some stimuli (its rows are named then).
    """
    if matrix.ndim != 2:
        raise InputError(f"expected a stimuli x units matrix, got shape {matrix.shape}",
                         file=source)
    values = np.ascontiguousarray(matrix, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():
        row, unit = (int(i) for i in np.argwhere(~finite)[0])
        raise InputError(f"non-finite activation {values[row, unit]}", file=source,
                         row=(first_stimulus if first_row is None else first_row) + row,
                         column=f"unit {first_unit + unit}")
    n_stimuli, n_units = values.shape
    return pl.DataFrame(
        {
            "unit": np.tile(np.arange(first_unit, first_unit + n_units, dtype=np.int32),
                            n_stimuli),
            "stimulus": np.repeat(
                np.arange(first_stimulus, first_stimulus + n_stimuli, dtype=np.int32), n_units
            ),
            "activation": values.reshape(-1),
        }
    )
