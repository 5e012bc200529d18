"""`unitsel ingest arrays`: a stimuli x units array and a labels CSV.

The array: `.npy`, `.npz`, HDF5, `.safetensors` (a tensor, or every tensor as a layer of its
name: the sparse-autoencoder and Hugging Face world's format), a Zarr array (v2 or v3, read
chunk by chunk), a torch `.pt` tensor, a `.mat` variable or `np.savetxt` text.
"""

from __future__ import annotations

from pathlib import Path

import click
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
from unitsel.adapters import array_formats, arrays
from unitsel.adapters.labels import read_labels
from unitsel.adapters.torch_model import LayerInfo
from unitsel.errors import InputError
from unitsel.names import problem
from unitsel.options import NAME, job, root_option


def ingest_arrays(
    tx: Transaction, acts: Path, labels_file: Path, *, model_id: str, stimulus_set: str,
    layer: str | None, dataset: str | None = None, tensor: str | None = None,
    all_tensors: bool = False, pool: str = "none", state: str | None = None,
    architecture: str | None = None, replace_stimuli: bool = False,
) -> str:
    """Write one layer's activations (with `all_tensors`, one layer per tensor of a
    `.safetensors` file, named by it), the stimuli and (with `is_correct`) correctness.

    The models row is written only when the model is new (`state` default trained,
    `architecture` default unknown), so importing a layer never erases provenance an earlier
    torch ingest recorded; a `state` or `architecture` that contradicts it is refused rather
    than ignored. Returns a one-line summary.
    """
    labels = read_labels(labels_file)
    model = tx.read_partition("models", {"model_id": model_id})
    for column, value in (("state", state), ("architecture", architecture)):
        if model is not None and value is not None and value != model[column][0]:
            raise InputError(f"does not apply: model {model_id!r} is already recorded with "
                             f"{column} {model[column][0]!r} (the option describes a new model)",
                             column=f"--{column}")
    members = _members(acts, layer, dataset, tensor, all_tensors)
    widths: dict[str, int] = {}
    for name, (member, source) in members.items():  # every member checked before any is read
        with arrays.open_array(acts, member) as array:
            if array.shape[0] != labels.height:
                raise InputError(f"{array.shape[0]} rows (stimuli) but {labels_file} labels "
                                 f"{labels.height} stimuli", file=source)
            widths[name] = int(array.shape[1])
    stage_stimuli(tx, stimulus_set, labels, labels_file, replace_stimuli)
    stage_model(tx, model_id, architecture=architecture or "unknown",
                state=state or "trained", weights_sha256=None, preprocessing="{}",
                source=str(Path(acts).resolve()), if_new=True)
    stage_layers(tx, model_id, [LayerInfo(name, pool, "array", n, (n,))
                                for name, n in widths.items()], ordered=False)
    if labels["is_correct"].null_count() == 0:
        stage_predictions(tx, model_id, stimulus_set, labels,
                          [None] * labels.height, labels["is_correct"])
    sink = ActivationSink(tx, model_id, stimulus_set, acts, labels.height)
    for name, (member, source) in members.items():
        with arrays.open_array(acts, member) as array:
            total = -(-array.shape[0] // arrays.rows_per_block(array))
            for start, block in tqdm(arrays.blocks(array, source), total=total, desc=name,
                                     unit="block", disable=not tx.progress):
                sink(name, pool, start, block, source=source)
    return summary_line(tx)


def _members(acts: Path, layer: str | None, dataset: str | None, tensor: str | None,
             all_tensors: bool) -> dict[str, tuple[str | None, str | Path]]:
    """{layer: (the member of the file to read, where errors say it is)}."""
    is_safetensors = acts.suffix.lower() == ".safetensors"
    if (tensor is not None or all_tensors) and not is_safetensors:
        raise InputError("does not apply: only a .safetensors file holds named tensors "
                         "(name another file's member with --dataset)", file=acts,
                         column="--all-tensors" if all_tensors else "--tensor")
    if dataset is not None and is_safetensors:
        raise InputError("does not apply: name a tensor with --tensor", file=acts,
                         column="--dataset")
    if not all_tensors:
        if layer is None:
            raise InputError("missing: name the layer (or, for a .safetensors file, "
                             "--all-tensors: a layer per tensor)", column="--layer")
        return {layer: (tensor if is_safetensors else dataset, acts)}
    if layer is not None or tensor is not None:
        raise InputError("does not apply: with --all-tensors each tensor is the layer of its "
                         "name", column="--layer" if layer is not None else "--tensor")
    with array_formats.safetensors_tensors(acts) as tensors:
        names = list(tensors)
    for name in names:  # a tensor name becomes a layer name: a partition value
        why = problem(name)
        if why:
            raise InputError(f"tensor name {name!r} cannot be a layer name: {why}", file=acts,
                             column="--all-tensors")
    return {name: (name, f"{acts}[{name}]") for name in names}


@click.command("arrays")
@click.argument("acts", type=click.Path(path_type=Path))
@click.option("--labels", "labels_file", required=True, type=click.Path(path_type=Path),
              help="CSV with columns stimulus,label (optional wnid, uri, is_correct).")
@click.option("--model-id", type=NAME, required=True, help="Model identifier, e.g. alexnet-caffe.")
@click.option("--stimulus-set", type=NAME, required=True, help="Stimulus set identifier.")
@click.option("--layer", type=NAME, default=None,
              help="Layer name, e.g. fc6 (required unless --all-tensors).")
@click.option("--dataset", default=None,
              help="The array inside an .npz, .h5, .mat file or Zarr group that holds several.")
@click.option("--tensor", default=None,
              help="The tensor of a .safetensors file that holds several.")
@click.option("--all-tensors", is_flag=True,
              help="Every tensor of a .safetensors file, each the layer of its name.")
@click.option("--pool", default="none", show_default=True,
              type=click.Choice(["none", "mean", "max", "l2"]))
@click.option("--state", type=NAME, default=None,
              help="Model state when the model is new: trained (default), untrained or a "
                   "checkpoint.")
@click.option("--architecture", type=NAME, default=None,
              help="When the model is new (default: unknown).")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def arrays_command(acts: Path, labels_file: Path, model_id: str, stimulus_set: str,
                   layer: str | None, dataset: str | None, tensor: str | None,
                   all_tensors: bool, pool: str, state: str | None, architecture: str | None,
                   replace_stimuli: bool, root: Path) -> None:
    """Import a stimuli x units activation array (.npy, .npz, .h5, .safetensors, Zarr, .pt,
    .mat or .txt) for one layer, or every tensor of a .safetensors file."""
    with job(root) as tx:
        summary = ingest_arrays(tx, acts, labels_file, model_id=model_id,
                                stimulus_set=stimulus_set, layer=layer, dataset=dataset,
                                tensor=tensor, all_tensors=all_tensors, pool=pool, state=state,
                                architecture=architecture, replace_stimuli=replace_stimuli)
    click.echo(summary)
