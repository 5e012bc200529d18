"""`unitsel ingest lesions`: zero each unit (kernel) of a layer in turn and record the drop of a
task score on held-out stimuli (Lado & Dobs Fig. 1d).

A lesion sets one channel of a conv layer's output (a kernel) or one element of a flat
layer's output to 0 with a forward hook, for every stimulus. The score is any callable of
the readout's outputs (by default the model's output) on the held-out stimuli; two come
built in:

- `accuracy`: the share of the held-out `category` stimuli whose top-1 output is the
  category's class (the model must have it: `class_names`);
- `probe`: balanced accuracy of a fixed logistic-regression readout of category vs rest,
  fitted on the intact model's `readout` activations of a training half (stratified, seeded)
  and scored on the other half. For models without the category among their classes (faces
  in an ImageNet network).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import polars as pl
from tqdm import tqdm

from ingest.activations import image_options, read_classes, read_image_stimuli
from unitsel.adapters import images
from unitsel.adapters.torch_model import load_model
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option
from unitsel.schema import LESIONS
from unitsel.warehouse import Transaction

if TYPE_CHECKING:
    import torch
    from torch import nn

# Scores the readout's outputs (stimuli x features) on the held-out stimuli.
Score = Callable[[np.ndarray], float]


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        raise InputError(f"the model has no module {name!r}; modules are e.g. "
                         f"{[n for n in modules if n][:12]}")
    return modules[name]


def readout_outputs(model: nn.Module, inputs: torch.Tensor, readout: str | None,
                    lesion: tuple[str, int] | None = None, batch_size: int = 64) -> np.ndarray:
    """The readout module's output (flattened per stimulus; the model's output when readout is
    None) with unit `lesion = (layer, unit)` zeroed."""
    import torch

    handles = []
    captured: list[np.ndarray] = []
    if lesion is not None:
        layer, unit = lesion

        def zero(_module: nn.Module, _inputs: object, output: torch.Tensor) -> torch.Tensor:
            output = output.clone()
            output.view(output.shape[0], output.shape[1], -1)[:, unit] = 0
            return output

        handles.append(_module(model, layer).register_forward_hook(zero))
    if readout is not None:
        handles.append(_module(model, readout).register_forward_hook(
            lambda _m, _i, out: captured.append(out.detach().flatten(1).cpu().numpy())))
    try:
        model.eval()
        outputs = []
        with torch.no_grad():
            for batch in inputs.split(batch_size):
                outputs.append(model(batch).detach().flatten(1).cpu().numpy())
    finally:
        for handle in handles:
            handle.remove()
    return np.concatenate(captured if readout is not None else outputs)


def lesion_layer(model: nn.Module, inputs: torch.Tensor, layer: str, score: Score,
                 readout: str | None = None, batch_size: int = 64,
                 progress: bool = True) -> tuple[float, np.ndarray]:
    """Baseline score and the score with each unit of `layer` zeroed (channels of a conv map,
    elements of a flat output)."""
    import torch

    shapes: list[tuple[int, ...]] = []
    handle = _module(model, layer).register_forward_hook(
        lambda _m, _i, out: shapes.append(tuple(out.shape[1:])))
    try:
        model.eval()
        with torch.no_grad():
            model(inputs[:1])
    finally:
        handle.remove()
    baseline = score(readout_outputs(model, inputs, readout, None, batch_size))
    lesioned = np.array([
        score(readout_outputs(model, inputs, readout, (layer, unit), batch_size))
        for unit in tqdm(range(shapes[0][0]), desc=f"lesions {layer}", unit="unit",
                         disable=not progress)
    ])
    return baseline, lesioned


def accuracy_score(labels: Sequence[str], category: str, class_index: int) -> Score:
    """Share of the `category` stimuli whose top-1 output is `class_index`."""
    target = np.asarray(labels) == category
    if not target.any():
        raise InputError(f"no held-out stimulus is labelled {category!r}")
    return lambda outputs: float(np.mean(outputs[target].argmax(axis=1) == class_index))


def probe_score(train_features: np.ndarray, train_labels: Sequence[str],
                test_labels: Sequence[str], category: str) -> Score:
    """Balanced accuracy of a category-vs-rest logistic regression fitted once on the intact
    model's training features, applied to each lesioned model's held-out features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y_train = np.asarray(train_labels) == category
    y_test = np.asarray(test_labels) == category
    if y_train.all() or not y_train.any() or y_test.all() or not y_test.any():
        raise InputError(f"the probe needs {category!r} and other stimuli in both halves")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe.fit(train_features, y_train)
    return lambda features: float(balanced_accuracy_score(y_test, probe.predict(features)))


