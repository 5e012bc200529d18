"""Synthetic activation-maximisation signals (s-AMS) by feature visualisation (Olah et al.
2017, as DORA uses it): images parametrised by their Fourier coefficients (scaled by 1/frequency,
so optimisation favours low frequencies), decorrelated colour, a sigmoid to [0, 1], and before
every step random jitter, scale and rotation; Adam ascends the unit's activation for m steps.

Each (unit, signal) pair is one image of a batch whose loss sums every image's own unit, so a
batch optimises many units at once. torch is imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from unitsel.adapters.torch_model import OUTPUT, pooled
from unitsel.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

# Lucid's colour-correlation square root (ImageNet), to decorrelate the colour channels.
_COLOUR_SQRT = ((0.26, 0.09, 0.02), (0.27, 0.00, -0.05), (0.27, -0.09, 0.03))
_SCALES = (1.0, 0.975, 1.025, 0.95, 1.05)
_DEGREES = tuple(range(-5, 6))


@dataclass(frozen=True)
class Settings:
    """n signals per unit, m steps each, images of `size` pixels with the model's input
    `channels` (3: colour, decorrelated; 1: grey) and normalisation, Adam learning rate."""

    n: int = 3
    m: int = 500
    size: int = 224
    lr: float = 0.05
    seed: int = 0
    batch_size: int = 32
    channels: int = 3
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)

    @property
    def label(self) -> str:
        return f"n={self.n},m={self.m},size={self.size},seed={self.seed}"


def _spectrum_scale(size: int) -> torch.Tensor:
    import torch

    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freqs, min=1.0 / size) * size  # DC gets the largest weight


def to_image(spectrum: torch.Tensor, size: int) -> torch.Tensor:
    """Fourier parameters (b, c, size, size//2+1, 2) -> images (b, c, size, size) in [0, 1]."""
    import torch

    coefficients = torch.view_as_complex(spectrum) * _spectrum_scale(size)
    image = torch.fft.irfft2(coefficients, s=(size, size), norm="ortho") / 4.0
    if image.shape[1] == 1:
        return torch.sigmoid(image)
    colour = torch.tensor(_COLOUR_SQRT)
    colour = colour / colour.norm(dim=0).max()
    return torch.sigmoid(torch.einsum("ij,bjhw->bihw", colour, image))


def _transform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pad, jitter, scale and rotate each image at random (differentiably)."""
    import torch
    import torch.nn.functional as F

    b, _, size, _ = images.shape
    pad, jitter = max(1, size // 18), max(1, size // 28)  # 12 and 8 pixels at 224, as Lucid
    x = F.pad(images, (pad, pad, pad, pad), value=0.5)
    shifts = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    x = torch.roll(x, shifts=shifts, dims=(2, 3))
    scale = torch.tensor(_SCALES)[torch.randint(len(_SCALES), (b,), generator=generator)]
    angle = torch.tensor(_DEGREES, dtype=torch.float32)[
        torch.randint(len(_DEGREES), (b,), generator=generator)] * math.pi / 180
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) / scale
    theta[:, 0, 1] = -torch.sin(angle) / scale
    theta[:, 1, 0] = torch.sin(angle) / scale
    theta[:, 1, 1] = torch.cos(angle) / scale
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return x[:, :, pad:pad + size, pad:pad + size]


class LayerReader:
    """Calls the model and returns the pooled (batch x units) output of one layer."""

    def __init__(self, model: nn.Module, layer: str, pool: str) -> None:
        modules = dict(model.named_modules())
        if layer != OUTPUT and layer not in modules:
            raise InputError(f"model has no module {layer!r}")
        self.model, self.layer, self.pool = model, layer, pool
        self._module = None if layer == OUTPUT else modules[layer]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = None if self._module is None else self._module.register_forward_hook(
            lambda _m, _i, out: captured.append(out.clone()))
        try:
            out = self.model(x)
        finally:
            if handle is not None:
                handle.remove()
        found = dict(pooled(captured[0] if captured else out, (self.pool,)))
        if self.pool not in found:
            raise InputError(f"pool {self.pool!r} does not apply to layer {self.layer!r}")
        return found[self.pool]


def generate(model: nn.Module, layer: str, pool: str, units: Sequence[int], settings: Settings,
             on_batch: Callable[[int], None] | None = None) -> Iterator[tuple[
                 np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (unit per image, uint8 images b x size x size x channels, pooled activations of every
    unit of the layer on the final images) batch by batch, n images per unit."""
    import torch

    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    reader = LayerReader(model, layer, pool)
    mean = torch.tensor(settings.mean).view(1, -1, 1, 1)
    std = torch.tensor(settings.std).view(1, -1, 1, 1)
    jobs = np.repeat(np.asarray(units, dtype=np.int64), settings.n)
    generator = torch.Generator().manual_seed(settings.seed)
    size = settings.size
    for start in range(0, len(jobs), settings.batch_size):
        targets = torch.as_tensor(jobs[start:start + settings.batch_size])
        shape = (len(targets), settings.channels, size, size // 2 + 1, 2)
        spectrum = (torch.randn(shape, generator=generator) * 0.01).requires_grad_(True)
        optimiser = torch.optim.Adam([spectrum], lr=settings.lr)
        rows = torch.arange(len(targets))
        for _ in range(settings.m):
            optimiser.zero_grad()
            x = _transform(to_image(spectrum, size), generator)
            activations = reader((x - mean) / std)
            loss = -activations[rows, targets].sum()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        with torch.no_grad():
            images = to_image(spectrum, size)
            final = reader((images - mean) / std)
        pixels = (images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
        if on_batch is not None:
            on_batch(len(targets))
        yield targets.numpy(), pixels, final.double().numpy()
