"""`unitsel ingest thingsvision`: a folder of features as thingsvision writes them.

thingsvision saves one module's features as `features.npy`, `features.h5` (dataset
`features`) or `features.pt`, or in chunks `features_00.npy`, `features_01.npy` … (read in
their numeric order), beside `file_names.txt`: the images' paths, one per line, in the
features' row order. Features of more than two dimensions are flattened per image (C-order,
as `flatten_acts=True` would have). Labels come from each image's folder name (the usual
`class/xxx.jpg` layout) or from a labels CSV keyed by file name (`file_name,label[,wnid]`).
Stimuli are numbered in file order; `uri` is the file name as listed, or, when some are
absolute or leave their folder, each relative to the folder all of them share. Chunks are
read one at a time, `.npy` and `.h5` a row block at a time, so memory stays bounded; a `.pt`
file is one tensor and is loaded whole.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
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
from unitsel.adapters import arrays
from unitsel.adapters.labels import check_columns, image_uris, read_text
from unitsel.adapters.torch_model import LayerInfo
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option

CHUNK = re.compile(r"features_(\d+)\.npy")


def feature_files(folder: Path) -> list[Path]:
    """The features file, or the chunks in numeric order."""
    numbered = {p: int(m[1]) for p in folder.glob("features_*.npy")
                if (m := CHUNK.fullmatch(p.name))}
    chunks = sorted(numbered, key=numbered.__getitem__)
    single = [folder / f"features.{ext}" for ext in ("npy", "h5", "pt")
              if (folder / f"features.{ext}").is_file()]
    if len(single) + bool(chunks) != 1:
        raise InputError("expected one of features.npy, features.h5, features.pt or chunks "
                         f"features_00.npy …; found {[p.name for p in single + chunks] or 'none'}",
                         file=folder)
    return single or chunks


def _rows(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) of one features file, flattened to images x features."""
    if path.suffix == ".pt":
        import torch

        try:
            tensor = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as error:
            raise InputError(f"cannot read: {error}", file=path) from None
        if not isinstance(tensor, torch.Tensor) or tensor.ndim == 0:
            # e.g. a dict of several modules' features: which one is meant is not ours to guess
            held = (f"a {type(tensor).__name__}" if not isinstance(tensor, torch.Tensor)
                    else f"a tensor of shape {tuple(tensor.shape)}")
            keys = f" with keys {list(tensor)[:5]}" if isinstance(tensor, dict) else ""
            raise InputError(f"holds {held}{keys}; expected one tensor of images x features "
                             "(save that module's features alone)", file=path)
        yield 0, tensor.detach().numpy().reshape(len(tensor), -1)
        return
    with arrays.open_array(path, "features" if path.suffix == ".h5" else None,
                           flatten=True) as array:
        yield from arrays.blocks(array, path)


def _count(path: Path) -> int:
    if path.suffix == ".pt":
        return sum(len(block) for _, block in _rows(path))
    with arrays.open_array(path, "features" if path.suffix == ".h5" else None,
                           flatten=True) as array:
        return int(array.shape[0])


def labels_frame(folder: Path, labels_file: Path | None, n_rows: int) -> pl.DataFrame:
    """Stimuli in file order from `file_names.txt`, labelled by folder or by the CSV."""
    names_file = folder / "file_names.txt"
    # (line, path) of each listed path: blank lines are skipped, errors name the file's line.
    listed = [(line, text.strip()) for line, text in
              enumerate(read_text(names_file).splitlines(), start=1) if text.strip()]
    names = [name for _, name in listed]
    if len(names) != n_rows:
        raise InputError(f"{len(names)} file names for {n_rows} feature rows", file=names_file)

    def where(index: int) -> dict[str, Any]:
        return {"file": names_file, "row": listed[index][0]}

    if labels_file is None:
        labels = [PurePosixPath(name).parent.name for name in names]
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
                        replace_stimuli: bool = False) -> str:
    """Check the folder, then write the layer's activations, the stimuli and (for a new
    model) its provenance, as one commit."""
    files = feature_files(folder)
    counts = [_count(f) for f in files]
    labels = labels_frame(folder, labels_file, sum(counts))
    widths = set()
    stage_stimuli(tx, stimulus_set, labels, folder / "file_names.txt", replace_stimuli)
    stage_model(tx, model_id, architecture="unknown (thingsvision)", state="trained",
                weights_sha256=None, preprocessing="{}", source=str(folder.resolve()),
                if_new=True)
    sink = ActivationSink(tx, model_id, stimulus_set, folder, labels.height)
    first = 0
    for path, count in tqdm(list(zip(files, counts, strict=True)), desc=layer, unit="file",
                            disable=not tx.progress):
        for start, block in _rows(path):
            widths.add(block.shape[1])
            if len(widths) > 1:
                raise InputError(f"{block.shape[1]} features per image where earlier "
                                 f"files have {min(widths - {block.shape[1]})}", file=path)
            sink(layer, "none", first + start, block, source=path, row=start)
        first += count
    n_units = widths.pop()
    stage_layers(tx, model_id, [LayerInfo(layer, "none", "thingsvision", n_units, (n_units,))],
                 ordered=False)
    return summary_line(tx)


@click.command("thingsvision")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--model-id", type=NAME, required=True)
@click.option("--stimulus-set", type=NAME, required=True)
@click.option("--layer", type=NAME, required=True, help="The module the features came from.")
@click.option("--labels", "labels_file", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="CSV with file_name,label[,wnid]; default: each image's folder name.")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def thingsvision_command(folder: Path, model_id: str, stimulus_set: str, layer: str,
                         labels_file: Path | None, replace_stimuli: bool, root: Path) -> None:
    """Import a thingsvision features folder (features.npy/.h5/.pt or chunks + file_names.txt)."""
    with job(root) as tx:
        summary = ingest_thingsvision(tx, folder, model_id=model_id,
                                      stimulus_set=stimulus_set, layer=layer,
                                      labels_file=labels_file,
                                      replace_stimuli=replace_stimuli)
    click.echo(summary)
