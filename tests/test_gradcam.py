"""Grad-CAM on a model whose attended region is known by construction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unitsel.adapters.gradcam import crops, gradcam, window
from unitsel.errors import InputError


class Brightness(nn.Module):
    """conv (1x1, weight 1) -> ReLU -> mean -> logits (class 0: brightness, 1: its negative).
    For class 0 every channel weight is positive, so Grad-CAM is the (ReLU) image itself."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.fc = nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.fc.weight.copy_(torch.tensor([[1.0], [-1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def test_gradcam_peaks_at_the_bright_spot_and_crops_around_it() -> None:
    images = torch.zeros(2, 1, 32, 32)
    images[0, 0, 20, 5] = 1.0  # near the left edge: the crop must shift inside
    images[1, 0, 8, 16] = 1.0
    cams = gradcam(Brightness(), "conv", images, torch.tensor([0, 0]))
    assert cams.shape == (2, 32, 32)
    assert divmod(int(cams[0].argmax()), 32) == (20, 5)
    assert divmod(int(cams[1].argmax()), 32) == (8, 16)
    # Class 1 weights the channel negatively: ReLU leaves nothing to attend.
    assert gradcam(Brightness(), "conv", images, torch.tensor([1, 1])).abs().max() == 0
    windows = crops(images, cams, 12)
    assert windows.shape == (2, 1, 12, 12)
    assert windows[0].sum() == 1 and windows[0, 0, 20 - 14, 5] == 1  # rows 14..25, cols 0..11
    assert windows[1, 0, 6, 6] == 1  # centred: rows 2..13, cols 10..21
    assert crops(images, None, 12).sum() == 0  # centre window (10..21) misses both spots


def test_window_and_errors() -> None:
    assert window((0, 0), 10, (32, 32)) == (0, 0)
    assert window((31, 31), 10, (32, 32)) == (22, 22)
    assert window((16, 16), 10, (32, 32)) == (11, 11)
    with pytest.raises(InputError, match="exceeds"):
        window((0, 0), 40, (32, 32))
    with pytest.raises(InputError, match="4-D"):
        gradcam(Brightness(), "fc", torch.zeros(1, 1, 8, 8))
