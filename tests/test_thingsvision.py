"""thingsvision output folders (features.npy / .h5 / .pt, chunked features_XX.npy, and
file_names.txt) imported; activations, labels and uris checked against the arrays."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import unitsel
from unitsel.cli import cli

from .test_selectivity import METRICS, assert_same, reference

NAMES = [f"{c}/img{i}.jpg" for c in ("n02084071", "n02121620", "n02084071", "n01440764")
         for i in range(2)]  # 8 images, class folders interleaved


def _features() -> np.ndarray:
    rng = np.random.default_rng(4)
    return np.maximum(rng.normal(size=(len(NAMES), 2, 3, 2)), 0).astype(np.float32)  # C x H x W


def _folder(tmp_path: Path, kind: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir()
    (folder / "file_names.txt").write_text("\n".join(NAMES) + "\n")
    feats = _features()
    if kind == "npy":
        np.save(folder / "features.npy", feats)
    elif kind == "chunks":
        for i, start in enumerate(range(0, len(NAMES), 3)):
            np.save(folder / f"features_{i:02d}.npy", feats[start:start + 3])
    elif kind == "h5":
        with h5py.File(folder / "features.h5", "w") as handle:
            handle.create_dataset("features", data=feats)
    else:
        torch.save(torch.from_numpy(feats), folder / "features.pt")
    return folder


def _ingest(folder: Path, root: Path, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["ingest", "thingsvision", str(folder), "--model-id",
                                      "clip", "--stimulus-set", "things", "--layer",
                                      "visual", *extra, "--root", str(root)])
    return result.output if result.exit_code == 0 else "FAILED " + result.output


@pytest.mark.parametrize("kind", ["npy", "chunks", "h5", "pt"])
def test_every_features_format_imports_the_same_rows(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "warehouse"
    assert not _ingest(_folder(tmp_path, kind), root).startswith("FAILED")
    flat = _features().reshape(len(NAMES), -1)  # thingsvision's flatten_acts, C-order
    labels = [name.split("/")[0] for name in NAMES]
    stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
    assert stimuli["uri"].to_list() == NAMES and stimuli["label"].to_list() == labels
    assert stimuli["wnid"].to_list() == labels
    with unitsel.connection(root) as con:
        rows = con.sql("SELECT * FROM unit_selectivity('clip', 'things', 'visual', 'none')").pl()
    assert_same(rows.select(METRICS).to_dicts(), reference(flat, labels))
    (tmp_path / "again").mkdir()
    assert not _ingest(_folder(tmp_path / "again", kind), root).startswith("FAILED")
    assert unitsel.scan("activations", root).collect().height == flat.size  # replaced


def test_labels_csv_keyed_by_file_name_and_bad_folders(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "npy")
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
    np.save(folder / "features_00.npy", _features())
    assert "expected one of features.npy" in _ingest(folder, other)
    assert not other.exists()  # nothing was written by the refused imports
