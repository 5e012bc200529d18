"""A rating-study package, as Gale et al. ran by hand: per unit a 10 x 10 panel of its
activation-maximisation signals (`ams`: the s-AMS PNGs of `unitsel ingest sams`) or of its most
activating stimuli (`top`: `unit_top` ranks 1-100, images from the stimulus set's folder), and a
manifest CSV (panel, model, layer, pool, unit, source, list) an online experiment platform can
import. Panels are shuffled with `seed` and dealt round-robin into `lists` counterbalanced
lists. The manifest is also stored as `study_panels`, so the ratings that come back (with a
`panel` column) ingest against it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from unitsel import lake, storage
from unitsel.errors import InputError
from unitsel.files import replaced_folder
from unitsel.schema import STUDY_PANELS
from unitsel.warehouse import Transaction

GRID = 10
TILE = 64
SOURCES = ("ams", "top")


def _tile_paths(tx: Transaction, source: str, model_id: str, layer: str, pool: str, unit: int,
                stimulus_set: str | None, images: Path | None) -> list[str]:
    with tx.sql() as con:
        if source == "ams":
            uris = [r[0] for r in con.execute(
                "SELECT uri FROM ams WHERE model_id = $1 AND layer = $2 AND pool = $3 AND "
                "unit = $4 AND uri IS NOT NULL ORDER BY signal LIMIT 100",
                [model_id, layer, pool, unit]).fetchall()]
            return [storage.join(tx.place, uri) for uri in uris]
        rows = con.execute(
            "SELECT s.uri FROM unit_top t JOIN stimuli s USING (stimulus_set, stimulus) "
            "WHERE t.model_id = $1 AND t.stimulus_set = $2 AND t.layer = $3 AND t.pool = $4 "
            "AND t.unit = $5 AND t.subset = 'all' ORDER BY t.rank LIMIT 100",
            [model_id, stimulus_set, layer, pool, unit]).fetchall()
    if any(uri is None for (uri,) in rows):
        raise InputError(f"stimulus set {stimulus_set!r} has no image files; use source 'ams'")
    folder = str(images) if images else lake.images_path(tx.root, str(stimulus_set))
    return [storage.join(folder, uri) for (uri,) in rows]


def panel_image(paths: list[str]) -> np.ndarray:
    """Up to 100 images tiled 10 x 10 (64 px tiles; empty tiles mid-grey), RGB uint8."""
    from PIL import Image

    panel = np.full((GRID * TILE, GRID * TILE, 3), 128, dtype=np.uint8)
    for i, path in enumerate(paths[: GRID * GRID]):
        try:
            with Image.open(io.BytesIO(storage.read_bytes(path))) as image:
                tile = np.asarray(image.convert("RGB").resize((TILE, TILE)))
        except OSError as error:
            raise InputError(f"cannot read panel image: {error}", file=path) from None
        row, col = divmod(i, GRID)
        panel[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE] = tile
    return panel


def export_study(tx: Transaction, study_id: str, units: list[tuple[str, str, str, int]],
                 out: Path, source: str = "ams", stimulus_set: str | None = None,
                 images: Path | None = None, lists: int = 4, seed: int = 0) -> pl.DataFrame:
    """Write `out/panels/*.png` and `out/manifest.csv` (replacing `out`, in one move) and
    `study_panels`."""
    from PIL import Image

    if source not in SOURCES:
        raise InputError(f"panel source {source!r} is not one of {list(SOURCES)}")
    if source == "top" and stimulus_set is None:
        raise InputError("panels of top stimuli need the stimulus set")
    if not units or lists < 1:
        raise InputError("a study needs at least one unit and one list")
    with replaced_folder(out) as staging:
        (staging / "panels").mkdir()
        order = np.random.default_rng(seed).permutation(len(units))
        rows = []
        for position, index in enumerate(order):
            model_id, layer, pool, unit = units[index]
            paths = _tile_paths(tx, source, model_id, layer, pool, unit, stimulus_set, images)
            if not paths:
                raise InputError(f"no {source} images for {model_id} {layer} {pool} unit {unit}")
            panel = f"{study_id}-{index:05d}.png"
            Image.fromarray(panel_image(paths)).save(staging / "panels" / panel)
            rows.append({"panel": panel, "model_id": model_id, "layer": layer, "pool": pool,
                         "unit": unit, "source": source, "list": position % lists})
        manifest = pl.DataFrame(rows, schema_overrides={"unit": pl.Int32, "list": pl.Int32})
        manifest.sort("list", "panel").write_csv(staging / "manifest.csv")
        tx.write(manifest.with_columns(study_id=pl.lit(study_id))
                 .select(STUDY_PANELS.column_names), STUDY_PANELS)
    return manifest
