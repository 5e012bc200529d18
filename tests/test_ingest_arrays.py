"""`unitsel ingest arrays`: the happy path in every format (written by the tools that write
them: numpy, h5py, `safetensors.numpy.save_file`, `zarr`, torch, scipy), and every bad input,
each located, none written."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest
import scipy.io
import torch
import zarr
from click.testing import CliRunner
from safetensors.numpy import save_file

import unitsel
from unitsel.adapters import arrays
from unitsel.cli import cli

RNG = np.random.default_rng(0)


def write_labels(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def good_labels(path: Path, n: int, extra: str = "") -> Path:
    rows = "".join(f"{i},{'cat' if i % 2 else 'dog'}{extra}\n" for i in range(n))
    return write_labels(path, "stimulus,label" + (",is_correct" if extra else "") + "\n" + rows)


def run(root: Path, acts: Path, labels: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, [
        "ingest", "arrays", str(acts), "--labels", str(labels), "--model-id", "m",
        "--stimulus-set", "s", "--layer", "fc6", "--root", str(root), *extra,
    ])


def data_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def write_array(path: Path, acts: np.ndarray, fmt: str) -> Path:
    """`acts` saved as the tool behind `fmt` saves an array; returns the path to import."""
    path = path.with_suffix({"zarr2": ".zarr", "zarr3": ".zarr"}.get(fmt, f".{fmt}"))
    if fmt == "npy":
        np.save(path, acts)
    elif fmt == "npz":
        np.savez(path, fc6=acts)
    elif fmt == "h5":
        with h5py.File(path, "w") as f:
            f.create_dataset("fc6", data=acts)
    elif fmt == "safetensors":
        save_file({"fc6": acts}, path)
    elif fmt.startswith("zarr"):  # chunks of 3 rows: a block reads whole chunks
        z = zarr.create_array(path, shape=acts.shape, chunks=(3, acts.shape[1]),
                              dtype=acts.dtype, zarr_format=int(fmt[-1]))
        z[:] = acts
    elif fmt == "pt":
        torch.save(torch.from_numpy(acts), path)
    elif fmt == "mat":
        scipy.io.savemat(path, {"fc6": acts})
    else:
        np.savetxt(path, acts)
    return path


FORMATS = ["npy", "npz", "h5", "safetensors", "zarr2", "zarr3", "pt", "mat", "txt"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_arrays_round_trip_with_labels_and_correctness(tmp_path: Path, root: Path,
                                                       fmt: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 4 * 4 * 5)  # blocks of 4 rows (3 for Zarr)
    acts = RNG.normal(size=(7, 5)).astype(np.float32)
    path = write_array(tmp_path / "acts", acts, fmt)
    labels = good_labels(tmp_path / "labels.csv", 7, ",true")
    result = run(root, path, labels)
    assert result.exit_code == 0, result.output
    got = unitsel.scan("activations", root).collect().sort("stimulus", "unit")
    np.testing.assert_array_equal(got["activation"].to_numpy().reshape(7, 5), acts)
    with unitsel.connection(root) as con:
        assert con.sql("SELECT count(*) FILTER (label = 'cat'), bool_and(is_correct) "
                       "FROM labelled_activations").fetchone() == (15, True)
        assert con.sql("SELECT n_units, shape FROM layers").fetchone() == (5, [5])
    # Re-running replaces: exactly the same rows, no duplicates.
    assert run(root, path, labels).exit_code == 0
    again = unitsel.scan("activations", root).collect().sort("stimulus", "unit")
    assert again.equals(got)


CASES = {
    # name: (activations, labels CSV text, expected message fragments)
    "non-finite": (np.array([[1.0, np.nan], [0.0, 1.0]]), "stimulus,label\n0,a\n1,b\n",
                   ["acts.npy", "row 0", "column 'unit 1'", "non-finite"]),
    "stimulus without label": (np.ones((3, 2)), "stimulus,label\n0,a\n2,b\n",
                               ["labels.csv", "stimulus 1 has no row"]),
    "row count differs": (np.ones((3, 2)), "stimulus,label\n0,a\n1,b\n",
                          ["acts.npy", "3 rows"]),
    "missing column": (np.ones((2, 2)), "stimulus,name\n0,a\n1,b\n",
                       ["labels.csv", "row 1", "missing ['label']"]),
    "extra column": (np.ones((2, 2)), "stimulus,label,colour\n0,a,r\n1,b,g\n",
                     ["labels.csv", "column 'colour'", "unexpected ['colour']"]),
    "ragged row": (np.ones((2, 2)), "stimulus,label\n0,a\n1,b,extra\n",
                   ["labels.csv", "row 3", "3 fields"]),
    "duplicate stimulus": (np.ones((2, 2)), "stimulus,label\n0,a\n0,b\n",
                           ["labels.csv", "row 3", "duplicate stimulus 0"]),
    "empty label": (np.ones((2, 2)), "stimulus,label\n0,a\n1,\n",
                    ["labels.csv", "row 3", "column 'label'", "empty label"]),
    "non-integer stimulus": (np.ones((2, 2)), "stimulus,label\n0,a\nx,b\n",
                             ["labels.csv", "row 3", "column 'stimulus'"]),
    "bad is_correct": (np.ones((2, 2)), "stimulus,label,is_correct\n0,a,true\n1,b,maybe\n",
                       ["labels.csv", "row 3", "column 'is_correct'"]),
    "wrong dtype": (np.array([["a", "b"], ["c", "d"]]), "stimulus,label\n0,a\n1,b\n",
                    ["acts.npy", "not numeric"]),
    "empty layer": (np.ones((2, 0)), "stimulus,label\n0,a\n1,b\n", ["acts.npy", "empty"]),
    "not 2-D": (np.ones((2, 2, 2)), "stimulus,label\n0,a\n1,b\n", ["acts.npy", "shape"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_located_and_nothing_is_written(tmp_path: Path, root: Path,
                                                     case: str) -> None:
    acts, labels_text, fragments = CASES[case]
    np.save(tmp_path / "acts.npy", acts)
    labels = write_labels(tmp_path / "labels.csv", labels_text)
    unitsel.init(root)
    before = data_files(root), unitsel.current_snapshot(root)
    result = run(root, tmp_path / "acts.npy", labels)
    assert result.exit_code != 0
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert "Traceback" not in result.output
    assert (data_files(root), unitsel.current_snapshot(root)) == before


def test_names_with_quotes_dots_and_slashes_round_trip(tmp_path: Path, root: Path) -> None:
    np.save(tmp_path / "acts.npy", np.eye(2))
    labels = good_labels(tmp_path / "labels.csv", 2)
    result = CliRunner().invoke(cli, [
        "ingest", "arrays", str(tmp_path / "acts.npy"), "--labels", str(labels),
        "--model-id", "o'brien/net \"v1\"", "--stimulus-set", "../set", "--layer",
        "block.1/conv", "--root", str(root)])
    assert result.exit_code == 0, result.output
    with unitsel.connection(root) as con:
        rows = con.sql("SELECT DISTINCT model_id, stimulus_set, layer FROM activations").fetchall()
    assert rows == [("o'brien/net \"v1\"", "../set", "block.1/conv")]
    assert all(p.is_relative_to(root) for p in root.rglob("*"))


def test_changed_stimulus_set_is_refused_unless_replaced(tmp_path: Path, root: Path) -> None:
    np.save(tmp_path / "acts.npy", np.eye(2))
    assert run(root, tmp_path / "acts.npy", good_labels(tmp_path / "a.csv", 2)).exit_code == 0
    relabelled = write_labels(tmp_path / "b.csv", "stimulus,label\n0,cat\n1,cat\n")
    result = run(root, tmp_path / "acts.npy", relabelled)
    assert result.exit_code != 0 and "already exists with different" in result.output
    assert run(root, tmp_path / "acts.npy", relabelled, "--replace-stimuli").exit_code == 0
    assert unitsel.scan("stimuli", root).collect()["label"].to_list() == ["cat", "cat"]


def test_h5_with_several_datasets_needs_a_name(tmp_path: Path, root: Path) -> None:
    with h5py.File(tmp_path / "acts.h5", "w") as f:
        f.create_dataset("fc6", data=np.ones((2, 3)))
        f.create_dataset("fc7", data=np.zeros((2, 4)))
    labels = good_labels(tmp_path / "labels.csv", 2)
    result = run(root, tmp_path / "acts.h5", labels)
    assert result.exit_code != 0 and "name one with --dataset" in result.output
    assert run(root, tmp_path / "acts.h5", labels, "--dataset", "fc7").exit_code == 0
    assert unitsel.scan("activations", root).select(pl.len()).collect().item() == 8


def test_every_tensor_of_a_safetensors_file_is_a_layer(tmp_path: Path, root: Path) -> None:
    tensors = {"blocks.0.hook_resid_post": RNG.normal(size=(6, 4)).astype(np.float32),
               "sae.latents": np.maximum(RNG.normal(size=(6, 9)), 0).astype(np.float16),
               "counts": RNG.integers(0, 100, size=(6, 2)).astype(np.int64)}
    save_file(tensors, tmp_path / "acts.safetensors")
    labels = good_labels(tmp_path / "labels.csv", 6)
    result = CliRunner().invoke(cli, [
        "ingest", "arrays", str(tmp_path / "acts.safetensors"), "--labels", str(labels),
        "--model-id", "m", "--stimulus-set", "s", "--all-tensors", "--root", str(root)])
    assert result.exit_code == 0, result.output
    got = unitsel.scan("activations", root).collect()
    for name, expected in tensors.items():
        layer = got.filter(pl.col("layer") == name).sort("stimulus", "unit")
        np.testing.assert_array_equal(layer["activation"].to_numpy().reshape(6, -1),
                                      expected.astype(np.float32))
    with unitsel.connection(root) as con:
        assert sorted(con.sql("SELECT layer, n_units FROM layers").fetchall()) == [
            ("blocks.0.hook_resid_post", 4), ("counts", 2), ("sae.latents", 9)]


def test_bfloat16_tensors_are_widened_exactly(tmp_path: Path, root: Path) -> None:
    from safetensors.torch import save_file as save_torch

    acts = torch.from_numpy(RNG.normal(size=(4, 3)).astype(np.float32)).to(torch.bfloat16)
    save_torch({"fc": acts, "other": torch.zeros(4, 1)}, tmp_path / "acts.safetensors")
    torch.save(acts, tmp_path / "acts.pt")
    labels = good_labels(tmp_path / "labels.csv", 4)
    for path, extra in ((tmp_path / "acts.safetensors", ["--tensor", "fc"]),
                        (tmp_path / "acts.pt", [])):
        assert run(root, path, labels, *extra).exit_code == 0
        got = unitsel.scan("activations", root).collect().sort("stimulus", "unit")
        np.testing.assert_array_equal(got["activation"].to_numpy().reshape(4, 3),
                                      acts.float().numpy())


def test_blocks_cover_whole_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 8 * 4 * 5)  # 8 rows of 5 float32
    z = zarr.create_array(tmp_path / "a.zarr", shape=(20, 5), chunks=(3, 5), dtype="f4")
    z[:] = np.arange(100, dtype=np.float32).reshape(20, 5)
    wide = zarr.create_array(tmp_path / "b.zarr", shape=(20, 5), chunks=(10, 5), dtype="f4")
    with arrays.open_array(tmp_path / "a.zarr") as array:
        assert arrays.rows_per_block(array) == 6
        assert [start for start, _ in arrays.blocks(array, "a.zarr")] == [0, 6, 12, 18]
    with arrays.open_array(tmp_path / "b.zarr") as array:  # a chunk beyond a block: 8 rows
        assert wide.chunks == (10, 5) and arrays.rows_per_block(array) == 8


def _group(path: Path) -> None:
    group = zarr.open_group(path, mode="w")
    group.create_array("fc6", shape=(4, 2), dtype="f4")[:] = 1
    group.create_array("fc7", shape=(4, 3), dtype="f4")[:] = 1


def _zarr(data: np.ndarray, chunks: tuple[int, ...]) -> object:
    def write(path: Path) -> None:
        zarr.create_array(path, shape=data.shape, chunks=chunks, dtype=data.dtype)[:] = data
    return write


def _mat_cells(path: Path) -> None:
    cells = np.empty((4, 2), dtype=object)
    cells[:] = [[np.ones(2)] * 2] * 4
    scipy.io.savemat(path, {"fc": cells})


def _nan_at(shape: tuple[int, int], row: int, column: int, value: float = np.nan) -> np.ndarray:
    data = np.ones(shape, np.float32)
    data[row, column] = value
    return data


FORMAT_CASES = {
    # name: (file, how it is written, options, what the one line must say)
    "unknown tensor": (
        "acts.safetensors", lambda p: save_file({"fc6": np.ones((4, 2), np.float32),
                                                 "fc7": np.ones((4, 3), np.float32)}, p),
        ["--tensor", "fc9"], "acts.safetensors, option --tensor: no tensor 'fc9'; it holds "
                             "['fc6', 'fc7']"),
    "several tensors, none named": (
        "acts.safetensors", lambda p: save_file({"fc6": np.ones((4, 2), np.float32),
                                                 "fc7": np.ones((4, 3), np.float32)}, p),
        [], "acts.safetensors: holds tensors ['fc6', 'fc7']: name one with --tensor"),
    "an infinity in one of all tensors": (
        "acts.safetensors", lambda p: save_file({"fc6": np.ones((4, 2), np.float32),
                                                 "fc7": _nan_at((4, 3), 2, 0, np.inf)}, p),
        ["--all-tensors"], "acts.safetensors[fc7], row 2, column 'unit 0': non-finite "
                           "activation inf"),
    "a tensor of other rows": (
        "acts.safetensors", lambda p: save_file({"fc6": np.ones((4, 2), np.float32),
                                                 "fc7": np.ones((3, 3), np.float32)}, p),
        ["--all-tensors"], "acts.safetensors[fc7]: 3 rows (stimuli) but "),
    "an integer a float32 cannot hold": (
        "acts.safetensors", lambda p: save_file({"fc6": np.array(
            [[1, 2], [3, 2**24 + 1], [0, 0], [0, 0]], np.int64)}, p),
        [], "acts.safetensors, row 1, column '1': 16777217 is not exactly a float32"),
    "not a safetensors file": ("acts.safetensors", lambda p: p.write_bytes(b"\xff" * 64), [],
                               "acts.safetensors: not a readable .safetensors file"),
    "--layer beside --all-tensors": (
        "acts.safetensors", lambda p: save_file({"fc6": np.ones((4, 2), np.float32)}, p),
        ["--all-tensors", "--layer", "fc"], "option --layer: does not apply: with "
                                            "--all-tensors each tensor is the layer"),
    "--tensor for a .npy": ("acts.npy", lambda p: np.save(p, np.ones((4, 2))), ["--tensor", "x"],
                            "acts.npy, option --tensor: does not apply"),
    "a Zarr array of the wrong rank": (
        "acts.zarr", _zarr(np.ones((4, 2, 3), np.float32), (2, 2, 3)), [],
        "acts.zarr: expected a stimuli x units array, got shape (4, 2, 3)"),
    "a NaN in a Zarr array's second chunk": (
        "acts.zarr", _zarr(_nan_at((4, 3), 3, 1), (2, 3)), [],
        "acts.zarr, row 3, column 'unit 1': non-finite activation nan"),
    "a Zarr group, no array named": ("acts.zarr", _group, [],
                                     "acts.zarr: holds arrays ['fc6', 'fc7']: name one with "
                                     "--dataset"),
    "a folder that is no Zarr store": ("acts.zarr", lambda p: p.mkdir(), [],
                                       "acts.zarr: not a readable Zarr store"),
    "a .mat cell array": ("acts.mat", _mat_cells, [],
                          "acts.mat: variable 'fc' is a MATLAB cell, not numbers"),
}


@pytest.mark.parametrize("case", sorted(FORMAT_CASES))
def test_bad_arrays_in_other_formats_are_located(tmp_path: Path, root: Path,
                                                 case: str) -> None:
    name, write, options, says = FORMAT_CASES[case]
    write(tmp_path / name)
    labels = good_labels(tmp_path / "labels.csv", 4)
    unitsel.init(root)
    before = data_files(root), unitsel.current_snapshot(root)
    args = ["ingest", "arrays", str(tmp_path / name), "--labels", str(labels), "--model-id",
            "m", "--stimulus-set", "s", "--root", str(root), *options]
    if "--all-tensors" not in options:
        args += ["--layer", "fc6"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and says in result.output, result.output
    assert "Traceback" not in result.output and result.output.count("Error:") == 1
    assert (data_files(root), unitsel.current_snapshot(root)) == before
