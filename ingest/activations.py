"""`unitsel ingest activations`: run a torch model over a stimulus set and record every layer."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
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
from unitsel import Transaction, lake
from unitsel.adapters import images
from unitsel.adapters.labels import read_labels
from unitsel.adapters.torch_model import (
    KERNEL_POOLS,
    LayerInfo,
    load_model,
    record,
    weights_sha256,
)
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option, settings

if TYPE_CHECKING:
    import torch
    from torch import nn

F = TypeVar("F", bound=Callable[..., Any])


def ingest_model(
    tx: Transaction,
    model: nn.Module,
    stimuli: torch.Tensor | Iterable[torch.Tensor],
    labels: pl.DataFrame,
    *,
    model_id: str,
    stimulus_set: str,
    architecture: str,
    state: str,
    preprocessing: str,
    source: str,
    class_names: Sequence[str] | None = None,
    layers: Sequence[str] | None = None,
    pools: Sequence[str] = KERNEL_POOLS,
    batch_size: int = 64,
    device: str = "cpu",
    replace_stimuli: bool = False,
) -> str:
    """Record `model` on `stimuli` (a tensor of all inputs, or an iterable of batches in
    stimulus order) and write activations, layers, stimuli, the model's provenance and, when
    `class_names` maps output indices to labels, its predictions. All or nothing."""
    n = labels.height
    batches = iter(stimuli.split(batch_size) if _is_tensor(stimuli) else stimuli)  # type: ignore[union-attr]
    first = next(batches, None)
    if first is None:
        raise InputError("no stimuli to record")
    if tx.progress:
        # One stimulus through the model first: what each layer and pool will write.
        probe = record(model, [first[:1]], lambda *block: None, layers=layers, pools=pools,
                       device=device)
        print(preflight(probe.layers.values(), n), file=sys.stderr, flush=True)
    batches = itertools.chain([first], batches)
    stage_stimuli(tx, stimulus_set, labels, source, replace_stimuli)
    progress_bar = tqdm(batches, total=-(-n // batch_size), desc=model_id, unit="batch",
                        disable=not tx.progress)
    rec = record(model, progress_bar, ActivationSink(tx, model_id, stimulus_set, source, n),
                 layers=layers, pools=pools, device=device)
    if rec.n_stimuli != n:
        raise InputError(f"the model saw {rec.n_stimuli} stimuli but the labels list {n}")
    stage_model(tx, model_id, architecture=architecture, state=state,
                weights_sha256=weights_sha256(model), preprocessing=preprocessing, source=source)
    stage_layers(tx, model_id, rec.layers.values())
    if class_names is not None and rec.top1:
        import numpy as np

        top1 = np.concatenate(rec.top1)
        if top1.max() >= len(class_names):
            raise InputError(f"the model has more outputs than the {len(class_names)} "
                             "class names")
        predicted = [class_names[i] for i in top1]
        stage_predictions(tx, model_id, stimulus_set, labels, predicted,
                          (p == t for p, t in zip(predicted, labels["label"], strict=True)))
    return summary_line(tx)


# Bytes a stored activation row takes in memory on the way in (unit, stimulus, activation
# and their share of the partition keys); on disk it is about half.
ROW_BYTES = 12


def preflight(infos: Iterable[LayerInfo], n_stimuli: int) -> str:
    """The table printed before a forward pass: rows and bytes each layer and pool writes."""
    infos = list(infos)
    lines = [f"{'layer':<28} {'pool':<5} {'units':>10} {'rows':>15} {'size':>9}"]
    total = 0
    for info in infos:
        rows = info.n_units * n_stimuli
        total += rows
        lines.append(f"{info.layer:<28} {info.pool:<5} {info.n_units:>10,} {rows:>15,} "
                     f"{_size(rows * ROW_BYTES):>9}")
    lines.append(f"{'total':<28} {'':<5} {'':>10} {total:>15,} {_size(total * ROW_BYTES):>9}"
                 " (kernel pools by default; --pools none,... for one unit per element)")
    return "\n".join(lines)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024:
            return f"{n_bytes:.0f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} TiB"


def _is_tensor(value: object) -> bool:
    import torch

    return isinstance(value, torch.Tensor)


def read_classes(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise InputError("no class names (one per line, in output order)", file=path)
    return names


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def image_options(command: F) -> F:
    """The options naming an image folder, its labels and the preprocessing."""
    options = [
        click.option("--images", "image_dir", required=True,
                     type=click.Path(exists=True, file_okay=False, path_type=Path)),
        click.option("--labels", "labels_file", required=True, type=click.Path(path_type=Path),
                     help="CSV with stimulus,uri,label (optional wnid); uri relative to --images."),
        click.option("--image-size", default=224, show_default=True),
        click.option("--resize", default=256, show_default=True,
                     help="Short side before the crop."),
        click.option("--mean", default="0.485,0.456,0.406", show_default=True),
        click.option("--std", default="0.229,0.224,0.225", show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def read_image_stimuli(image_dir: Path, labels_file: Path, image_size: int, resize: int,
                       mean: str, std: str) -> tuple[pl.DataFrame, list[Path],
                                                     images.Preprocessing]:
    """The labels, every stimulus' image path (checked) and the preprocessing."""
    labels = read_labels(labels_file)
    paths = images.check_images(image_dir, labels, labels_file)
    return labels, paths, images.Preprocessing(image_size=image_size, resize=resize,
                                               mean=_floats(mean), std=_floats(std))


