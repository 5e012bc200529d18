"""An image folder plus a labels CSV (with a `uri` column) -> batches of model input tensors."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from unitsel.errors import InputError

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How images become tensors: resize the short side, centre-crop, scale to [0, 1],
    normalise per channel. Stored as JSON in `models.preprocessing`."""

    image_size: int = 224
    resize: int = 256
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    color: str = "RGB"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def check_images(folder: Path, labels: pl.DataFrame, labels_file: Path) -> list[Path]:
    """The image path of every stimulus, in stimulus order; errors before anything runs."""
    if "uri" not in labels.columns or labels["uri"].null_count():
        raise InputError("an image folder needs a 'uri' column with a path for every stimulus",
                         file=labels_file, column="uri")
    paths = []
    for stimulus, uri in labels.select("stimulus", "uri").iter_rows():
        path = folder / uri
        if not path.is_file():
            raise InputError(f"stimulus {stimulus}: image {path} does not exist",
                             file=labels_file, column="uri")
        paths.append(path)
    return paths


def batches(paths: Sequence[Path], prep: Preprocessing, batch_size: int) -> Iterator[torch.Tensor]:
    """Load, transform and stack images `batch_size` at a time, in order."""
    import torch
    from PIL import Image
    from torchvision.transforms import v2

    transform = v2.Compose([
        v2.ToImage(),
        v2.Resize(prep.resize, antialias=True),
        v2.CenterCrop(prep.image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(prep.mean), list(prep.std)),
    ])
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start : start + batch_size]:
            try:
                with Image.open(path) as image:
                    images.append(transform(image.convert(prep.color)))
            except OSError as error:
                raise InputError(f"cannot read image: {error}", file=path) from None
        yield torch.stack(images)


THUMBNAIL_PX = 128


@contextlib.contextmanager
def thumbnails_while(paths: Sequence[Path], uris: Sequence[str],
                     folder: Path | str) -> Iterator[None]:
    """Small copies of the images (at most THUMBNAIL_PX on a side, same format) at their
    `uri` under `folder` (`unitsel.lake.images_path`, where the dashboards look), written by a
    thread while the block runs (the job's forward pass and commit), off its critical path,
    into a staging folder that replaces `folder` in one move when the block ends without
    error; when it fails, the thread stops and `folder` is left as it was."""
    from concurrent.futures import ThreadPoolExecutor

    from unitsel.files import replaced_folder

    stop = threading.Event()
    with replaced_folder(folder) as staging, ThreadPoolExecutor(1) as pool:
        writing = pool.submit(_write_thumbnails, paths, uris, staging, stop)
        try:
            yield
        except BaseException:
            stop.set()
            raise
        writing.result()


def _write_thumbnails(paths: Sequence[Path], uris: Sequence[str], staging: Path,
                      stop: threading.Event) -> None:
    from PIL import Image

    for path, uri in zip(paths, uris, strict=True):
        if stop.is_set():
            return
        target = staging / uri
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            image.save(target, format=image.format)
