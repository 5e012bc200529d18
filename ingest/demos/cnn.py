"""The demo CNN and its data: scikit-learn's bundled digits (8x8, upsampled to 16x16), a
two-conv network, its deterministic training and how its weights are saved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import torch
    from torch import nn

CLASSES = [str(d) for d in range(10)]
IMAGE_SIZE = 16
LOGITS = "classifier.3"
PREPROCESSING = {
    "source": "sklearn.datasets.load_digits", "scale": "pixel / 16",
    "upsample": f"bilinear 8x8 -> {IMAGE_SIZE}x{IMAGE_SIZE}", "normalise": "(x - 0.5) / 0.5",
}


def demo_cnn(n_classes: int = 10) -> nn.Module:
    """features: conv(8) relu pool conv(16) relu pool; classifier: flatten linear(32) relu
    linear(n_classes). torch is imported here, not at module level, to keep `unitsel --help`
    fast."""
    from torch import nn

    class DemoCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Linear(32, n_classes)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.features(x))  # type: ignore[no-any-return]

    return DemoCNN()


def digits() -> tuple[torch.Tensor, pl.DataFrame]:
    """All 1,797 digits as (N, 1, 16, 16) tensors, and their labels frame."""
    import torch
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = torch.nn.functional.interpolate(x, size=IMAGE_SIZE, mode="bilinear", align_corners=False)
    labels = pl.DataFrame({
        "stimulus": pl.Series(range(len(data.target)), dtype=pl.Int32),
        "uri": pl.Series([None] * len(data.target), dtype=pl.String),
        "label": [str(t) for t in data.target],
        "wnid": pl.Series([None] * len(data.target), dtype=pl.String),
    })
    return (x - 0.5) / 0.5, labels


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 12,
          progress: bool = True) -> nn.Module:
    """Deterministic training: fixed seed, one thread, fixed batch order."""
    import torch
    from tqdm import tqdm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        model.train()
        for _ in tqdm(range(epochs), desc="training the demo CNN", unit="epoch",
                      disable=not progress):
            for index in torch.randperm(len(x), generator=generator).split(64):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
                loss.backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def save_weights(model: nn.Module, path: Path) -> Path:
    """Save the state dict through a temporary file and one rename."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path