def split_halves(labels: Sequence[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified training and held-out halves (stimulus indices)."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    train, test = train_test_split(index, test_size=0.5, stratify=list(labels), random_state=seed)
    return np.sort(train), np.sort(test)


def ingest_lesions(tx: Transaction, model: nn.Module, inputs: torch.Tensor,
                   labels: pl.DataFrame, *, model_id: str, stimulus_set: str, layer: str,
                   category: str, task: str, readout: str | None = None,
                   class_names: Sequence[str] | None = None, seed: int = 0,
                   batch_size: int = 64) -> pl.DataFrame:
    """Run a built-in task ('accuracy' or 'probe') and write its `lesions` rows."""
    names = labels["label"].to_list()
    if task == "accuracy":
        if class_names is None or category not in class_names:
            raise InputError(f"task accuracy needs class names that include {category!r}; "
                             "use task probe for a category the model does not output")
        held_out = np.arange(len(names))
        score = accuracy_score(names, category, list(class_names).index(category))
    elif task == "probe":
        if readout is None:
            raise InputError("task probe needs a readout layer (e.g. the penultimate layer)")
        train, held_out = split_halves(names, seed)
        features = readout_outputs(model, inputs[train], readout, None, batch_size)
        score = probe_score(features, [names[i] for i in train], [names[i] for i in held_out],
                            category)
    else:
        raise InputError(f"unknown task {task!r}; use accuracy or probe")
    baseline, lesioned = lesion_layer(model, inputs[held_out], layer, score, readout,
                                      batch_size, tx.progress)
    frame = pl.DataFrame({
        "model_id": model_id, "stimulus_set": stimulus_set, "layer": layer,
        "task": f"{task}:{category}", "unit": np.arange(len(lesioned)), "baseline": baseline,
        "lesioned": lesioned, "n_stimuli": len(held_out)})
    tx.write(frame, LESIONS)
    return frame


@click.command("lesions")
@click.option("--model-id", type=NAME, required=True, help="Model identifier (as ingested).")
@click.option("--arch", required=True, help="torchvision architecture name.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local state-dict file; omit for the untrained model of --seed.")
@click.option("--seed", default=0, show_default=True,
              help="Seed of the untrained model and of the probe's split.")
@click.option("--stimulus-set", type=NAME, required=True, help="Held-out stimulus set identifier.")
@click.option("--layer", type=NAME, required=True,
              help="Module path whose units (kernels) are lesioned.")
@click.option("--category", default="face", show_default=True, help="Target label.")
@click.option("--task", type=click.Choice(["probe", "accuracy"]), default="probe",
              show_default=True)
@click.option("--readout", default=None, help="Module the probe reads (e.g. classifier.0).")
@click.option("--classes", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Class names in output order (task accuracy).")
@image_options
@root_option
def lesions_command(model_id: str, arch: str, weights: str | None, seed: int,
                    stimulus_set: str, layer: str, category: str, task: str,
                    readout: str | None, classes: Path | None, image_dir: Path,
                    labels_file: Path, image_size: int, resize: int, mean: str, std: str,
                    root: Path) -> None:
    """Zero each kernel of a layer in turn and record a task score's drop."""
    import torch

    labels, paths, prep = read_image_stimuli(image_dir, labels_file, image_size, resize, mean,
                                             std)
    inputs = torch.cat(list(images.batches(paths, prep, batch_size=64)))
    with job(root) as tx:
        frame = ingest_lesions(
            tx, load_model(arch, weights, seed), inputs, labels, model_id=model_id,
            stimulus_set=stimulus_set, layer=layer, category=category, task=task,
            readout=readout, class_names=read_classes(classes) if classes else None, seed=seed)
    worst = frame.sort(pl.col("baseline") - pl.col("lesioned"), descending=True).head(5)
    click.echo(f"lesions: {frame.height} units of {layer}, baseline {frame['baseline'][0]:.3f}; "
               f"largest drops at units {json.dumps(worst['unit'].to_list())}")
