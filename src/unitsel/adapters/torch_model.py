"""Record the activations of any torch `nn.Module` with forward hooks.

Each hooked output is pooled on the model's device inside the hook (a copy: in-place ReLUs
would otherwise overwrite it once the hook returns). A batch's pooled blocks are then moved to
the host together, concatenated on the device and copied in one transfer (on a GPU into a
reused pinned buffer), and handed to `on_block`; blocks beyond `TRANSFER_BYTES` (pool `none`
of large layers) are moved as soon as they reach it, so memory stays bounded.

Units: with pool `none`, unit i is the i-th element of the flattened per-stimulus output
(C-order: unit = c*H*W + h*W + w for a conv map). With `mean`, `max` or `l2`, unit i is
channel i aggregated over all spatial positions (l2 = sqrt of the sum of squares).
"""

from __future__ import annotations

import hashlib
import pickle
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from unitsel.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn

KERNEL_POOLS = ("mean", "max", "l2")
OUTPUT = "output"
PROB = "prob"
# Called with (layer, pool, first stimulus of the batch, stimuli x units float32 matrix).
BlockSink = Callable[[str, str, int, np.ndarray], None]
# Bytes of pooled blocks gathered on the device before they move to the host.
TRANSFER_BYTES = 256 << 20


@dataclass(frozen=True)
class LayerInfo:
    layer: str
    pool: str
    kind: str
    n_units: int
    shape: tuple[int, ...]


@dataclass
class Recording:
    """What a recording saw: one LayerInfo per (layer, pool), and top-1 output indices."""

    layers: dict[tuple[str, str], LayerInfo] = field(default_factory=dict)
    top1: list[np.ndarray] = field(default_factory=list)
    n_stimuli: int = 0


