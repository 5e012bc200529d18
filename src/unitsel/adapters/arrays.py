"""Activation arrays users already have -> stimuli x units blocks: `.npy`, `.npz`, HDF5,
and through `array_formats` a torch `.pt` tensor, MATLAB `.mat`, text, `.safetensors`, Zarr.

Gale et al. published their AlexNet activations as HDF5; .npy files are read with plain file
reads and the other formats in row blocks, so memory stays bounded by the block size. Every
format goes through `blocks`, which checks what activations need (numbers, the declared size,
integers a float32 holds).
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

from unitsel.adapters import array_formats
from unitsel.errors import InputError

# Formats that hold one array: a member name (`--dataset`) does not apply.
_ONE_ARRAY = (".npy", ".pt", ".pth", ".txt")
BLOCK_ROWS = 4096
# At most this many bytes of activations a block (float32): a wide layer (10⁴-10⁶ units) is
# read in fewer rows, so a block and the long rows made from it stay small.
BLOCK_BYTES = 64 << 20
MAX_UNITS = 2**31 - 1  # `layers.n_units` and `activations.unit` are INTEGER


class _Flat:
    """An images x (anything) array seen as images x features (C-order), a block at a time;
    `item_shape` is one image's."""

    def __init__(self, array: Any) -> None:
        self.array, self.dtype = array, array.dtype
        self.item_shape = tuple(int(n) for n in array.shape[1:])
        self.shape = (int(array.shape[0]), math.prod(self.item_shape))  # never wraps
        self.chunks = getattr(array, "chunks", None)

    def __getitem__(self, rows: slice) -> np.ndarray:
        block = np.asarray(self.array[rows])
        return block.reshape(len(block), -1)


@contextmanager
def open_array(path: Path | str, dataset: str | None = None,
               flatten: bool = False) -> Iterator[Any]:
    """Open a 2-D numeric array lazily; yields an object with `.shape`, `.dtype` and slicing.
    With `flatten`, an array of two or more dimensions is seen as rows x (the rest, C-order)
    and has `.item_shape`, one row's shape. `dataset` names the member of a file that holds
    several (an `.npz` array, an HDF5 dataset, a `.mat` variable, a tensor, a Zarr array)."""
    path = Path(path)
    with _open(path, dataset) as array:
        yield checked(array, path, flatten)


def checked(array: Any, path: Path | str, flatten: bool = False) -> Any:
    """`array` (an array-like read elsewhere) checked as `open_array` checks what it opens."""
    return _checked(_Flat(array) if flatten and len(array.shape) >= 2 else array, path)


@contextmanager
def _open(path: Path, dataset: str | None) -> Iterator[Any]:
    suffix = path.suffix.lower()
    if path.is_dir():  # a Zarr store is a folder
        arrays = array_formats.zarr_arrays(path)
        if list(arrays) == [""] and dataset is not None:
            raise InputError("does not apply: this Zarr store is one array", file=path,
                             column="--dataset")
        yield arrays[_dataset_name(path, dataset, list(arrays), "array")]
        return
    if not path.is_file():
        raise InputError("no such file", file=path)
    if suffix in _ONE_ARRAY and dataset is not None:
        # never ignored silently: the user meant some other file
        raise InputError(f"does not apply: a {suffix} file holds one array", file=path,
                         column="--dataset")
    if suffix == ".npy":
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
    elif suffix == ".safetensors":
        with array_formats.safetensors_tensors(path) as tensors:
            yield tensors[_dataset_name(path, dataset, list(tensors), "tensor", "--tensor")]
    elif suffix == ".mat":
        variables = array_formats.mat_variables(path)
        yield variables[_dataset_name(path, dataset, list(variables), "variable")]
    elif suffix in (".pt", ".pth"):
        yield array_formats.torch_tensor(path)
    elif suffix == ".txt":
        yield array_formats.TextRows(path)
    else:
        raise InputError(f"unsupported format {suffix!r}; use .npy, .npz, .h5, .safetensors, "
                         ".pt, .mat, .txt or a Zarr folder", file=path)


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


def _dataset_name(path: Path, dataset: str | None, names: list[str], what: str = "dataset",
                  option: str = "--dataset") -> str:
    """The member to read: `dataset`, or the only one there is."""
    held = f"{names[:20]}" + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    if dataset is None:
        if len(names) == 1:
            return names[0]
        raise InputError(f"holds {what}s {held}: name one with {option}", file=path)
    if dataset not in names:
        raise InputError(f"no {what} {dataset!r}; it holds {held}", file=path, column=option)
    return dataset


def _checked(array: Any, path: Path | str) -> Any:
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


def rows_per_block(array: Any) -> int:
    """Rows `blocks` reads at a time: `block_rows`, rounded down to whole chunks (Zarr, HDF5)
    where a chunk is smaller, so no chunk is decoded twice."""
    rows = block_rows(int(array.shape[1]))
    chunk = (getattr(array, "chunks", None) or (0,))[0]
    return rows // chunk * chunk if 0 < chunk <= rows else rows


def blocks(array: Any, path: Path | str, rows: int | None = None
           ) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) pairs covering the array in row order, `rows_per_block` rows a
    block unless `rows` says otherwise. Activations are stored as float32: integers it
    cannot hold exactly (above 2^24) are refused, not rounded."""
    rows = rows or rows_per_block(array)
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