@click.command("activations")
@click.option("--model-id", type=NAME, required=True,
              help="Model identifier to store, e.g. resnet18-trained.")
@click.option("--arch", required=True, help="torchvision architecture name, e.g. resnet18.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local state-dict file; omit for a randomly initialised (untrained) model.")
@click.option("--seed", default=0, show_default=True, help="Seed of the untrained model.")
@click.option("--stimulus-set", type=NAME, required=True, help="Stimulus set identifier.")
@image_options
@click.option("--classes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Class names, one per line in output order: records predictions.")
@click.option("--layers", default=None,
              help="Comma-separated module paths (plus output, prob); default every conv and "
                   "linear leaf, the output and prob.")
@click.option("--pools", default="mean,max,l2", show_default=True,
              help="Comma-separated pools for conv layers; add none for one unit per element "
                   "(rows x H x W: the pre-flight estimate says how many).")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--device", default="cpu", show_default=True,
              help="Torch device of the forward pass and the pools, e.g. cuda or cuda:1.")
@click.option("--replace-stimuli", is_flag=True, help="Overwrite a stimulus set that differs.")
@root_option
def activations_command(model_id: str, arch: str, weights: str | None, seed: int,
                        stimulus_set: str, image_dir: Path, labels_file: Path,
                        classes: Path | None, layers: str | None, pools: str, image_size: int,
                        resize: int, mean: str, std: str, batch_size: int, device: str,
                        replace_stimuli: bool, root: Path) -> None:
    """Record a torchvision model's activations on an image folder."""
    labels, paths, prep = read_image_stimuli(image_dir, labels_file, image_size, resize, mean,
                                             std)
    model = load_model(arch, weights, seed)
    # Thumbnails where the dashboards look, inside the warehouse (never served from
    # elsewhere), written beside the forward pass; in place only once the job committed.
    thumbnails = lake.images_path(root, stimulus_set, settings().data)
    with images.thumbnails_while(paths, labels["uri"].to_list(), thumbnails), job(root) as tx:
        summary = ingest_model(
            tx, model, images.batches(paths, prep, batch_size), labels,
            model_id=model_id, stimulus_set=stimulus_set, architecture=arch,
            state="trained" if weights else "untrained", preprocessing=prep.to_json(),
            source=str(Path(weights).resolve()) if weights else f"random init, seed {seed}",
            class_names=read_classes(classes) if classes else None,
            layers=layers.split(",") if layers else None, pools=pools.split(","),
            batch_size=batch_size, device=device, replace_stimuli=replace_stimuli,
        )
    click.echo(f"{summary}; thumbnails in {thumbnails}")
