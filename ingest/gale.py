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
`uri` the image's entry in `file_names` (when some entries are absolute or leave their
folder: each relative to the folder all of them share). Classes are read one row block at a
time: memory stays bounded by a block whatever the file holds (Gale et al.'s five layers are
≈ 7.5·10⁹ activations).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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
from unitsel.adapters.arrays import block_rows, blocks, open_h5
from unitsel.adapters.labels import image_uris
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


def _file_names(cls: GaleClass) -> list[str]:
    """A class's `file_names` entries as text (undecodable bytes are located)."""
    with open_h5(cls.file) as handle:
        values = np.asarray(handle[cls.group]["file_names"][()]).ravel()
    names = []
    for index, value in enumerate(values):
        try:
            names.append(value.decode() if isinstance(value, bytes) else str(value))
        except UnicodeDecodeError:
            raise InputError(f"file name {bytes(value)!r} is not UTF-8 text", file=cls.file,
                             row=index, column=f"{cls.group.rstrip('/')}/file_names") from None
    return names


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
                # h5py gives names that are not UTF-8 as bytes; a class name must be text.
                undecodable = next((name for name in top if isinstance(name, bytes)), None)
                if undecodable is not None:
                    raise InputError(f"group name {undecodable!r} is not UTF-8 text; class names "
                                     "must be", file=file)
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
    names: list[str] = []
    labels: list[str] = []
    for cls in classes:
        if require_wnids and not WNID.fullmatch(cls.name):
            raise InputError(f"class {cls.name!r} is not a wnid (n + 8 digits)", file=cls.file)
        names += _file_names(cls)
        labels += [cls.name] * cls.n_images
    seen: dict[str, str] = {}
    for name, label in zip(names, labels, strict=True):
        if seen.setdefault(name, label) != label:
            raise InputError(f"image {name!r} is in class {seen[name]!r} and in class {label!r}")
    starts = list(itertools.accumulate((c.n_images for c in classes), initial=0))

    def where(index: int) -> dict[str, Any]:  # stimulus -> its class's file_names entry
        cls = bisect.bisect_right(starts, index) - 1
        return {"file": classes[cls].file, "row": index - starts[cls],
                "column": f"{classes[cls].group.rstrip('/')}/file_names"}

    uris = image_uris(names, where)
    return pl.DataFrame({
        "stimulus": pl.Series(range(len(uris)), dtype=pl.Int32), "uri": uris, "label": labels,
        "wnid": [label if WNID.fullmatch(label) else None for label in labels],
    }, schema_overrides={"wnid": pl.String})


def class_blocks(classes: Sequence[GaleClass]
                 ) -> Iterator[tuple[GaleClass, int, int, np.ndarray]]:
    """(class, first row in its dataset, first stimulus, block) over every class in stimulus
    order, a row block at a time."""
    import h5py

    first = 0
    for cls in classes:
        with h5py.File(cls.file, "r") as handle:
            for start, block in blocks(handle[cls.group]["activations"], cls.file):
                yield cls, start, first + start, block
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
    total = sum(-(-c.n_images // block_rows(n_units)) for c in classes)
    for cls, start, first, block in tqdm(class_blocks(classes), total=total, desc=layer,
                                         unit="block", disable=not tx.progress):
        sink(layer, pool, first, block, source=cls.file, row=start)
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
