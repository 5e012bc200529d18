"""The faces demo's inputs: lfw crops written as labelled images, verified MobileNetV2 weights.
(The full `unitsel demo --faces` run takes minutes; its jobs are tested on small data in
test_category_analyses.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage.data import lfw_subset

from ingest.demos.faces import WEIGHTS_FILE, weights_path, write_faces
from unitsel.adapters.torch_model import load_model


def test_faces_are_written_with_their_labels(tmp_path: Path) -> None:
    labels = write_faces(tmp_path)
    assert labels["label"].value_counts().sort("label").rows() == [("face", 100), ("nonface", 100)]
    crops = lfw_subset()
    for i in (0, 99, 100, 199):
        image = np.asarray(Image.open(tmp_path / labels["uri"][i]), dtype=float) / 255
        np.testing.assert_allclose(image, crops[i], atol=0.5 / 255 + 1e-9)


def test_weights_are_torchvisions_mobilenet_v2() -> None:
    path = weights_path()
    assert path.name == WEIGHTS_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("b0353104")
    model = load_model("mobilenet_v2", str(path)).eval()  # strict: every tensor must fit
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(model.state_dict()["classifier.1.weight"], state["classifier.1.weight"])
