"""Metric tables written to files, for people who would rather not use SQL."""

from __future__ import annotations

import os
from pathlib import Path

from unitsel.errors import InputError
from unitsel.warehouse import connection


def export_selectivity(root: Path, out: Path, *, model_id: str, stimulus_set: str,
                       layer: str | None, pool: str, correct_only: bool) -> int:
    """Write the `selectivity` rows of one model and stimulus set (one layer, or all) to a
    .csv or .parquet file, atomically. Returns the number of rows."""
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise InputError("the output must end in .csv or .parquet", file=out)
    with connection(root) as con:
        frame = con.execute(
            "SELECT * EXCLUDE (subset) FROM selectivity WHERE model_id = $model "
            "AND stimulus_set = $set AND pool = $pool AND subset = $subset "
            "AND ($layer IS NULL OR layer = $layer) ORDER BY layer, unit",
            {"model": model_id, "set": stimulus_set, "pool": pool, "layer": layer,
             "subset": "correct" if correct_only else "all"},
        ).pl()
    if frame.is_empty():
        raise InputError(f"no summarised units for model {model_id!r}, stimulus set "
                         f"{stimulus_set!r}, layer {layer or 'any'!r}, pool {pool!r}; see "
                         "`unitsel layers`")
    tmp = out.with_name(f".{out.name}.tmp")
    if suffix == ".csv":
        frame.write_csv(tmp)
    else:
        frame.write_parquet(tmp)
    os.replace(tmp, out)
    return frame.height
