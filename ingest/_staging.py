"""What the activation jobs share: staging stimuli, model provenance, layers, predictions."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from unitsel import Transaction, lake
from unitsel.adapters.matrix import long_frame
from unitsel.adapters.torch_model import LayerInfo
from unitsel.errors import InputError

STIMULUS_COLUMNS = ["stimulus", "uri", "label", "wnid"]


def stage_stimuli(tx: Transaction, stimulus_set: str, labels: pl.DataFrame, source: object,
                  replace: bool = False) -> None:
    """Stage the stimulus set, refusing to silently change one that already exists: other
    models' activations refer to its stimulus ids. An identical set is not rewritten, so the
    summaries of the models already recorded on it stay as they are."""
    frame = labels.select(STIMULUS_COLUMNS)
    existing = tx.read_partition("stimuli", {"stimulus_set": stimulus_set})
    if existing is not None:
        if existing.select(STIMULUS_COLUMNS).sort("stimulus").equals(frame):
            return
        if not replace:
            raise InputError(
                f"stimulus set {stimulus_set!r} already exists with different stimuli or "
                "labels; choose another --stimulus-set or pass --replace-stimuli",
                file=source,
            )
    tx.write(frame.with_columns(stimulus_set=pl.lit(stimulus_set)), "stimuli", source)


def stage_model(tx: Transaction, model_id: str, *, architecture: str, state: str,
                weights_sha256: str | None, preprocessing: str, source: str,
                if_new: bool = False) -> None:
    """Stage the model's provenance; with `if_new` only for a model the warehouse lacks, so
    importing a layer never erases what an earlier torch ingest recorded."""
    if if_new and tx.read_partition("models", {"model_id": model_id}) is not None:
        return
    tx.write(pl.DataFrame({
        "model_id": [model_id], "architecture": [architecture], "state": [state],
        "weights_sha256": [weights_sha256], "preprocessing": [preprocessing], "source": [source],
    }), "models")


def stage_layers(tx: Transaction, model_id: str, infos: Iterable[LayerInfo],
                 ordered: bool = True) -> None:
    """The `layers` rows; `ordered` when `infos` come in the network's forward order (a
    torch recording), which becomes each layer's `position`."""
    infos = list(infos)
    order = {layer: i for i, layer in enumerate(dict.fromkeys(i.layer for i in infos))}
    tx.write(pl.DataFrame({
        "model_id": [model_id] * len(infos),
        "layer": [i.layer for i in infos],
        "pool": [i.pool for i in infos],
        "kind": [i.kind for i in infos],
        "n_units": [i.n_units for i in infos],
        "shape": [list(i.shape) for i in infos],
        "position": pl.Series([order[i.layer] if ordered else None for i in infos],
                              dtype=pl.Int32),
    }), "layers")


def stage_predictions(tx: Transaction, model_id: str, stimulus_set: str, labels: pl.DataFrame,
                      predicted: list[str | None], is_correct: Iterable[bool]) -> None:
    """Stage the model's predictions on the set, unless they are already exactly these (then
    the summaries derived from them stay as they are)."""
    frame = pl.DataFrame({
        "stimulus": labels["stimulus"], "predicted_label": pl.Series(predicted, dtype=pl.String),
        "is_correct": pl.Series(list(is_correct), dtype=pl.Boolean),
    })
    existing = tx.read_partition("predictions",
                                 {"model_id": model_id, "stimulus_set": stimulus_set})
    if existing is not None and existing.sort("stimulus").equals(
            frame.cast(existing.schema).sort("stimulus")):
        return
    tx.write(frame.with_columns(model_id=pl.lit(model_id), stimulus_set=pl.lit(stimulus_set)),
             "predictions")


class ActivationSink:
    """Streams (layer, pool, first stimulus, stimuli x units block) into activations
    partitions, each split into data files of whole units (at most `file_rows` rows, default
    `unitsel.lake.DATA_FILE_ROWS`)."""

    def __init__(self, tx: Transaction, model_id: str, stimulus_set: str, source: object,
                 n_stimuli: int, file_rows: int | None = None):
        self.tx, self.model_id, self.stimulus_set, self.source = tx, model_id, stimulus_set, source
        rows = lake.DATA_FILE_ROWS if file_rows is None else file_rows
        self.units_per_file = max(1, rows // max(1, n_stimuli))

    def __call__(self, layer: str, pool: str, first: int, block: np.ndarray,
                 source: object = None, row: int | None = None) -> None:
        """`source` and `row`: the file the block was read from and its first row there, for
        errors, when the stimuli come from several files (default: the sink's source, the
        stimulus number)."""
        keys = {"model_id": self.model_id, "stimulus_set": self.stimulus_set,
                "layer": layer, "pool": pool}
        source = self.source if source is None else source
        stimuli = np.arange(first, first + block.shape[0], dtype=np.int32)
        for index, start in enumerate(range(0, block.shape[1], self.units_per_file)):
            units = np.ascontiguousarray(block[:, start:start + self.units_per_file],
                                         dtype=np.float32)
            # The matrix goes along: the commit summarises the file from it (`held`).
            self.tx.write_partition("activations", keys,
                                    long_frame(units, first, source, start, first_row=row),
                                    source, block=index, held=(stimuli, start, units))


def summary_line(tx: Transaction) -> str:
    counts = ", ".join(f"{n:,} {t}" for t, n in tx.rows_written.items())
    return f"wrote {counts} rows to {tx.root}"
