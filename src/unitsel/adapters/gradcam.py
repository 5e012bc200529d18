"""Grad-CAM (Selvaraju et al.) and the crops the Grad-CAM + t-vMF method feeds its encoder.

For a conv layer with output A (channels x h x w) and the target class score y, the map is
ReLU(sum_c alpha_c A_c) with alpha_c the spatial mean of dy/dA_c, upsampled bilinearly to the
input size. The crop is a `size` x `size` window centred on the map's highest value (first in
row-major order on ties), shifted to lie inside the image; the centre crop is the same window
at the image centre. torch is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unitsel.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn


def gradcam(model: nn.Module, layer: str, inputs: torch.Tensor,
            targets: torch.Tensor | None = None) -> torch.Tensor:
    """Batch x H x W Grad-CAM maps for `targets` (default: each input's top-1 class)."""
    import torch
    import torch.nn.functional as F

    modules = dict(model.named_modules())
    if layer not in modules:
        raise InputError(f"the model has no module {layer!r}")
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    handle = modules[layer].register_forward_hook(keep)
    try:
        model.eval()
        x = inputs.detach().clone().requires_grad_(True)  # gradients reach frozen layers
        scores = model(x)
        chosen = scores.argmax(dim=1) if targets is None else targets
        scores.gather(1, chosen.view(-1, 1)).sum().backward()
    finally:
        handle.remove()
    activation = captured[0]
    if activation.ndim != 4 or activation.grad is None:
        raise InputError(f"Grad-CAM needs a conv layer's 4-D output; {layer!r} gave "
                         f"{tuple(activation.shape)}")
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * activation).sum(dim=1, keepdim=True)).detach()
    return F.interpolate(cam, size=inputs.shape[2:], mode="bilinear",
                         align_corners=False)[:, 0]


def window(centre: tuple[int, int], size: int, shape: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of a size x size window centred on `centre`, kept inside `shape`."""
    if size > min(shape):
        raise InputError(f"crop size {size} exceeds the image size {shape}")
    top = min(max(centre[0] - size // 2, 0), shape[0] - size)
    left = min(max(centre[1] - size // 2, 0), shape[1] - size)
    return top, left


def crops(images: torch.Tensor, cams: torch.Tensor | None, size: int) -> torch.Tensor:
    """Batch x C x size x size windows: at each map's peak, or at the centre without maps."""
    import torch

    height, width = images.shape[2:]
    out = []
    for i in range(images.shape[0]):
        if cams is None:
            centre = (height // 2, width // 2)
        else:
            flat = int(torch.argmax(cams[i]))
            centre = divmod(flat, width)
        top, left = window(centre, size, (height, width))
        out.append(images[i, :, top:top + size, left:left + size])
    return torch.stack(out)
