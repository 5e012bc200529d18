"""thingsvision's output folders -> the parts that hold one module's features, in row order.

What thingsvision 2.7 writes (ViCCo-Group/thingsvision, `thingsvision/utils/storing/helpers.py`):
`save_features(features, out_path, file_format)` stores `features.npy`, `features.pt` (one
tensor), `features.hdf5` (dataset `features`), `features.mat` or `features.txt`
(`np.savetxt`, 2-D only). When that runs out of memory, `split_features` writes
`features_01` … (numbered from 01, `n_splits - 1` of them, by `np.linspace`) as files of the
same format, or as datasets `features_01` … inside one `features.hdf5`. A `.mat` holds one
variable per image, named by its `file_names.txt` line without the image suffix, when that
file existed at save time, else one variable `features`. `file_names.txt`, written by its
ImageDataset into the same folder, lists the images' paths as it was given them (absolute
when its root was), one per line, in row order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitsel.adapters import array_formats, arrays
from unitsel.adapters.labels import read_text
from unitsel.errors import InputError

FORMATS = ("npy", "pt", "hdf5", "mat", "txt")
# `features.h5` is no thingsvision name: accepted because earlier unitsel versions documented it.
SINGLES = (*FORMATS, "h5")
SPLIT = re.compile(r"features_(\d+)\.(npy|pt|mat|txt)")
SPLIT_DATASET = re.compile(r"features_(\d+)")
# thingsvision's `rm_suffix` for .mat variable names, dots unescaped as there (any character
# before the extension goes), case as there (`.JPEG` stays).
MAT_SUFFIX = re.compile(r".(eps|jpg|jpeg|png|PNG|tif|tiff)$")


@dataclass(frozen=True)
class Part:
    """One piece of the features: a file, a dataset of `features.hdf5`, or a `.mat` keyed by
    file names (`keys`: its variables in row order)."""

    path: Path
    dataset: str | None = None
    keys: tuple[str, ...] = ()
    rows: int = 0
    item_shape: tuple[int, ...] = ()

    def __str__(self) -> str:
        """Where the part is, for errors: the file, and a split dataset in brackets."""
        split = self.path.suffix == ".hdf5" and self.dataset != "features"
        return f"{self.path}[{self.dataset}]" if split else str(self.path)


def file_names(folder: Path) -> list[tuple[int, str]]:
    """(line, path) of each image `file_names.txt` lists; blank lines are skipped."""
    text = read_text(folder / "file_names.txt")
    return [(line, name.strip()) for line, name in enumerate(text.splitlines(), start=1)
            if name.strip()]


def find_parts(folder: Path, listed: list[tuple[int, str]]) -> list[Part]:
    """The folder's features as parts in row order, each with its rows and one image's
    shape, checked before any is read: one layout, splits numbered without gaps, every
    part of one shape, `.mat` variables that are the listed file names."""
    parts: list[Part] = []
    for path, dataset in _layout(folder):
        first = sum(p.rows for p in parts)
        keys = _mat_keys(path, listed, first) if path.suffix == ".mat" else ()
        with open_part(Part(path, dataset, keys)) as array:
            part = Part(path, dataset, keys, int(array.shape[0]), array.item_shape)
        if parts and part.item_shape != parts[0].item_shape:
            raise InputError(f"{shape_text(part.item_shape)} features per image where {parts[0]} "
                             f"has {shape_text(parts[0].item_shape)}", file=part)
        parts.append(part)
    if len(parts) > 1 and all(p.path.suffix == ".mat" and not p.keys and p.rows == len(listed)
                              for p in parts):
        raise InputError(f"holds all {len(listed)} rows, as {parts[0].path.name} does: "
                         "thingsvision's split_features writes the whole array into every .mat "
                         "split when file_names.txt is missing; keep "
                         f"{parts[0].path.name} alone, as features.mat", file=parts[1])
    return parts


def shape_text(shape: tuple[int, ...]) -> str:
    """`2048` or `1280x7x7`: one image's features, for messages."""
    return "x".join(map(str, shape))


