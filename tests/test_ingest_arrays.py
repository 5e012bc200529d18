"""`unitsel ingest arrays`: the happy path and every bad input, each located, none written."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import unitsel
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


@pytest.mark.parametrize("fmt", ["npy", "npz", "h5"])
def test_arrays_round_trip_with_labels_and_correctness(tmp_path: Path, root: Path,
                                                       fmt: str) -> None:
    acts = RNG.normal(size=(7, 5)).astype(np.float32)
    path = tmp_path / f"acts.{fmt}"
    if fmt == "npy":
        np.save(path, acts)
    elif fmt == "npz":
        np.savez(path, fc6=acts)
    else:
        with h5py.File(path, "w") as f:
            f.create_dataset("fc6", data=acts)
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
