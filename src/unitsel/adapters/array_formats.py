"""Readers of the array files other tools write, beyond `.npy` / `.npz` / HDF5: a torch
`.pt` tensor, MATLAB `.mat` variables, `np.savetxt` text, `.safetensors` and Zarr (v2, v3).

Each gives an array-like (`.shape`, `.dtype`, slicing by rows returns numpy) that reads only
the rows asked for where the format allows it, so `arrays.blocks` validates and streams every
format the same way. Containers (safetensors, Zarr groups, `.mat`) give a mapping from member
name to such an array; no member's data is read before its rows are asked for.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from unitsel.errors import InputError

# MATLAB classes (`scipy.io.whosmat`) that are numbers, as numpy reads them: a logical is
# read as uint8. Others (char, cell, struct, sparse, object) are not activations.
_MAT_CLASSES = {"double": "f8", "single": "f4", "int8": "i1", "uint8": "u1", "int16": "i2",
                "uint16": "u2", "int32": "i4", "uint32": "u4", "int64": "i8", "uint64": "u8",
                "logical": "u1"}
# safetensors dtypes numpy holds; the rest (BF16, the F8 kinds) are widened to float32,
# exactly, as they are read.
_SAFETENSORS_DTYPES = {"F64": "f8", "F32": "f4", "F16": "f2", "I64": "i8", "I32": "i4",
                       "I16": "i2", "I8": "i1", "U64": "u8", "U32": "u4", "U16": "u2",
                       "U8": "u1", "BOOL": "?"}


def torch_tensor(path: Path) -> Any:
    """The one tensor a `.pt` file holds, memory-mapped when the file is torch.save's zip
    format (since torch 1.6), so a block of rows reads only its pages. (A slice saved by
    torch.save keeps its whole storage: thingsvision's `.pt` splits are each as large as all
    the features.)"""
    import torch

    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True,
                            mmap=zipfile.is_zipfile(path))
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError) as error:
        raise InputError(f"cannot read: {error}", file=path) from None
    if not isinstance(tensor, torch.Tensor) or tensor.ndim == 0:
        # e.g. a dict of several modules' features: which one is meant is not ours to guess
        held = (f"a {type(tensor).__name__}" if not isinstance(tensor, torch.Tensor)
                else f"a tensor of shape {tuple(tensor.shape)}")
        keys = f" with keys {list(tensor)[:5]}" if isinstance(tensor, dict) else ""
        raise InputError(f"holds {held}{keys}; expected one tensor of images x features "
                         "(save that module's features alone)", file=path)
    return _TorchRows(tensor)


class _TorchRows:
    def __init__(self, tensor: Any) -> None:
        self.tensor, self.shape = tensor, tuple(tensor.shape)
        numpy_dtype = str(tensor.dtype).removeprefix("torch.")
        self.exact = numpy_dtype in np.sctypeDict  # bfloat16 / float8 are widened to float32
        self.dtype = np.dtype(numpy_dtype if self.exact else "f4")

    def __getitem__(self, rows: slice) -> np.ndarray:
        block = self.tensor[rows]
        return np.asarray((block if self.exact else block.float()).numpy())


def mat_variables(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB (v4-v7.2) `.mat` file by name, each read whole when first
    sliced (scipy reads a variable at once); shapes and classes come from the headers."""
    return {name: _MatVariable(path, name, shape, cls) for name, shape, cls in _whosmat(path)}


def mat_rows(path: Path, names: Sequence[str]) -> Any:
    """Variables `names` of a `.mat` file, one per image and all of one shape and class,
    seen as images x (that shape) and read a block of variables at a time."""
    shapes = {name: (shape, cls) for name, shape, cls in _whosmat(path)}
    first = shapes[names[0]]
    odd = next((n for n in names if shapes[n] != first), None)
    if odd is not None:
        raise InputError(f"variable {odd!r} is {shapes[odd][1]} {shapes[odd][0]} where "
                         f"{names[0]!r} is {first[1]} {first[0]}", file=path)
    # savemat writes a 1-D vector as a 1 x n matrix: one image's n features.
    shape = first[0][1:] if len(first[0]) == 2 and first[0][0] == 1 else first[0]
    return _MatImages(path, list(names), shape, first[1])


