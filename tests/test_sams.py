"""Synthetic AMS by feature visualisation, on a model whose maximising images are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from ingest.sams import ingest_sams
from unitsel.adapters.feature_vis import Settings, generate, to_image
from unitsel.analyses.distances import run_unit_distances
from unitsel.warehouse import Transaction, scan


class Brightness(nn.Module):
    """Unit 0: mean brightness; unit 1: its negative. s-AMS: a white and a black image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([m, -m], dim=1)


GREY = Settings(n=2, m=40, size=16, channels=1, mean=(0.5,), std=(0.5,), batch_size=4,
                lr=0.1)


def test_images_are_in_range_and_shaped() -> None:
    spectrum = torch.randn(3, 3, 32, 17, 2)
    image = to_image(spectrum, 32)
    assert image.shape == (3, 3, 32, 32) and image.min() >= 0 and image.max() <= 1


def test_signals_maximise_their_unit() -> None:
    before = next(generate(Brightness(), "output", "none", [0, 1],
                           Settings(**{**GREY.__dict__, "m": 0})))
    after = next(generate(Brightness(), "output", "none", [0, 1], GREY))
    units, pixels, acts = after
    assert list(units) == [0, 0, 1, 1] and pixels.shape == (4, 16, 16, 1)
    own_before = before[2][np.arange(4), before[0]]
    own_after = acts[np.arange(4), units]
    assert (own_after > own_before + 0.5).all()
    assert pixels[:2].mean() > 200 and pixels[2:].mean() < 55  # white, then black


def test_ingest_sams_writes_signals_and_ea_s_is_opposite(root: Path) -> None:
    with Transaction(root, progress=False) as tx:
        frame = ingest_sams(tx, Brightness(), "bright", "output", "none", 2, GREY)
    assert frame.height == 4
    for uri in frame["uri"]:
        assert (root / uri).is_file()
    mu = scan("ams_activations", root).sort("ams_unit", "unit").collect()
    m = mu["mean_activation"].to_numpy().reshape(2, 2)
    assert m[0, 0] > 0 > m[0, 1] and m[1, 1] > 0 > m[1, 0]
    # r_01 = (a, -a) and r_10 = (-b, b) point opposite ways: cos -1, distance 1.
    with Transaction(root) as tx:
        result = run_unit_distances(tx, "bright", "unused", "output", "none", ("ea_s_pairwise",))
    assert result["stimulus_set"].to_list() == ["synthetic"]
    assert result["distance"][0] == pytest.approx(1.0)
    with Transaction(root, progress=False) as tx:
        ingest_sams(tx, Brightness(), "bright", "output", "none", 2, GREY)
    assert scan("ams", root).collect().height == 4
    folder = root / "images" / "sams" / "bright" / "output" / "none"
    assert len(list(folder.iterdir())) == 4
