"""`unitsel ingest gale-h5`: activations as Gale et al. released them (HDF5, one group per class).

Their code (`merger.py`, `kmeans/activation_table.py` in ellagale/testing_object_detectors_in_
deepCNNs) writes, per layer, either

- **per-class files** `n<wnid>_<layer>.h5`, each holding the datasets `activations` (images x
  neurons; attributes `image_count`, `neuron_count`), `labels`, `label_mappings`, `file_names`
  and a group `activation_labels`;
- a **merged file** (`AN_merged_all_<layer>.h5` …): one group per class, named by the class
  (the wnid before the first `_` of the per-class file name), each holding those datasets;
- a **normalised merged file**: the same groups under `values/`, beside `normalisation_min`
  and `normalisation_max`.

Every image in them was classified correctly (that is how the sets were built), so the
predictions record `is_correct` true and the `correct` subset equals `all`, as in the paper.
Stimuli are numbered class by class in class-name order, then in file order within a class;
`label` and `wnid` are the class name (the wnid, required to look like one with `--wnids`),
`uri` the image's entry in `file_names` (its base name when the entry is an absolute path or
leaves its folder). Classes are read one row block at a time: memory stays bounded by a block
whatever the file holds (Gale et al.'s five layers are ≈ 7.5·10⁹ activations).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
    stage_predictions,
    stage_stimuli,
    summary_line,
)
from unitsel import Transaction
from unitsel.adapters.arrays import BLOCK_ROWS, blocks, open_h5
from unitsel.adapters.labels import uri_problem
from unitsel.adapters.torch_model import LayerInfo
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option

WNID = re.compile(r"n\d{8}")
NORMALISED = "values"


@dataclass(frozen=True)
class GaleClass:
    """One class's group: its name, file and the HDF5 path of the group holding its data."""

    name: str
    file: Path
    group: str
    n_images: int
    n_neurons: int