def _whosmat(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, shape, MATLAB class) of each variable, from the headers alone."""
    import scipy.io

    try:
        return [(name, tuple(shape), cls) for name, shape, cls in scipy.io.whosmat(path)]
    except (OSError, ValueError, TypeError, NotImplementedError) as error:
        # NotImplementedError: a v7.3 file, which is HDF5 (read it as .h5, transposed)
        raise InputError(f"not a readable .mat file ({error})", file=path) from None


def _mat_dtype(path: Path, name: str, cls: str) -> np.dtype:
    if cls not in _MAT_CLASSES:
        raise InputError(f"variable {name!r} is a MATLAB {cls}, not numbers", file=path)
    return np.dtype(_MAT_CLASSES[cls])


class _MatVariable:
    def __init__(self, path: Path, name: str, shape: tuple[int, ...], cls: str) -> None:
        self.path, self.name, self.shape, self.cls = path, name, shape, cls
        self._whole: np.ndarray | None = None

    @property
    def dtype(self) -> np.dtype:  # checked when the variable is chosen, not when listed
        return _mat_dtype(self.path, self.name, self.cls)

    def __getitem__(self, rows: slice) -> np.ndarray:
        import scipy.io

        if self._whole is None:
            self._whole = scipy.io.loadmat(self.path, variable_names=[self.name])[self.name]
        return np.asarray(self._whole[rows])


class _MatImages:
    def __init__(self, path: Path, names: list[str], shape: tuple[int, ...], cls: str) -> None:
        self.path, self.names = path, names
        self.shape, self.dtype = (len(names), *shape), _mat_dtype(path, names[0], cls)

    def __getitem__(self, rows: slice) -> np.ndarray:
        import scipy.io

        wanted = self.names[rows]
        loaded = scipy.io.loadmat(self.path, variable_names=wanted)
        return np.stack([loaded[name] for name in wanted]).reshape(len(wanted), *self.shape[1:])


class TextRows:
    """`np.savetxt` output: a row per line, numbers separated by white space (`#` lines and
    blank lines skipped). A first pass counts the rows; blocks are parsed as they are read,
    in order. Rows in errors are the array's (0-based); the message gives the line."""

    def __init__(self, path: Path) -> None:
        self.path, self.dtype = path, np.dtype("f8")
        width, rows = 0, 0
        for _, text in self._lines():
            width = width or len(text.split())
            rows += 1
        self.shape = (rows, width)
        self._read: Iterator[tuple[int, str]] | None = None
        self._next = 0  # the row `_read` is at

    def _lines(self) -> Iterator[tuple[int, str]]:
        try:
            with self.path.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if text.strip() and not text.lstrip().startswith("#"):
                        yield number, text
        except OSError as error:
            raise InputError(f"cannot read: {error.strerror or error}", file=self.path) from None

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        if self._read is None or start < self._next:  # `blocks` reads in order
            self._read, self._next = self._lines(), 0
        lines = list(islice(self._read, start - self._next, stop - self._next))
        self._next = stop
        try:
            return np.loadtxt([text for _, text in lines], dtype=self.dtype, ndmin=2)
        except ValueError:
            pass  # found and located below
        for row, (number, text) in enumerate(lines, start=start):
            fields = text.split()
            if len(fields) != self.shape[1]:
                raise InputError(f"line {number} holds {len(fields)} numbers where the first "
                                 f"row holds {self.shape[1]}", file=self.path, row=row)
            bad = next((f for f in fields if not _is_number(f)), None)
            if bad is not None:
                raise InputError(f"line {number}: {bad[:40]!r} is not a number",
                                 file=self.path, row=row)
        raise InputError(f"rows {start}..{stop - 1} cannot be read as numbers", file=self.path,
                         row=start)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@contextmanager
def safetensors_tensors(path: Path) -> Iterator[dict[str, Any]]:
    """The tensors of a `.safetensors` file by name, each read a block of rows at a time
    from the memory-mapped file."""
    from safetensors import SafetensorError, safe_open

    try:
        handle = safe_open(str(path), framework="pt")
    except (SafetensorError, OSError) as error:
        raise InputError(f"not a readable .safetensors file ({error})", file=path) from None
    opened: Any = handle  # safetensors' stubs leave its methods untyped
    with opened:
        # safe_open is no mapping: its names come from keys() alone
        yield {name: _TensorRows(opened.get_slice(name))
               for name in opened.keys()}  # noqa: SIM118


class _TensorRows:
    def __init__(self, tensor: Any) -> None:
        self.tensor, self.shape = tensor, tuple(tensor.get_shape())
        self.exact = tensor.get_dtype() in _SAFETENSORS_DTYPES
        self.dtype = np.dtype(_SAFETENSORS_DTYPES.get(tensor.get_dtype(), "f4"))

    def __getitem__(self, rows: slice) -> np.ndarray:
        block = self.tensor[rows]
        return np.asarray((block if self.exact else block.float()).numpy())


def zarr_arrays(path: Path) -> dict[str, Any]:
    """A Zarr store (format 2 or 3) as its arrays by path inside it (`""` for a store that is
    one array). Rows are read through Zarr, which decodes only the chunks they touch."""
    import zarr

    try:
        node = zarr.open(store=str(path), mode="r")
    except (zarr.errors.BaseZarrError, OSError, ValueError) as error:
        raise InputError(f"not a readable Zarr store ({error})", file=path) from None
    if isinstance(node, zarr.Array):
        return {"": _ZarrRows(node, path)}
    return {name: _ZarrRows(member, path)
            for name, member in sorted(node.members(max_depth=None), key=lambda m: m[0])
            if isinstance(member, zarr.Array)}


class _ZarrRows:
    def __init__(self, array: Any, path: Path) -> None:
        self.array, self.path = array, path
        self.shape, self.dtype = tuple(array.shape), array.dtype
        # Rows a read should cover whole: a shard holds many chunks and is read at once.
        self.chunks = array.shards or array.chunks

    def __getitem__(self, rows: slice) -> np.ndarray:
        try:
            return np.asarray(self.array[rows])
        except (RuntimeError, ValueError, OSError) as error:  # a damaged chunk
            start, stop, _ = rows.indices(self.shape[0])
            raise InputError(f"cannot read rows {start}..{stop - 1}: {error}", file=self.path,
                             row=start) from None
