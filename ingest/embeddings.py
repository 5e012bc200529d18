"""Image embeddings of a stimulus set's crops (`image_embeddings`), for concept scores.

`center`: a size x size window at each image's centre. `gradcam:<model_id>`: the window centred
on the peak of the target model's Grad-CAM (its top-1 class, at `layer`): Grad-CAM depends on
the model whose units are scored, so the crop names it. Any `ImageEncoder` embeds the crops.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import polars as pl
from tqdm import tqdm

from ingest.activations import image_options, read_image_stimuli
from unitsel.adapters.encoders import ImageEncoder
from unitsel.adapters.gradcam import crops, gradcam
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option
from unitsel.schema import IMAGE_EMBEDDINGS
from unitsel.warehouse import Transaction

if TYPE_CHECKING:
    import torch
    from torch import nn


def embed_images(tx: Transaction, encoder: ImageEncoder, stimulus_set: str,
                 images: torch.Tensor, size: int, model: nn.Module | None = None,
                 model_id: str | None = None, layer: str | None = None,
                 normalise: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 batch_size: int = 256) -> str:
    """Embed centre crops of `images` (floats in [0, 1], in stimulus order), or Grad-CAM crops
    when `model`, `model_id` and `layer` are given (`normalise` turns images into the target
    model's inputs); write (replace) the partition and return its crop name."""
    gradcam_crop = model is not None
    if gradcam_crop and (model_id is None or layer is None):
        raise InputError("Grad-CAM crops need the model id and the layer")
    crop = f"gradcam:{model_id}" if gradcam_crop else "center"
    vectors = []
    for start in tqdm(range(0, len(images), batch_size), desc=f"embed {crop} crops",
                      unit="batch", disable=not tx.progress):
        batch = images[start:start + batch_size]
        cams = (gradcam(model, str(layer), normalise(batch) if normalise else batch)
                if model is not None else None)
        vectors.append(encoder.encode_images(crops(batch, cams, size)))
    matrix = np.concatenate(vectors).astype(np.float32)
    tx.write_partition(IMAGE_EMBEDDINGS, {"encoder": encoder.name, "stimulus_set": stimulus_set,
                                          "crop": crop},
                       pl.DataFrame({"stimulus": pl.Series(range(len(matrix)), dtype=pl.Int32),
                                     "embedding": pl.Series(list(matrix),
                                                            dtype=pl.List(pl.Float32))}))
    return crop


@click.command("images")
@click.option("--stimulus-set", type=NAME, required=True, help="The set's id (as ingested).")
@image_options
@click.option("--clip-arch", required=True, help="open_clip architecture, e.g. ViT-B-32.")
@click.option("--clip-checkpoint", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crop-size", default=160, show_default=True, help="Crop window in pixels.")
@click.option("--model-id", type=NAME, default=None,
              help="Target model for Grad-CAM crops (with --arch).")
@click.option("--arch", default=None, help="Target model's torchvision architecture.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--layer", type=NAME, default=None, help="Target model's conv layer for Grad-CAM.")
@root_option
def images_command(stimulus_set: str, image_dir: Path, labels_file: Path, image_size: int,
                   resize: int, mean: str, std: str, clip_arch: str, clip_checkpoint: Path,
                   crop_size: int, model_id: str | None, arch: str | None, weights: str | None,
                   layer: str | None, root: Path) -> None:
    """Embed a stimulus set's centre (or Grad-CAM) crops with open_clip -> image_embeddings."""
    import torch

    from unitsel.adapters import images as image_io
    from unitsel.adapters.encoders import OpenClip
    from unitsel.adapters.torch_model import load_model

    _, paths, prep = read_image_stimuli(image_dir, labels_file, image_size, resize, mean, std)
    raw = image_io.Preprocessing(image_size, resize, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    pixels = torch.cat(list(image_io.batches(paths, raw, batch_size=64)))
    target = load_model(arch, weights) if arch else None
    m = torch.tensor(prep.mean).view(1, -1, 1, 1)
    s = torch.tensor(prep.std).view(1, -1, 1, 1)
    with job(root) as tx:
        crop = embed_images(tx, OpenClip(clip_arch, clip_checkpoint), stimulus_set, pixels,
                            crop_size, target, model_id, layer, lambda x: (x - m) / s)
    click.echo(f"image_embeddings: {len(paths)} {crop} crops of {stimulus_set}")
