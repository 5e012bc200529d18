"""`unitsel ingest thingsvision`: one module's features, in a folder as thingsvision writes them.

Every layout of thingsvision's `save_features` is read (`unitsel.adapters.thingsvision_files`:
`.npy`, `.pt`, `.hdf5`, `.mat`, `.txt`, whole or in splits), a part at a time and a row block
at a time, so memory stays bounded by a block (a `.mat` variable or a `.txt` block is read
whole). Features of more than two dimensions are flattened per image (C-order, as
`flatten_acts=True` would have) or, with `--pools mean,max,l2`, images x channels x height x
width features are pooled per channel as the torch ingest pools them. Labels come from each
image's folder name (the usual `class/xxx.jpg` layout, paths absolute or relative) or from a
labels CSV keyed by file name (`file_name,label[,wnid]`). Stimuli are numbered in file order;
`uri` is the file name as listed, or, when some are absolute or leave their folder, each
relative to the folder all of them share.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import click
import numpy as np
import polars as pl
from tqdm import tqdm

from ingest._staging import (
    ActivationSink,
    stage_layers,
    stage_model,
    stage_stimuli,
    summary_line,
)
from ingest.gale import WNID
from unitsel import Transaction
from unitsel.adapters import arrays, thingsvision_files
from unitsel.adapters.labels import check_columns, image_uris, read_text
from unitsel.adapters.thingsvision_files import Part
from unitsel.adapters.torch_model import KERNEL_POOLS, LayerInfo, pooled
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option


def labels_frame(folder: Path, labels_file: Path | None, listed: list[tuple[int, str]],
                 n_rows: int) -> pl.DataFrame:
    """Stimuli in file order from `file_names.txt`'s (line, path) pairs, labelled by folder
    or by the CSV."""
    names_file = folder / "file_names.txt"
    names = [name for _, name in listed]
    if len(names) != n_rows:
        raise InputError(f"{len(names)} file names for {n_rows} feature rows", file=names_file)

    def where(index: int) -> dict[str, Any]:
        return {"file": names_file, "row": listed[index][0]}

    if labels_file is None:
        # thingsvision joins paths with os.path.join: backslashes when run on Windows
        labels = [PurePosixPath(name.replace("\\", "/")).parent.name for name in names]
        empty = next((i for i, label in enumerate(labels) if not label), None)
        if empty is not None:
            raise InputError(f"{names[empty]!r} is in no class folder; give --labels",
                             **where(empty))
        wnids = [label if WNID.fullmatch(label) else None for label in labels]
    else:
        by_name = _csv_labels(labels_file)
        missing = next((i for i, name in enumerate(names) if name not in by_name), None)
        if missing is not None:
            raise InputError(f"no label for {names[missing]!r} (file_names.txt line "
                             f"{listed[missing][0]})", file=labels_file, column="file_name")
        labels = [by_name[name][0] for name in names]
        wnids = [by_name[name][1] for name in names]
    uris = image_uris(names, where)
    return pl.DataFrame({"stimulus": pl.Series(range(len(names)), dtype=pl.Int32),
                         "uri": uris, "label": labels, "wnid": wnids},
                        schema_overrides={"wnid": pl.String})


def _csv_labels(path: Path) -> dict[str, tuple[str, str | None]]:
    """(label, wnid) by file name from a `file_name,label[,wnid]` CSV; rows are named as in
    the file (the header is row 1)."""
    try:
        table = pl.read_csv(read_text(path).encode(), infer_schema=False)
    except pl.exceptions.PolarsError as error:
        raise InputError(f"not CSV: {error}", file=path) from None
    check_columns(table.columns, ["file_name", "label"], ["wnid"], path)
    for column in ("file_name", "label"):
        empty = table[column].fill_null("").str.strip_chars() == ""
        if empty.any():
            raise InputError(f"empty {column}", file=path, row=int(empty.arg_true()[0]) + 2,
                             column=column)
    wnids = table["wnid"] if "wnid" in table.columns else [None] * table.height
    rows: dict[str, int] = {}
    by_name: dict[str, tuple[str, str | None]] = {}
    for index, (name, label, wnid) in enumerate(zip(table["file_name"], table["label"], wnids,
                                                    strict=True)):
        first = rows.setdefault(name, index)
        if by_name.setdefault(name, (label, wnid or None)) != (label, wnid or None):
            # two labellings of one image: neither may silently win
            raise InputError(f"{name!r} is also on row {first + 2}, labelled otherwise",
                             file=path, row=index + 2, column="file_name")
    return by_name


def ingest_thingsvision(tx: Transaction, folder: Path, *, model_id: str, stimulus_set: str,
                        layer: str, labels_file: Path | None = None,
                        pools: Sequence[str] = ("none",), replace_stimuli: bool = False) -> str:
    """Check the folder, then write the layer's activations (at each of `pools`), the stimuli
    and (for a new model) its provenance, as one commit."""
    listed = thingsvision_files.file_names(folder)
    parts = thingsvision_files.find_parts(folder, listed)
    item_shape = parts[0].item_shape
    _check_pools(pools, parts[0])
    labels = labels_frame(folder, labels_file, listed, sum(p.rows for p in parts))
    stage_stimuli(tx, stimulus_set, labels, folder / "file_names.txt", replace_stimuli)
    stage_model(tx, model_id, architecture="unknown (thingsvision)", state="trained",
                weights_sha256=None, preprocessing="{}", source=str(folder.resolve()),
                if_new=True)
    sink = ActivationSink(tx, model_id, stimulus_set, folder, labels.height)
    first = 0
    for part in tqdm(parts, desc=layer, unit="part", disable=not tx.progress):
        with thingsvision_files.open_part(part) as array:
            for start, block in arrays.blocks(array, str(part)):
                for pool, matrix in _pooled(block, item_shape, pools):
                    sink(layer, pool, first + start, matrix, source=str(part), row=start)
        first += part.rows
    stage_layers(tx, model_id, [
        LayerInfo(layer, pool, "thingsvision", int(np.prod(shape)), shape)
        for pool in pools for shape in [item_shape if pool == "none" else item_shape[:1]]
    ], ordered=False)
    return summary_line(tx)


def _check_pools(pools: Sequence[str], part: Part) -> None:
    unknown = sorted(set(pools) - {"none", *KERNEL_POOLS})
    if unknown or not pools:
        raise InputError(f"unknown pools {unknown}; use none, mean, max, l2 (comma-separated)",
                         column="--pools")
    if set(pools) != {"none"} and len(part.item_shape) != 3:
        raise InputError(f"does not apply: {thingsvision_files.shape_text(part.item_shape)} "
                         "features per image; pooling needs channels x height x width",
                         file=part, column="--pools")


def _pooled(block: np.ndarray, item_shape: tuple[int, ...], pools: Sequence[str]
            ) -> list[tuple[str, np.ndarray]]:
    """The (pool, images x units) matrices of a block of flattened features: the torch
    ingest's pooling (`torch_model.pooled`) on the block seen as images x channels x h x w."""
    if list(pools) == ["none"]:
        return [("none", block)]
    import torch

    maps = torch.from_numpy(np.asarray(block, np.float32).reshape(len(block), *item_shape))
    return [(pool, matrix.numpy()) for pool, matrix in pooled(maps, pools)]


@click.command("thingsvision")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True)
@click.option("--layer", type=NAME, required=True, help="The module the features came from.")
@click.option("--labels", "labels_file", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with file_name,label[,wnid]; default: each image's folder name.")
@click.option("--pools", default="none", show_default=True,
              help="Comma-separated: none (one unit per element) and/or mean, max, l2 (one "
                   "unit per channel of images x channels x height x width features).")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def thingsvision_command(folder: Path, model_id: str, stimulus_set: str, layer: str,
                         labels_file: Path | None, pools: str, replace_stimuli: bool,
                         root: Path) -> None:
    """Import a thingsvision features folder (save_features' .npy/.pt/.hdf5/.mat/.txt, whole
    or split, + file_names.txt)."""
    with job(root) as tx:
        summary = ingest_thingsvision(tx, folder, model_id=model_id,
                                      stimulus_set=stimulus_set, layer=layer,
                                      labels_file=labels_file,
                                      pools=list(dict.fromkeys(p.strip()
                                                               for p in pools.split(","))),
                                      replace_stimuli=replace_stimuli)
    click.echo(summary)
