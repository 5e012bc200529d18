"""thingsvision output folders imported: every layout its `save_features` writes (five
formats, whole or split, `.mat` keyed by file names or `features`), labels from class folders
of absolute or relative paths or a CSV, pooled 4-D features; each checked against numpy on
the same arrays, and each bad folder refused in one located line with nothing written."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest
import scipy.io
import torch
from click.testing import CliRunner

import unitsel
from unitsel.adapters import arrays
from unitsel.cli import cli

from .test_selectivity import METRICS, assert_same, reference

NAMES = [f"{c}/img{i}.jpg" for c in ("n02084071", "n02121620", "n02084071", "n01440764")
         for i in range(2)]  # 8 images, class folders interleaved
# As thingsvision's ImageDataset lists them when given an absolute root: root/class/file.
ABSOLUTE = [f"/data/things/{c}/{n}.jpg" for c in ("cat", "dog", "n01440764")
            for n in ("a", "b", "c")] + ["/data/things/dog/d.jpg"]


def save_like_thingsvision(features: np.ndarray, folder: Path, fmt: str,
                           n_splits: int = 0) -> None:
    """Write `features` as thingsvision 2.7.3's `save_features(features, folder, fmt)` does
    (thingsvision/utils/storing/helpers.py; the package itself needs TensorFlow, so it is
    not installed here): `features.<fmt>`; with `n_splits` (its fallback on a MemoryError,
    `split_features`) `n_splits - 1` splits cut at `np.linspace(0, n, n_splits)`, numbered
    from 01, as files or as datasets of one `features.hdf5`. A `.mat` holds a variable per
    image named by its file_names.txt line without the image suffix when that file exists,
    else `features` (the whole array, in every split: thingsvision's own slip)."""
    names_file = folder / "file_names.txt"
    keys = ([re.sub(r".(eps|jpg|jpeg|png|PNG|tif|tiff)$", "", line.strip())
             for line in names_file.read_text().splitlines()] if names_file.exists() else None)
    bounds = (np.linspace(0, len(features), n_splits, dtype=int) if n_splits
              else np.array([0, len(features)]))
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds), start=1):
        name = f"features_{i:02d}" if n_splits else "features"
        part = features[lo:hi]
        if fmt == "npy":
            np.save(folder / f"{name}.npy", part)
        elif fmt == "pt":  # a view: torch.save keeps its whole storage, as thingsvision's do
            torch.save(torch.from_numpy(features)[lo:hi], folder / f"{name}.pt")
        elif fmt == "hdf5":
            with h5py.File(folder / "features.hdf5", "a") as handle:
                handle.create_dataset(name, data=part)
        elif fmt == "mat":
            scipy.io.savemat(folder / f"{name}.mat", dict(zip(keys[lo:hi], part, strict=True))
                             if keys else {"features": features if n_splits else part})
        else:
            np.savetxt(folder / f"{name}.txt", part)


def _folder(tmp_path: Path, fmt: str, features: np.ndarray, names: list[str] = NAMES,
            n_splits: int = 0) -> Path:
    folder = tmp_path / f"{fmt}-{n_splits}"
    folder.mkdir()
    (folder / "file_names.txt").write_text("".join(f"{name}\n" for name in names))
    save_like_thingsvision(features, folder, fmt, n_splits)
    return folder


def _features(n: int = len(NAMES), shape: tuple[int, ...] = (2, 3, 2)) -> np.ndarray:
    rng = np.random.default_rng(4)
    return np.maximum(rng.normal(size=(n, *shape)), 0).astype(np.float32)  # C x H x W


def _ingest(folder: Path, root: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["ingest", "thingsvision", str(folder), "--model-id",
                                      "clip", "--stimulus-set", "things", "--layer",
                                      "visual", *extra, "--root", str(root)])
    return result.output if result.exit_code == 0 else "FAILED " + result.output


