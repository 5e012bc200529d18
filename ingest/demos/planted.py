"""DORA's anomaly-detection protocol (Table 3) in miniature, inside `unitsel demo`.

DORA trains one network on two conceptually different data sets (Tiny ImageNet + MNIST) and
asks whether outlier detection on the distances between its logits finds the foreign data
set's logits. Here the demo CNN is trained on the digits plus scikit-image's `lfw_subset`
crops (face / nonface, 25x25 grey resized to 16x16): 12 logits of which units 10 and 11 (the
face data set's) are the planted outliers. The detectors' AUC against them fills `outlier_auc`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from ingest.activations import ingest_model
from ingest.demos import cnn, steps
from unitsel.analyses.distances import run_unit_distances
from unitsel.analyses.outliers import run_outliers
from unitsel.warehouse import scan

MODEL_ID = "demo-cnn-planted"
STIMULUS_SET = "digits-and-faces"
PLANTED_CLASSES = [*cnn.CLASSES, "face", "nonface"]
PLANTED_UNITS = (10, 11)
MEASURES = ("pearson", "ea_n_pairwise", "ea_n_layerwise")


def faces_16px() -> tuple[np.ndarray, list[str]]:
    """The 200 lfw_subset crops at 16x16, scaled like the digits, and their labels."""
    import torch
    from skimage.data import lfw_subset

    crops = torch.tensor(lfw_subset(), dtype=torch.float32).unsqueeze(1)
    small = torch.nn.functional.interpolate(crops, size=cnn.IMAGE_SIZE, mode="bilinear",
                                            align_corners=False)
    # scikit-image documents the first 100 crops as faces, the other 100 as non-faces.
    return ((small - 0.5) / 0.5).numpy(), ["face"] * 100 + ["nonface"] * 100


def run_planted(root: Path, progress: bool = True) -> list[str]:
    """Train on digits + faces, record the logits, compute distances and the detectors' AUC."""
    import torch

    x_digits, digit_labels = cnn.digits()
    x_faces, face_labels = faces_16px()
    x = torch.cat([x_digits, torch.from_numpy(x_faces)])
    labels = [*digit_labels["label"].to_list(), *face_labels]
    y = torch.tensor([PLANTED_CLASSES.index(label) for label in labels])
    torch.manual_seed(2)
    model = cnn.train(cnn.demo_cnn(len(PLANTED_CLASSES)), x[torch.arange(len(x)) % 5 != 0],
                  y[torch.arange(len(x)) % 5 != 0], progress=progress)
    frame = pl.DataFrame({
        "stimulus": pl.Series(range(len(labels)), dtype=pl.Int32),
        "uri": pl.Series([None] * len(labels), dtype=pl.String), "label": labels,
        "wnid": pl.Series([None] * len(labels), dtype=pl.String)})
    weights = cnn.save_weights(model, root / "weights" / f"{MODEL_ID}.pt")
    step = steps(root, progress)
    step(ingest_model, model, x, frame, model_id=MODEL_ID, stimulus_set=STIMULUS_SET,
         architecture="unitsel.demo_cnn", state="trained",
         preprocessing=json.dumps(cnn.PREPROCESSING | {"faces": "lfw_subset 25 -> 16"},
                                  sort_keys=True),
         source=str(weights.resolve()), class_names=PLANTED_CLASSES, layers=[cnn.LOGITS],
         pools=("none",), batch_size=256)
    step(run_unit_distances, MODEL_ID, STIMULUS_SET, cnn.LOGITS, "none", MEASURES, n=30, d=60)
    for measure in MEASURES:
        step(run_outliers, MODEL_ID, STIMULUS_SET, cnn.LOGITS, "none", measure,
             contamination=2 / 12, truth=PLANTED_UNITS, repeats=10)
    auc = (scan("outlier_auc", root).filter(model_id=MODEL_ID)
           .group_by("measure").agg(pl.col("auc").mean()).sort("measure").collect())
    return ["planted outliers (face logits among digit logits), mean AUC over the 5 "
            "detectors: " + ", ".join(f"{m} {a:.2f}" for m, a in auc.rows())]
