"""Gale et al.'s HDF5 layouts (per-class, merged, normalised merged) built with h5py exactly as
their `merger.py` writes them, imported, and checked against numpy on the same arrays."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import unitsel
from unitsel.cli import cli

from .test_selectivity import METRICS, assert_same, reference

CLASSES = {"n02084071": 5, "n01440764": 3, "n02121620": 4}  # dog, tench, cat: file order
NEURONS = 6
DATASETS = ("activations", "file_names", "label_mappings", "labels")


def _class_data(seed: int, name: str, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"activations": np.maximum(rng.normal(size=(n, NEURONS)), 0).astype(np.float32),
            "file_names": np.array([f"{name}_{i}.JPEG".encode() for i in range(n)]),
            "label_mappings": np.array([name.encode()]),
            "labels": np.zeros(n, np.int32)}


def _write_class(group: h5py.Group, data: dict[str, np.ndarray], name: str) -> None:
    for key in DATASETS:
        group.create_dataset(key, data=data[key])
    group["activations"].attrs["image_count"] = len(data["activations"])
    group["activations"].attrs["neuron_count"] = NEURONS
    group.create_group("activation_labels").create_dataset(name, data=data["labels"])


def layouts(folder: Path) -> dict[str, list[Path]]:
    """The three layouts of the same classes and arrays."""
    data = {name: _class_data(i, name, n) for i, (name, n) in enumerate(CLASSES.items())}
    per_class = []
    for name, d in data.items():
        path = folder / f"{name}_fc7.h5"
        with h5py.File(path, "w") as handle:
            _write_class(handle, d, name)
        per_class.append(path)
    merged, normalised = folder / "AN_merged_all_fc7.h5", folder / "AN_merged_all_fc7_norm.h5"
    with h5py.File(merged, "w") as handle:
        for name, d in data.items():
            _write_class(handle.create_group(name), d, name)
    with h5py.File(normalised, "w") as handle:
        values = handle.create_group("values")
        for name, d in data.items():
            _write_class(values.create_group(name), d, name)
        handle.create_dataset("normalisation_min", data=np.zeros(NEURONS))
        handle.create_dataset("normalisation_max", data=np.ones(NEURONS))
    return {"per-class": per_class, "merged": [merged], "normalised": [normalised]}


def _expected() -> tuple[np.ndarray, list[str], list[str]]:
    """Stimuli in class-name order, then file order: the documented numbering."""
    data = {name: _class_data(i, name, n) for i, (name, n) in enumerate(CLASSES.items())}
    names = sorted(CLASSES)
    acts = np.concatenate([data[n]["activations"] for n in names])
    labels = [n for n in names for _ in range(CLASSES[n])]
    uris = [f"{n}_{i}.JPEG" for n in names for i in range(CLASSES[n])]
    return acts, labels, uris


@pytest.mark.parametrize("layout", ["per-class", "merged", "normalised"])
def test_each_layout_imports_the_same_warehouse(tmp_path: Path, layout: str) -> None:
    files = layouts(tmp_path)[layout]
    root = tmp_path / "warehouse"
    result = CliRunner().invoke(cli, ["ingest", "gale-h5", *map(str, files), "--model-id",
                                      "alexnet", "--stimulus-set", "s", "--layer", "l",
                                      "--wnids", "--root", str(root)])
    assert result.exit_code == 0, result.output
    acts, labels, uris = _expected()
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["label"].to_list() == labels and stimuli["wnid"].to_list() == labels
    assert stimuli["uri"].to_list() == uris
    predictions = unitsel.scan("predictions", root).collect()
    assert predictions["is_correct"].all() and predictions.height == len(labels)
    with unitsel.connection(root) as con:
        rows = con.sql("SELECT * FROM unit_selectivity('alexnet', 's', 'l', 'none')").pl()
        correct = con.sql("SELECT * FROM unit_selectivity('alexnet', 's', 'l', 'none', "
                          "correct_only := true)").pl()
    assert_same(rows.select(METRICS).to_dicts(), reference(acts, labels))
    assert correct.equals(rows)  # every image correct: the subsets agree, as in the paper
    again = CliRunner().invoke(cli, ["ingest", "gale-h5", *map(str, files), "--model-id",
                                     "alexnet", "--stimulus-set", "s", "--layer", "l",
                                     "--root", str(root)])
    assert again.exit_code == 0, again.output  # a re-run replaces, never duplicates
    assert unitsel.scan("activations", root).collect().height == acts.size


def test_bad_files_are_located_and_write_nothing(tmp_path: Path) -> None:
    files = layouts(tmp_path)["per-class"]
    root = tmp_path / "warehouse"

    def refused(paths: list[Path], says: str, *extra: str) -> None:
        result = CliRunner().invoke(cli, ["ingest", "gale-h5", *map(str, paths), "--model-id",
                                          "m", "--stimulus-set", "s", "--layer", "l", *extra,
                                          "--root", str(root)])
        assert result.exit_code != 0 and says in result.output, result.output
        assert not root.exists()

    odd = tmp_path / "n09999999_fc7.h5"
    with h5py.File(odd, "w") as handle:
        data = _class_data(9, "n09999999", 2)
        data["activations"] = np.ones((2, NEURONS + 1), np.float32)
        for key in ("activations", "file_names"):
            handle.create_dataset(key, data=data[key])
    refused([*files, odd], f"n09999999_fc7.h5, column '/activations': class 'n09999999' has "
                           f"{NEURONS + 1} neurons")
    with h5py.File(odd, "w") as handle:
        handle.create_dataset("activations", data=np.ones((2, NEURONS), np.float32))
    refused([odd], "class 'n09999999' has no dataset 'file_names'")
    with h5py.File(odd, "w") as handle:
        handle.create_dataset("activations", data=np.ones((2, NEURONS), np.float32))
        handle.create_dataset("file_names", data=np.array([b"a.JPEG"]))
    refused([odd], "class 'n09999999' has 1 file names for 2 images")
    with h5py.File(odd, "w") as handle:
        handle.create_dataset("activations", data=np.ones((1, NEURONS), np.float32))
        handle.create_dataset("file_names", data=np.array([b"n02084071_0.JPEG"]))
    refused([*files, odd], "image 'n02084071_0.JPEG' is in class 'n02084071' and in class "
                           "'n09999999'")
    dogs = tmp_path / "dog_fc7.h5"
    with h5py.File(dogs, "w") as handle:
        _write_class(handle, _class_data(1, "dog", 2), "dog")
    refused([dogs], "class 'dog' is not a wnid", "--wnids")
    broken = tmp_path / "n01111111_fc7.h5"
    broken.write_bytes(b"not hdf5")
    refused([broken], "n01111111_fc7.h5: cannot read")
    # Without --wnids any class name is a label (wnid NULL).
    result = CliRunner().invoke(cli, ["ingest", "gale-h5", str(dogs), "--model-id", "m",
                                      "--stimulus-set", "s", "--layer", "l", "--root",
                                      str(root)])
    assert result.exit_code == 0, result.output
    stimuli = unitsel.scan("stimuli", root).collect()
    assert stimuli["label"].to_list() == ["dog", "dog"] and stimuli["wnid"].null_count() == 2
    assert pl.Series(stimuli["uri"]).to_list() == ["dog_0.JPEG", "dog_1.JPEG"]