def default_layers(model: nn.Module) -> list[str]:
    """Every convolution and linear leaf module, in registration order."""
    from torch import nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return [name for name, m in model.named_modules()
            if isinstance(m, kinds) and not any(True for _ in m.children())]


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the state dict: each entry's name, dtype, shape and raw bytes, in order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # Viewed as bytes, so bfloat16 and other dtypes numpy lacks hash too.
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def pooled(output: torch.Tensor, pools: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """The (pool, stimuli x units) matrices of a layer output. A layer without spatial
    dimensions has one unit per element ('none') whatever `pools` says; a conv layer the
    pools asked for: a channel aggregated over space, or 'none', one unit per element."""
    flat = output.reshape(output.shape[0], -1)
    if output.ndim < 3:
        return [("none", flat)]
    result = [("none", flat)] if "none" in pools else []
    spatial = output.reshape(output.shape[0], output.shape[1], -1)
    for pool in pools:
        if pool == "mean":
            result.append((pool, spatial.mean(dim=2)))
        elif pool == "max":
            result.append((pool, spatial.amax(dim=2)))
        elif pool == "l2":
            result.append((pool, spatial.norm(dim=2)))
    return result


def record(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    on_block: BlockSink,
    layers: Sequence[str] | None = None,
    pools: Sequence[str] = KERNEL_POOLS,
    device: str = "cpu",
) -> Recording:
    """Run `model` over `batches` and hand every (layer, pool) block to `on_block`.

    `layers` are module paths from `model.named_modules()`, plus `output` (the model's output)
    and `prob` (its softmax over dim 1). None means `default_layers(model)`, `output` when it
    is not already a recorded module's output, and `prob` when the output is 2-D.
    """
    import torch

    unknown_pools = set(pools) - {"none", *KERNEL_POOLS}
    if unknown_pools:
        raise InputError(f"unknown pools {sorted(unknown_pools)}; use none, mean, max, l2")
    try:  # before any work: a device this machine lacks is the user's option, not a crash
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise InputError(f"device {device!r} is not available here: {error}",
                         column="--device") from None
    modules = dict(model.named_modules())
    names = list(layers) if layers is not None else default_layers(model)
    unknown = [n for n in names if n not in modules and n not in (OUTPUT, PROB)]
    if unknown:
        raise InputError(f"model has no modules {unknown}; it has {list(modules)[1:12]}…")
    rec = Recording()
    calls: Counter[str] = Counter()
    last: dict[str, torch.Tensor] = {}
    waiting: list[tuple[str, str, torch.Tensor]] = []  # pooled on the device, not yet moved
    pinned: dict[str, torch.Tensor] = {}

    def move() -> None:
        for (layer, pool, _), block in zip(waiting, _to_host([m for *_, m in waiting], pinned),
                                           strict=True):
            on_block(layer, pool, rec.n_stimuli, block)
        waiting.clear()

    def emit(layer: str, kind: str, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor):
            raise InputError(f"layer {layer!r} returns {type(output).__name__}, not a tensor")
        for pool, matrix in pooled(output.detach().float(), pools):
            if matrix.shape[1] == 0:
                raise InputError(f"layer {layer!r} has no units (output shape "
                                 f"{tuple(output.shape)})")
            rec.layers.setdefault((layer, pool), LayerInfo(
                layer, pool, kind, matrix.shape[1],
                tuple(output.shape[1:]) if pool == "none" else (output.shape[1],)))
            # Pool `none` is a view of the output, which an in-place module may change next.
            waiting.append((layer, pool, matrix.clone() if pool == "none" else matrix))
        if sum(m.numel() for *_, m in waiting) * 4 >= TRANSFER_BYTES:
            move()

    def hook(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def run(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            calls[name] += 1
            if calls[name] > 1:
                raise InputError(f"module {name!r} runs more than once per forward pass "
                                 "(it is shared); record a module that runs once")
            emit(name, type(module).__name__, output)
            last["output"] = output
        return run

    handles = [modules[n].register_forward_hook(hook(n)) for n in names if n in modules]
    model.eval().to(device)
    try:
        with torch.inference_mode():
            for batch in batches:
                calls.clear()
                last.clear()
                output = model(batch.to(device))
                is_classifier = isinstance(output, torch.Tensor) and output.ndim == 2
                if OUTPUT in names or (layers is None and output is not last.get("output")):
                    emit(OUTPUT, "Output", output)
                if PROB in names or (layers is None and is_classifier):
                    emit(PROB, "Softmax", torch.softmax(output.float(), dim=1))
                move()
                if is_classifier:
                    rec.top1.append(output.argmax(dim=1).cpu().numpy())
                rec.n_stimuli += batch.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    return rec


def _to_host(blocks: list[torch.Tensor], pinned: dict[str, torch.Tensor]) -> list[np.ndarray]:
    """Device blocks (stimuli x units each, one batch) as host float32 matrices, each
    contiguous and its own, in one transfer: concatenated flat on the device; on a GPU copied
    into a pinned buffer kept in `pinned` (reused while its size lasts), then into host memory
    the blocks own (the buffer is reused, the blocks are kept by the job)."""
    import torch

    if not blocks:
        return []
    joined = torch.cat([b.reshape(-1) for b in blocks])
    if joined.device.type == "cpu":
        host = joined.numpy()  # the concatenation was the copy
    else:
        buffer = pinned.get("buffer")
        if buffer is None or buffer.numel() < joined.numel():
            buffer = pinned["buffer"] = torch.empty(joined.numel(), dtype=joined.dtype,
                                                    pin_memory=True)
        buffer[:joined.numel()].copy_(joined, non_blocking=True)
        torch.cuda.current_stream(joined.device).synchronize()
        host = buffer[:joined.numel()].numpy().copy()
    edges = np.cumsum([b.numel() for b in blocks])[:-1]
    return [part.reshape(b.shape) for part, b in zip(np.split(host, edges), blocks,
                                                         strict=True)]


def load_model(architecture: str, weights: str | None, seed: int = 0) -> nn.Module:
    """A torchvision architecture by name, with a local state-dict file or, without one,
    randomly initialised from `seed`. Nothing is downloaded."""
    import torch
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(architecture)
    except ValueError:
        raise InputError(f"unknown torchvision architecture {architecture!r}; see "
                         "torchvision.models.list_models()") from None
    torch.manual_seed(seed)
    model: nn.Module = builder(weights=None)
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as error:
            raise InputError(f"cannot read: {error}", file=weights) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                                  for v in state.values()):
            # e.g. a training checkpoint: {'state_dict': …, 'epoch': …}
            keys = f" with keys {list(state)[:5]}" if isinstance(state, dict) else ""
            raise InputError(f"holds a {type(state).__name__}{keys}; expected a state dict "
                             "(parameter name -> tensor, as model.state_dict() gives)",
                             file=weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise InputError(f"cannot load weights into {architecture}: {error}",
                             file=weights) from None
    return model
