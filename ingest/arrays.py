"""`unitsel ingest arrays`: a stimuli x units array (.npy / .npz / .h5) and a labels CSV."""

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
from unitsel.adapters import arrays
from unitsel.adapters.labels import read_labels
from unitsel.adapters.torch_model import LayerInfo
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option


def ingest_arrays(
    tx: Transaction, acts: Path, labels_file: Path, *, model_id: str, stimulus_set: str,
    layer: str, dataset: str | None = None, pool: str = "none", state: str | None = None,
    architecture: str | None = None, replace_stimuli: bool = False,
) -> str:
    """Write one layer's activations, the stimuli and (with `is_correct`) correctness.

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
    with arrays.open_array(acts, dataset) as array:
        if array.shape[0] != labels.height:
            raise InputError(f"{array.shape[0]} rows (stimuli) but {labels_file} labels "
                             f"{labels.height} stimuli", file=acts)
        stage_stimuli(tx, stimulus_set, labels, labels_file, replace_stimuli)
        stage_model(tx, model_id, architecture=architecture or "unknown",
                    state=state or "trained", weights_sha256=None, preprocessing="{}",
                    source=str(Path(acts).resolve()), if_new=True)
        n_units = int(array.shape[1])
        stage_layers(tx, model_id, [LayerInfo(layer, pool, "array", n_units, (n_units,))],
                     ordered=False)
        if labels["is_correct"].null_count() == 0:
            stage_predictions(tx, model_id, stimulus_set, labels,
                              [None] * labels.height, labels["is_correct"])
        sink = ActivationSink(tx, model_id, stimulus_set, acts, labels.height)
        total = -(-array.shape[0] // arrays.block_rows(int(array.shape[1])))
        for start, block in tqdm(arrays.blocks(array, acts), total=total, desc=layer,
                                 unit="block", disable=not tx.progress):
            sink(layer, pool, start, block)
    return summary_line(tx)


@click.command("arrays")
@click.argument("acts", type=click.Path(path_type=Path))
@click.option("--labels", "labels_file", required=True, type=click.Path(path_type=Path),
              help="CSV with columns stimulus,label (optional wnid, uri, is_correct).")
@click.option("--model-id", type=NAME, required=True, help="Model identifier, e.g. alexnet-caffe.")
@click.option("--stimulus-set", type=NAME, required=True, help="Stimulus set identifier.")
@click.option("--layer", type=NAME, required=True, help="Layer name, e.g. fc6.")
@click.option("--dataset", default=None, help="Dataset name inside an .npz or .h5 file.")
@click.option("--pool", default="none", show_default=True,
              type=click.Choice(["none", "mean", "max", "l2"]))
@click.option("--state", type=NAME, default=None,
              help="Model state when the model is new: trained (default), untrained or a "
                   "checkpoint.")
@click.option("--architecture", type=NAME, default=None,
              help="When the model is new (default: unknown).")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def arrays_command(acts: Path, labels_file: Path, model_id: str, stimulus_set: str, layer: str,
                   dataset: str | None, pool: str, state: str | None,
                   architecture: str | None,
                   replace_stimuli: bool, root: Path) -> None:
    """Import a stimuli x units activation array (.npy, .npz or .h5) for one layer."""
    with job(root) as tx:
        summary = ingest_arrays(tx, acts, labels_file, model_id=model_id,
                                stimulus_set=stimulus_set, layer=layer, dataset=dataset,
                                pool=pool, state=state, architecture=architecture,
                                replace_stimuli=replace_stimuli)
    click.echo(summary)
