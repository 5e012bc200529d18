"""Activation arrays users already have (.npy, .npz, .h5) -> stimuli x units blocks.

Gale et al. published their AlexNet activations as HDF5; .npy files are memory-mapped and
HDF5 datasets read in row blocks, so memory stays bounded by the block size.
"""

from __future__ import annotations

import math
import os
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np

from unitsel.errors import InputError

BLOCK_ROWS = 4096
# At most this many bytes of activations a block (float32): a wide layer (10⁴-10⁶ units) is
# read in fewer rows, so a block and the long rows made from it stay small.
BLOCK_BYTES = 64 << 20
MAX_UNITS = 2**31 - 1  # `layers.n_units` and `activations.unit` are INTEGER


class _Flat:
    """An images x (anything) array seen as images x features (C-order), a block at a time."""

    def __init__(self, array: Any) -> None:
        self.array, self.dtype = array, array.dtype
        self.shape = (int(array.shape[0]), math.prod(array.shape[1:]))  # never wraps

    def __getitem__(self, rows: slice) -> np.ndarray:
        block = np.asarray(self.array[rows])
        return block.reshape(len(block), -1)


@contextmanager
def open_array(path: Path | str, dataset: str | None = None,
               flatten: bool = False) -> Iterator[Any]:
    """Open a 2-D numeric array lazily; yields an object with `.shape`, `.dtype` and slicing.
    With `flatten`, an array of more dimensions is seen as rows x (the rest, C-order)."""
    path = Path(path)
    with _open(path, dataset) as array:
        yield _checked(_Flat(array) if flatten and len(array.shape) > 2 else array, path)


@contextmanager
def _open(path: Path, dataset: str | None) -> Iterator[Any]:
    if not path.is_file():
        raise InputError("no such file", file=path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if dataset is not None:  # never ignored silently: the user meant some other file
            raise InputError("does not apply: a .npy file holds one array", file=path,
                             column="--dataset")
        with path.open("rb") as handle:
            yield _NpyRows(handle, path)
    elif suffix == ".npz":
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            raise InputError(f"not a readable .npz file ({error})", file=path) from None
        with archive:
            name = _dataset_name(path, dataset, list(archive.files))
            member = f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name
            with archive.zip.open(member) as handle:  # the declared shape, before loading
                _header(handle, path, archive.zip.getinfo(member).file_size)
            yield archive[name]
    elif suffix in (".h5", ".hdf5"):
        import h5py

        with open_h5(path) as handle:
            names: list[str] = []
            handle.visititems(
                lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None
            )
            yield handle[_dataset_name(path, dataset, names)]
    else:
        raise InputError(f"unsupported format {suffix!r}; use .npy, .npz or .h5", file=path)


def open_h5(path: Path) -> Any:
    """An HDF5 file opened for reading (a context manager), or a located error."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"cannot read: not a readable HDF5 file ({error})",
                         file=path) from None


class _NpyRows:
    """A C-order `.npy` read a block of rows at a time with plain file reads. (A memory map
    would leave every page it touched resident: a 4 GB array would end as 4 GB of RSS.)"""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.shape, self.fortran, self.dtype = _header(handle, path, path.stat().st_size)
        self.handle, self.offset = handle, handle.tell()

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        if self.fortran:  # column-major on disk: rows are not contiguous
            whole = np.load(self.handle.name, mmap_mode="r", allow_pickle=False)
            return np.array(whole[start:stop])
        width = int(np.prod(self.shape[1:], dtype=np.int64))
        self.handle.seek(self.offset + start * width * self.dtype.itemsize)
        count = (stop - start) * width
        block = np.fromfile(self.handle, dtype=self.dtype, count=count)
        if block.size != count:
            raise InputError(f"the file ends early: rows {start}..{stop - 1} are missing",
                             file=self.handle.name)
        return block.reshape((stop - start, *self.shape[1:]))


def _header(handle: IO[bytes], path: Path, size: int) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) of the .npy header at `handle`, checked against the
    `size` bytes there are: before anything is allocated or written, so a header declaring
    10^12 values is refused, not a MemoryError."""
    try:
        version = np.lib.format.read_magic(handle)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(handle)
    except (ValueError, EOFError) as error:
        raise InputError(f"not a readable .npy file ({error or 'empty'})", file=path) from None
    if dtype.hasobject:
        raise InputError("holds Python objects, not numbers", file=path)
    needed = handle.tell() + math.prod(shape) * dtype.itemsize  # Python ints: never wraps
    if size < needed:
        raise InputError(f"the file ends early: its header says {shape} {dtype} "
                         f"({needed:,} bytes) but it has {size:,}", file=path)
    return shape, fortran, dtype


def _dataset_name(path: Path, dataset: str | None, names: list[str]) -> str:
    if dataset is None:
        if len(names) == 1:
            return names[0]
        raise InputError(f"holds datasets {names}: name one with --dataset", file=path)
    if dataset not in names:
        raise InputError(f"no dataset {dataset!r}; it holds {names}", file=path)
    return dataset


def _checked(array: Any, path: Path) -> Any:
    if len(array.shape) != 2:
        raise InputError(f"expected a stimuli x units array, got shape {tuple(array.shape)}",
                         file=path)
    kind = np.dtype(array.dtype).kind
    if kind not in "biuf":
        raise InputError(f"dtype {array.dtype} is not numeric (need integers or floats)",
                         file=path)
    if 0 in array.shape:
        raise InputError(f"the array is empty (shape {tuple(array.shape)})", file=path)
    if array.shape[1] > MAX_UNITS:
        raise InputError(f"shape {tuple(array.shape)}: {array.shape[1]:,} units, more than a "
                         f"layer may have ({MAX_UNITS:,})", file=path)
    return array


def _memory() -> int:
    """This machine's physical memory in bytes (no limit where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return sys.maxsize


def block_rows(n_units: int) -> int:
    """Rows a block of an array with `n_units` columns holds."""
    return max(1, min(BLOCK_ROWS, BLOCK_BYTES // (4 * max(1, n_units))))


def blocks(array: Any, path: Path, rows: int | None = None
           ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) pairs covering the array in row order, `block_rows` rows a block
    unless `rows` says otherwise. Activations are stored as float32: integers it cannot
    hold exactly (above 2^24) are refused, not rounded."""
    rows = rows or block_rows(int(array.shape[1]))
    # The declared shape, checked before the first read: HDF5 datasets (fill values,
    # compression) may declare far more than the file holds.
    needed = min(rows, array.shape[0]) * array.shape[1] * np.dtype(array.dtype).itemsize
    if needed > _memory():
        raise InputError(f"shape {tuple(array.shape)} {array.dtype}: a block of "
                         f"{min(rows, array.shape[0])} rows needs {needed:,} bytes, more than "
                         f"this machine's memory ({_memory():,})", file=path)
    for start in range(0, array.shape[0], rows):
        block = np.asarray(array[start : start + rows])
        if block.dtype.kind in "iu":
            inexact = block.astype(np.float32).astype(np.float64) != block
            if inexact.any():
                row, column = (int(i[0]) for i in np.nonzero(inexact))
                raise InputError(f"{block[row, column]} is not exactly a float32 (activations "
                                 "are stored as float32; convert the array deliberately)",
                                 file=path, row=start + row, column=str(column))
        yield start, block
