"""Metric tables written to files, for people who would rather not use SQL."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from unitsel.analyses.category import category_metrics
from unitsel.errors import InputError
from unitsel.warehouse import Transaction


def _check_suffix(out: Path) -> None:
    """The output path is usable: .csv or .parquet, in a folder that exists."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError("the output must end in .csv or .parquet", file=out)
    if not out.parent.is_dir():
        raise InputError("no such folder for the output; create it first", file=out.parent)


def write_file(frame: pl.DataFrame, out: Path) -> int:
    """Write `frame` to a .csv or .parquet file atomically; returns the number of rows."""
    _check_suffix(out)
    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".csv":
        frame.write_csv(tmp)
    else:
        frame.write_parquet(tmp)
    os.replace(tmp, out)
    return frame.height


def export_selectivity(tx: Transaction, out: Path, *, model_id: str, stimulus_set: str,
                       layer: str | None, pool: str, correct_only: bool) -> int:
    """Write the `selectivity` rows of one model and stimulus set (one layer, or all) to a
    .csv or .parquet file, atomically. Returns the number of rows."""
    _check_suffix(out)
    with tx.sql() as con:
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
    return write_file(frame, out)


def export_category(tx: Transaction, out: Path, *, model_id: str, stimulus_set: str,
                    category: str, layer: str | None, pool: str | None) -> int:
    """Write every unit's category selectivity (Lado & Dobs) to a .csv or .parquet file."""
    _check_suffix(out)
    frame = category_metrics(tx, model_id, stimulus_set, category, layer, pool)
    return write_file(frame.drop("subset").sort("layer", "pool", "unit"), out)