def _activations(root: Path, pool: str = "none") -> np.ndarray:
    rows = (unitsel.scan("activations", root).filter(pl.col("pool") == pool).collect()
            .sort("stimulus", "unit"))
    return rows["activation"].to_numpy().reshape(rows["stimulus"].n_unique(), -1)


LAYOUTS = [(fmt, n_splits) for fmt in ("npy", "pt", "hdf5", "mat", "txt") for n_splits in (0, 4)]


@pytest.mark.parametrize(("fmt", "n_splits"), LAYOUTS,
                         ids=[f"{f}-{'split' if n else 'whole'}" for f, n in LAYOUTS])
def test_every_save_features_layout_imports_exactly(tmp_path: Path, fmt: str, n_splits: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # 4-D features (2-D for text, which thingsvision refuses to write otherwise), absolute
    # paths, blocks of 2 rows: every split is read in several blocks.
    features = _features(len(ABSOLUTE), (12,) if fmt == "txt" else (2, 3, 2))
    monkeypatch.setattr(arrays, "BLOCK_BYTES", 2 * 4 * 12)
    folder = _folder(tmp_path, fmt, features, ABSOLUTE, n_splits)
    if n_splits:  # 3 splits of 3, 3 and 4 rows
        assert len([p for p in folder.iterdir() if p.name.startswith("features")]) == (
            1 if fmt == "hdf5" else 3)
    root = tmp_path / "warehouse"
    assert not _ingest(folder, root).startswith("FAILED")
    np.testing.assert_array_equal(_activations(root), features.reshape(len(features), -1))
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["label"].to_list() == [p.split("/")[3] for p in ABSOLUTE]
    assert stimuli["uri"].to_list() == [p.removeprefix("/data/things/") for p in ABSOLUTE]
    assert stimuli["wnid"].to_list() == [p if p.startswith("n0") else None
                                         for p in stimuli["label"]]
    with unitsel.connection(root) as con:
        assert con.sql("SELECT pool, n_units, shape FROM layers").fetchall() == [
            ("none", 12, list(features.shape[1:]))]


def test_selectivity_of_relative_paths_and_a_rerun_replaces(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    features = _features()
    assert not _ingest(_folder(tmp_path, "npy", features), root).startswith("FAILED")
    flat = features.reshape(len(NAMES), -1)  # thingsvision's flatten_acts, C-order
    labels = [name.split("/")[0] for name in NAMES]
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["uri"].to_list() == NAMES and stimuli["label"].to_list() == labels
    assert stimuli["wnid"].to_list() == labels
    with unitsel.connection(root) as con:
        rows = con.sql("SELECT * FROM unit_selectivity('clip', 'things', 'visual', 'none')").pl()
    assert_same(rows.select(METRICS).to_dicts(), reference(flat, labels))
    (tmp_path / "again").mkdir()
    assert not _ingest(_folder(tmp_path / "again", "npy", features), root).startswith("FAILED")
    assert unitsel.scan("activations", root).collect().height == flat.size  # replaced


def test_mat_keyed_features_and_earlier_unitsel_names(tmp_path: Path) -> None:
    """A .mat saved before file_names.txt existed holds `features`; `features.h5` and
    splits from `features_00.npy` (what unitsel documented before) still import."""
    features = _features()
    flat = features.reshape(len(NAMES), -1)
    folders = {name: tmp_path / name for name in ("mat", "h5", "from-00")}
    for folder in folders.values():
        folder.mkdir()
    save_like_thingsvision(features, folders["mat"], "mat")  # no file_names.txt yet
    assert scipy.io.whosmat(folders["mat"] / "features.mat")[0][0] == "features"
    with h5py.File(folders["h5"] / "features.h5", "w") as handle:
        handle.create_dataset("features", data=features)
    for i, start in enumerate(range(0, len(NAMES), 3)):
        np.save(folders["from-00"] / f"features_{i:02d}.npy", features[start:start + 3])
    for name, folder in folders.items():
        (folder / "file_names.txt").write_text("\n".join(NAMES) + "\n")
        root = tmp_path / f"warehouse-{name}"
        assert not _ingest(folder, root).startswith("FAILED"), name
        np.testing.assert_array_equal(_activations(root), flat)


def test_pools_are_the_torch_ingests_per_channel(tmp_path: Path) -> None:
    features = _features(len(NAMES), (3, 4, 5)) - 0.2  # negative values: l2 is not the sum
    folder = _folder(tmp_path, "hdf5", features, n_splits=3)
    root = tmp_path / "warehouse"
    assert not _ingest(folder, root, "--pools", "none,mean,max,l2").startswith("FAILED")
    maps = features.astype(np.float64).reshape(len(NAMES), 3, -1)
    expected = {"mean": maps.mean(axis=2), "max": maps.max(axis=2),
                "l2": np.sqrt((maps**2).sum(axis=2))}
    for pool, matrix in expected.items():
        np.testing.assert_allclose(_activations(root, pool), matrix, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(_activations(root, "none"), features.reshape(len(NAMES), -1))
    with unitsel.connection(root) as con:
        assert sorted(con.sql("SELECT pool, n_units, shape FROM layers").fetchall()) == [
            ("l2", 3, [3]), ("max", 3, [3]), ("mean", 3, [3]), ("none", 60, [3, 4, 5])]


def test_windows_paths_keep_their_class_folders(tmp_path: Path) -> None:
    paths = [f"C:\\data\\things\\{name.replace('/', chr(92))}" for name in NAMES]
    root = tmp_path / "warehouse"
    assert not _ingest(_folder(tmp_path, "npy", _features(), paths), root).startswith("FAILED")
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["uri"].to_list() == NAMES
    assert stimuli["label"].to_list() == [name.split("/")[0] for name in NAMES]


def test_labels_csv_keyed_by_file_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "npy", _features())
    root = tmp_path / "warehouse"
    csv = tmp_path / "labels.csv"
    csv.write_text("file_name,label\n" + "".join(f"{n},{'dog' if 'n0208' in n else 'other'}\n"
                                                for n in NAMES))
    assert not _ingest(folder, root, "--labels", str(csv)).startswith("FAILED")
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["label"].to_list()[:4] == ["dog", "dog", "other", "other"]
    assert stimuli["wnid"].null_count() == len(NAMES)
    other = tmp_path / "other-root"
    csv.write_text("file_name,label\n" + f"{NAMES[0]},dog\n")
    assert f"no label for {NAMES[1]!r}" in _ingest(folder, other, "--labels", str(csv))
    (folder / "file_names.txt").write_text("\n".join(NAMES[:-1]) + "\n")
    assert "7 file names for 8 feature rows" in _ingest(folder, other)
    assert not other.exists()  # nothing was written by the refused imports


def _splits(*widths: int, numbers: tuple[int, ...] = (1, 2, 3)) -> Callable[[Path], None]:
    """npy splits of 3, 3 and 2 rows with these features per image, numbered `numbers`."""
    def write(folder: Path) -> None:
        rows = [3, 3, 2]
        for number, width, n in zip(numbers, widths, rows, strict=False):
            np.save(folder / f"features_{number:02d}.npy", np.ones((n, width), np.float32))
    return write


def _hdf5(**datasets: np.ndarray) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        with h5py.File(folder / "features.hdf5", "w") as handle:
            for name, data in datasets.items():
                handle.create_dataset(name, data=data)
    return write


def _mat_keyed(names: list[str]) -> Callable[[Path], None]:
    return lambda folder: scipy.io.savemat(
        folder / "features.mat", {name: np.ones(3, np.float32) for name in names})


def _mat_splits_saved_without_file_names(folder: Path) -> None:
    names = (folder / "file_names.txt").rename(folder.parent / "names.txt")
    save_like_thingsvision(np.ones((4, 3), np.float32), folder, "mat", 3)
    names.rename(folder / "file_names.txt")


def _nan_in_third_split(folder: Path) -> None:
    save_like_thingsvision(np.ones((8, 6), np.float32), folder, "npy", 4)  # splits of 2, 3, 3
    third = np.load(folder / "features_03.npy")
    third[1, 4] = np.nan
    np.save(folder / "features_03.npy", third)


BAD = {
    # name: (how the folder is written, extra options, what the one line must say)
    "a split missing from the middle": (
        _splits(4, 4, 4, numbers=(1, 2, 4)), (),
        "tv: features_03.npy is missing (the splits here run from features_01.npy to "
        "features_04.npy)"),
    "an HDF5 split missing": (
        _hdf5(features_01=np.ones((4, 2)), features_03=np.ones((4, 2))), (),
        "features.hdf5: dataset features_02 is missing (the splits here run from dataset "
        "features_01 to dataset features_03)"),
    "splits of different widths": (
        _splits(4, 5, 4), (),
        "features_02.npy: 5 features per image where "),
    "HDF5 splits of different shapes": (
        _hdf5(features_01=np.ones((4, 2, 3)), features_02=np.ones((4, 3, 2))), (),
        "features.hdf5[features_02]: 3x2 features per image where "),
    "a .mat whose keys are not file_names.txt's": (
        _mat_keyed(["a/0", "a/1", "b/zero", "b/1"]), (),
        "features.mat: no variable 'b/0' for file_names.txt line 3"),
    "a .mat with a variable file_names.txt lacks": (
        _mat_keyed(["a/0", "a/1", "b/0", "b/1", "c/0"]), (),
        "features.mat: variable 'c/0' is not a file name of file_names.txt's lines 1..4"),
    "thingsvision's .mat splits of the whole array": (
        _mat_splits_saved_without_file_names, (),
        "features_02.mat: holds all 4 rows, as features_01.mat does: thingsvision's "
        "split_features writes the whole array into every .mat split"),
    "pools of 2-D features": (
        lambda folder: np.save(folder / "features.npy", np.ones((4, 3), np.float32)),
        ("--pools", "mean"), "option --pools: does not apply: "),
    "no features": (lambda folder: None, (), "tv: expected thingsvision's features.npy, .pt, "
                                             ".hdf5, .mat or .txt, or its splits"),
    "two layouts": (
        lambda folder: (np.save(folder / "features.npy", np.ones((4, 3))),
                        np.save(folder / "features_01.npy", np.ones((4, 3)))),
        (), "found ['features.npy', 'features_01.npy']"),
    "an HDF5 file of other datasets": (
        _hdf5(feats=np.ones((4, 2))), (),
        "features.hdf5: holds ['feats']; expected thingsvision's dataset `features`"),
    "a ragged text row": (
        lambda folder: (folder / "features.txt").write_text("1 2 3\n4 5 6\n7 8\n9 1 2\n"),
        (), "features.txt, row 2: line 3 holds 2 numbers where the first row holds 3"),
    "a word in the text": (
        lambda folder: (folder / "features.txt").write_text("1 2 3\n4 5 6\n7 x 8\n9 1 2\n"),
        (), "features.txt, row 2: line 3: 'x' is not a number"),
    "a NaN in the third split": (
        _nan_in_third_split, (), "features_03.npy, row 1, column 'unit 4': non-finite"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_folders_are_refused_in_one_located_line(tmp_path: Path, case: str) -> None:
    write, options, says = BAD[case]
    folder = tmp_path / "tv"
    folder.mkdir()
    names = ["a/0.jpg", "a/1.jpg", "b/0.jpg", "b/1.jpg"] + (
        ["c/0.jpg", "c/1.jpg", "c/2.jpg", "c/3.jpg"] if case == "a NaN in the third split"
        else [])
    (folder / "file_names.txt").write_text("\n".join(names) + "\n")
    write(folder)
    root = tmp_path / "warehouse"
    output = _ingest(folder, root, *options)
    assert output.startswith("FAILED") and says in output, output
    assert "Traceback" not in output and output.count("Error:") == 1, output
    assert not root.exists()  # nothing was written