def _text(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def find_classes(files: Sequence[Path]) -> list[GaleClass]:
    """Every class group of the files, checked, in class-name order."""
    import h5py

    found: list[GaleClass] = []
    for file in files:
        with open_h5(file) as handle:
            if "activations" in handle:  # a per-class file
                groups = {Path(file).name.split("_")[0]: "/"}
            else:
                top = handle.get(NORMALISED, handle)
                prefix = f"/{NORMALISED}/" if NORMALISED in handle else "/"
                groups = {name: prefix + name for name in sorted(top)
                          if isinstance(top[name], h5py.Group)}
            if not groups:
                raise InputError("no class groups and no 'activations' dataset: not one of "
                                 "Gale et al.'s layouts", file=file)
            for name, group in groups.items():
                found.append(_checked(handle, file, name, group))
    found.sort(key=lambda c: c.name)
    names = [c.name for c in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"class {repeated[0]!r} appears in more than one group or file")
    widths = {c.n_neurons for c in found}
    if len(widths) > 1:
        odd = next(c for c in found if c.n_neurons != found[0].n_neurons)
        raise InputError(f"class {odd.name!r} has {odd.n_neurons} neurons but class "
                         f"{found[0].name!r} has {found[0].n_neurons}", file=odd.file,
                         column=f"{odd.group.rstrip('/')}/activations")
    return found


def _checked(handle: Any, file: Path, name: str, group: str) -> GaleClass:
    data = handle[group]
    for dataset in ("activations", "file_names"):
        if dataset not in data:
            raise InputError(f"class {name!r} has no dataset {dataset!r}", file=file,
                             column=f"{group.rstrip('/')}/{dataset}")
    acts = data["activations"]
    if len(acts.shape) != 2 or np.dtype(acts.dtype).kind not in "biuf":
        raise InputError(f"class {name!r}: activations must be images x neurons numbers, got "
                         f"shape {acts.shape} {acts.dtype}", file=file)
    n_images, n_neurons = (int(n) for n in acts.shape)
    for attribute, value in (("image_count", n_images), ("neuron_count", n_neurons)):
        if attribute in acts.attrs and int(acts.attrs[attribute]) != value:
            raise InputError(f"class {name!r}: {attribute} says {int(acts.attrs[attribute])} "
                             f"but the activations have {value}", file=file,
                             column=f"{group.rstrip('/')}/activations")
    if len(data["file_names"]) != n_images:
        raise InputError(f"class {name!r} has {len(data['file_names'])} file names for "
                         f"{n_images} images", file=file,
                         column=f"{group.rstrip('/')}/file_names")
    return GaleClass(name, Path(file), group, n_images, n_neurons)


def labels_frame(classes: Sequence[GaleClass], require_wnids: bool) -> pl.DataFrame:
    """The stimuli: class by class, file order within a class; label = wnid = class name."""
    import h5py

    uris: list[str] = []
    labels: list[str] = []
    for cls in classes:
        if require_wnids and not WNID.fullmatch(cls.name):
            raise InputError(f"class {cls.name!r} is not a wnid (n + 8 digits)", file=cls.file)
        with h5py.File(cls.file, "r") as handle:
            names = _text(handle[cls.group]["file_names"][()])
        uris += [name if uri_problem(name) is None else PurePosixPath(name).name
                 for name in names]
        labels += [cls.name] * cls.n_images
    seen: dict[str, str] = {}
    for uri, label in zip(uris, labels, strict=True):
        if seen.setdefault(uri, label) != label:
            raise InputError(f"image {uri!r} is in class {seen[uri]!r} and in class {label!r}")
    return pl.DataFrame({
        "stimulus": pl.Series(range(len(uris)), dtype=pl.Int32), "uri": uris, "label": labels,
        "wnid": [label if WNID.fullmatch(label) else None for label in labels],
    }, schema_overrides={"wnid": pl.String})


def class_blocks(classes: Sequence[GaleClass]) -> Iterator[tuple[int, np.ndarray]]:
    """(first stimulus, block) over every class in stimulus order, a row block at a time."""
    import h5py

    first = 0
    for cls in classes:
        with h5py.File(cls.file, "r") as handle:
            for start, block in blocks(handle[cls.group]["activations"], cls.file):
                yield first + start, block
        first += cls.n_images


def ingest_gale(tx: Transaction, files: Sequence[Path], *, model_id: str, stimulus_set: str,
                layer: str, pool: str = "none", require_wnids: bool = False,
                replace_stimuli: bool = False) -> str:
    """Check every class of the files, then write the layer's activations, the stimuli, the
    (all correct) predictions and, for a new model, its provenance, as one commit."""
    classes = find_classes(files)
    labels = labels_frame(classes, require_wnids)
    n_units = classes[0].n_neurons
    stage_stimuli(tx, stimulus_set, labels, files[0], replace_stimuli)
    stage_model(tx, model_id, architecture="unknown (Gale et al. HDF5)", state="trained",
                weights_sha256=None, preprocessing="{}", if_new=True,
                source=", ".join(str(Path(f).resolve()) for f in files))
    stage_layers(tx, model_id, [LayerInfo(layer, pool, "gale-h5", n_units, (n_units,))],
                 ordered=False)
    stage_predictions(tx, model_id, stimulus_set, labels, labels["label"].to_list(),
                      [True] * labels.height)
    sink = ActivationSink(tx, model_id, stimulus_set, files[0], labels.height)
    total = sum(-(-c.n_images // BLOCK_ROWS) for c in classes)
    for first, block in tqdm(class_blocks(classes), total=total, desc=layer, unit="block",
                             disable=not tx.progress):
        sink(layer, pool, first, block)
    return summary_line(tx)


@click.command("gale-h5")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model-id", type=NAME, required=True, help="e.g. alexnet-caffe.")
@click.option("--stimulus-set", type=NAME, required=True, help="e.g. imagenet2012-correct.")
@click.option("--layer", type=NAME, required=True, help="e.g. fc6.")
@click.option("--pool", default="none", show_default=True,
              type=click.Choice(["none", "mean", "max", "l2"]))
@click.option("--wnids", "require_wnids", is_flag=True,
              help="Require every class name to be a wnid (ImageNet).")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def gale_command(files: tuple[Path, ...], model_id: str, stimulus_set: str, layer: str,
                 pool: str, require_wnids: bool, replace_stimuli: bool, root: Path) -> None:
    """Import Gale et al.'s per-class, merged or normalised-merged HDF5 activations."""
    with job(root) as tx:
        summary = ingest_gale(tx, files, model_id=model_id, stimulus_set=stimulus_set,
                              layer=layer, pool=pool, require_wnids=require_wnids,
                              replace_stimuli=replace_stimuli)
    click.echo(summary)