@contextmanager
def open_part(part: Part) -> Iterator[Any]:
    """The part as images x features (C-order; `.item_shape` is one image's), for
    `arrays.blocks`."""
    if part.keys:
        yield arrays.checked(array_formats.mat_rows(part.path, part.keys), part.path, True)
    else:
        with arrays.open_array(part.path, part.dataset, flatten=True) as array:
            yield array


def _layout(folder: Path) -> list[tuple[Path, str | None]]:
    """(file, dataset) of each part in row order."""
    singles = [folder / f"features.{ext}" for ext in SINGLES
               if (folder / f"features.{ext}").is_file()]
    splits = {p: (int(m[1]), m[2]) for p in folder.glob("features_*")
              if (m := SPLIT.fullmatch(p.name)) and p.is_file()}
    kinds = {ext for _, ext in splits.values()}
    if len(singles) + len(kinds) != 1:
        found = [p.name for p in singles] + sorted(p.name for p in splits)[:3]
        raise InputError("expected thingsvision's features.npy, .pt, .hdf5, .mat or .txt, or "
                         f"its splits features_01.npy … (one of them); found {found or 'none'}",
                         file=folder)
    if splits:
        numbered = sorted(splits, key=lambda p: splits[p][0])
        ext = kinds.pop()
        _no_gaps([splits[p][0] for p in numbered], lambda n: f"features_{n:02d}.{ext}", folder)
        return [(p, None) for p in numbered]
    if singles[0].suffix != ".hdf5":
        return [(singles[0], None)]
    return [(singles[0], name) for name in _hdf5_datasets(singles[0])]


def _hdf5_datasets(path: Path) -> list[str]:
    """`features`, or the splits `features_01` … in their order."""
    with arrays.open_h5(path) as handle:
        names = list(handle.keys())
    if names == ["features"]:
        return names
    numbered = {name: int(m[1]) for name in names if (m := SPLIT_DATASET.fullmatch(name))}
    if not numbered or len(numbered) != len(names):
        raise InputError(f"holds {names[:10]}; expected thingsvision's dataset `features` or "
                         "its splits features_01, features_02 …", file=path)
    ordered = sorted(numbered, key=numbered.__getitem__)
    _no_gaps([numbered[n] for n in ordered], lambda n: f"dataset features_{n:02d}", path)
    return ordered


def _no_gaps(numbers: list[int], name: Callable[[int], str], where: Path) -> None:
    """Splits (`numbers` in order) run from 01 (thingsvision) or 00 (earlier unitsel docs)
    without a gap: a lost split would shift every later image's row."""
    start = min(numbers[0], 1)
    missing = next((n for n in range(start, start + len(numbers)) if n not in numbers), None)
    if missing is not None:
        raise InputError(f"{name(missing)} is missing (the splits here run from {name(start)} "
                         f"to {name(numbers[-1])})", file=where)


def _mat_keys(path: Path, listed: list[tuple[int, str]], first: int) -> tuple[str, ...]:
    """The variables of a `.mat` keyed by file names, in row order; () when it holds the one
    variable `features`. Its variables must be the file names of the next rows."""
    held = list(array_formats.mat_variables(path))
    if held == ["features"]:
        return ()
    if not held:
        raise InputError("holds no variables", file=path)
    wanted = [(line, MAT_SUFFIX.sub("", name)) for line, name in listed[first:first + len(held)]]
    have = set(held)
    missing = next(((line, key) for line, key in wanted if key not in have), None)
    if missing is not None:
        raise InputError(f"no variable {missing[1]!r} for file_names.txt line {missing[0]} "
                         f"(it holds {sorted(have)[:3]} …; a .mat keyed by file names holds "
                         "each image's name without its suffix)", file=path)
    extra = sorted(have - {key for _, key in wanted})
    if extra:
        lines = f"lines {wanted[0][0]}..{wanted[-1][0]}" if wanted else "no lines"
        raise InputError(f"variable {extra[0]!r} is not a file name of file_names.txt's "
                         f"{lines} (the rows this file holds)", file=path)
    return tuple(key for _, key in wanted)
