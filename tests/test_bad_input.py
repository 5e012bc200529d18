"""The bad-input catalogue, table-driven: each bad input is run through the command a user
would type and must exit non-zero with one line naming where the problem is (the file, the
CSV line with the header as line 1, the column or the option), print no traceback, and leave
the warehouse exactly as it was (a checksum of every file and the catalog's newest snapshot).
"""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import unitsel
from unitsel.adapters import arrays
from unitsel.cli import cli
from unitsel.errors import InputError

from .conftest import checksum

LABELS = "stimulus,label\n" + "".join(f"{i},c{i % 2}\n" for i in range(4))


@dataclass(frozen=True)
class Case:
    """One bad input: files to write into the case folder, the command, what it must say."""

    name: str
    files: dict[str, str | bytes | Callable[[Path], None]]
    args: list[str]
    says: str
    existing: bool = False  # run against a warehouse that already holds a model


def _npy(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array, allow_pickle=True)


def _truncated(path: Path) -> None:
    np.save(path, np.ones((4, 3), np.float32))
    path.write_bytes(path.read_bytes()[:-8])


def _arrays(*extra: str, acts: str = "acts.npy", labels: str = "labels.csv") -> list[str]:
    return ["ingest", "arrays", acts, "--labels", labels, "--model-id", "m",
            "--stimulus-set", "s", "--layer", "fc", *extra]


ANNOTATIONS = "annotator_id,model_id,stimulus_set,stimulus,label,feature,concept\n"


def _annotations() -> list[str]:
    return ["ingest", "annotations", "--study-id", "st", "--file", "a.csv"]


GOOD = {"acts.npy": _npy(np.arange(12, dtype=np.float32).reshape(4, 3)), "labels.csv": LABELS}


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A .npy file whose header declares `shape` (float32) over a few bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": shape})
    return buffer.getvalue() + bytes(64)


def _npz_declaring(shape: tuple[int, ...]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("acts.npy", _npy_header(shape))
    return write


def _h5(build: Callable[[h5py.File], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with h5py.File(path, "w") as handle:
            build(handle)
    return write


def _pt(value: object) -> Callable[[Path], None]:
    return lambda path: torch.save(value, path)


def _gale_class(name: str, acts: np.ndarray, file_names: list[bytes] | None = None
                ) -> Callable[[Path], None]:
    """A per-class file of Gale et al.'s layout (as tests/test_gale.py builds them)."""
    names = file_names or [f"{name}_{i}.JPEG".encode() for i in range(len(acts))]
    return _h5(lambda h: (h.create_dataset("activations", data=acts),
                          h.create_dataset("file_names", data=np.array(names))))


def _gale(*files: str) -> list[str]:
    return ["ingest", "gale-h5", *files, "--model-id", "g", "--stimulus-set", "gs",
            "--layer", "l"]


def _things(*extra: str) -> list[str]:
    return ["ingest", "thingsvision", "tv", "--model-id", "t", "--stimulus-set", "ts",
            "--layer", "v", *extra]


FEATURES = _npy(np.ones((4, 3), np.float32))
TV_NAMES = "a/0.jpg\na/1.jpg\nb/0.jpg\nb/1.jpg\n"
TV_LABELS = "file_name,label\n" + "".join(f"{n},x\n" for n in TV_NAMES.split())
RATINGS = "rater_id,trial,response,model_id,layer,pool,unit,name\n"

CASES = [
    # Arrays that are not numbers, or not whole.
    Case("object npy", {**GOOD, "acts.npy": _npy(np.array([[{}], [1]] * 2, dtype=object))},
         _arrays(), "acts.npy: holds Python objects"),
    Case("truncated npy", {**GOOD, "acts.npy": _truncated}, _arrays(),
         "acts.npy: the file ends early"),
    Case("random bytes npy", {**GOOD, "acts.npy": bytes(range(256)) * 4}, _arrays(),
         "acts.npy: not a readable .npy file"),
    Case("empty npy", {**GOOD, "acts.npy": b""}, _arrays(), "acts.npy: not a readable .npy"),
    Case("corrupt h5", {**GOOD, "acts.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 64},
         _arrays(acts="acts.h5"), "acts.h5: cannot read"),
    Case("int64 not exact in float32",
         {**GOOD, "acts.npy": _npy(np.array([[16777217], [0], [1], [2]], dtype=np.int64))},
         _arrays(), "acts.npy, row 0, column '0': 16777217 is not exactly a float32"),
    # Labels files.
    Case("labels missing", {"acts.npy": GOOD["acts.npy"]}, _arrays(),
         "labels.csv: cannot read"),
    Case("labels a directory", {"acts.npy": GOOD["acts.npy"], "labels.csv/x": "x"},
         _arrays(), "labels.csv: cannot read"),
    Case("labels not UTF-8", {**GOOD, "labels.csv": b"stimulus,label\n0,caf\xe9\n"},
         _arrays(), "labels.csv, row 2: not UTF-8 text"),
    Case("label too long", {**GOOD, "labels.csv": "stimulus,label\n0," + "x" * 140_000 + "\n"},
         _arrays(), "labels.csv, row 2, column 'label': 140000 characters"),
    Case("stimulus id out of range",
         {**GOOD, "labels.csv": "stimulus,label\n2147483648,a\n1,b\n2,a\n3,b\n"},
         _arrays(), "labels.csv, row 2, column 'stimulus': 2147483648 is out of range"),
    Case("two label columns", {**GOOD, "labels.csv": "stimulus,label,label\n0,a,b\n"},
         _arrays(), "labels.csv, row 1, column 'label': repeated column"),
    Case("uri escapes the image folder",
         {**GOOD, "labels.csv": "stimulus,label,uri\n0,a,../../../../etc/passwd\n1,b,x.png\n"
                                "2,a,y.png\n3,b,z.png\n"},
         _arrays(), "labels.csv, row 2, column 'uri': must be a relative path inside"),
    Case("absolute uri",
         {**GOOD, "labels.csv": "stimulus,label,uri\n0,a,/etc/passwd\n1,b,x.png\n2,a,y.png\n"
                                "3,b,z.png\n"},
         _arrays(), "labels.csv, row 2, column 'uri': must be a relative path inside"),
    # Names and options.
    Case("model id too long", GOOD, [*_arrays()[:5], "--model-id", "m" * 300, *_arrays()[7:]],
         "Invalid value for '--model-id': 300 characters"),
    Case("model id with a control character", GOOD,
         [*_arrays()[:5], "--model-id", "a\tb", *_arrays()[7:]],
         "Invalid value for '--model-id': control characters"),
    Case("empty state", GOOD, _arrays("--state", ""),
         "Invalid value for '--state': must not be empty"),
    Case("empty stimulus set name", GOOD,
         [*_arrays()[:7], "--stimulus-set", "", *_arrays()[9:]],
         "Invalid value for '--stimulus-set': must not be empty"),
    # Analyses and exports over an existing warehouse.
    Case("export-study units not integers", {},
         ["export-study", "--study-id", "x", "--model-id", "m", "--layer", "fc", "--units",
          "abc", "--out", "pkg"], "Invalid value for '--units': 'abc' is not a unit number",
         existing=True),
    Case("export into a missing folder", {},
         ["metrics", "selectivity", "--model-id", "m", "--stimulus-set", "s", "--out",
          "missing/out.csv"], "missing: no such folder", existing=True),
    # Human data checked against the warehouse (model m, set s with labels c0/c1, layer fc).
    Case("annotation with an empty model id", {"a.csv": ANNOTATIONS + "a1,,s,0,c0,1,ear\n"},
         _annotations(), "a.csv, row 2, column 'model_id': empty model_id", existing=True),
    Case("annotation of an unknown model", {"a.csv": ANNOTATIONS + "a1,zz,s,0,c0,1,ear\n"},
         _annotations(), "a.csv, row 2, column 'model_id': no model", existing=True),
    Case("annotation with another label", {"a.csv": ANNOTATIONS + "a1,m,s,0,c1,1,ear\n"},
         _annotations(), "a.csv, row 2, column 'label': not the stimulus's label",
         existing=True),
    Case("annotation of a negative feature", {"a.csv": ANNOTATIONS + "a1,m,s,0,c0,-1,ear\n"},
         _annotations(), "a.csv, row 2, column 'feature': a feature index is 0 or more",
         existing=True),
    Case("header-only annotations", {"a.csv": ANNOTATIONS}, _annotations(),
         "a.csv: no rows after the header", existing=True),
    Case("header-only ratings", {"r.csv": "rater_id,trial,response,model_id,layer,pool,unit\n"},
         ["ingest", "ratings", "--study-id", "st", "--file", "r.csv"],
         "r.csv: no rows after the header", existing=True),
    Case("decoding with 0 folds", {},
         ["analyse", "decoding", "--model-id", "m", "--stimulus-set", "s", "--layer", "fc",
          "--folds", "0"], "Invalid value for '--folds'", existing=True),
    # Unknown columns are refused as in the labels CSV, and errors name the column at fault.
    Case("misspelt ratings column", {"r.csv": RATINGS.replace("name", "nmae") + "r1,1,yes,m,"
                                              "fc,none,0,dog\n"},
         ["ingest", "ratings", "--study-id", "st", "--file", "r.csv"],
         "r.csv, row 1, column 'nmae': columns must be", existing=True),
    Case("unknown annotations column",
         {"a.csv": ANNOTATIONS.replace("\n", ",notes\n") + "a1,m,s,0,c0,1,ear,x\n"},
         _annotations(), "a.csv, row 1, column 'notes': columns must be", existing=True),
    Case("ratings of an unknown model", {"r.csv": RATINGS + "r1,1,yes,zz,fc,none,0,dog\n"},
         ["ingest", "ratings", "--study-id", "st", "--file", "r.csv"],
         "r.csv, row 2, column 'model_id': no such model", existing=True),
    Case("annotation of an unknown stimulus set",
         {"a.csv": ANNOTATIONS + "a1,m,zz,0,c0,1,ear\n"}, _annotations(),
         "a.csv, row 2, column 'stimulus_set': no such stimulus set", existing=True),
    # thingsvision: labels CSV rows, uris that would collide, files that are not features.
    Case("thingsvision labels twice for a file", {
        "tv/features.npy": FEATURES, "tv/file_names.txt": TV_NAMES,
        "l.csv": TV_LABELS + "b/0.jpg,y\n"}, _things("--labels", "l.csv"),
         "l.csv, row 6, column 'file_name': 'b/0.jpg' is also on row 4, labelled otherwise"),
    Case("thingsvision empty label", {
        "tv/features.npy": FEATURES, "tv/file_names.txt": TV_NAMES,
        "l.csv": TV_LABELS.replace("a/1.jpg,x", "a/1.jpg,")}, _things("--labels", "l.csv"),
         "l.csv, row 3, column 'label': empty label"),
    Case("thingsvision unknown labels column", {
        "tv/features.npy": FEATURES, "tv/file_names.txt": TV_NAMES,
        "l.csv": TV_LABELS.replace("label", "lable")}, _things("--labels", "l.csv"),
         "l.csv, row 1, column 'label': columns must be"),
    Case("thingsvision image listed twice", {
        "tv/features.npy": FEATURES,
        "tv/file_names.txt": "/d/a/0.jpg\n\n/d/b/0.jpg\n/d/a/./0.jpg\n/d/b/1.jpg\n"},
         _things(), "file_names.txt, row 4: '/d/a/./0.jpg' would be stored as uri 'a/0.jpg', "
                    "like '/d/a/0.jpg' (tv/file_names.txt, row 1)"),
    Case("thingsvision absolute beside relative paths", {
        "tv/features.npy": FEATURES, "tv/file_names.txt": "a/0.jpg\n/d/a/1.jpg\nb/0.jpg\n"
                                                           "b/1.jpg\n"},
         _things(), "file_names.txt, row 2: '/d/a/1.jpg' shares no folder"),
    Case("thingsvision .pt holding a dict", {
        "tv/features.pt": _pt({"fc": torch.ones(4, 3)}), "tv/file_names.txt": TV_NAMES},
         _things(), "features.pt: holds a dict with keys ['fc']; expected one tensor"),
    Case("thingsvision header declaring 2^64 values", {
        "tv/features.npy": _npy_header((4, 2**31, 2**31)), "tv/file_names.txt": TV_NAMES},
         _things(), "features.npy: the file ends early: its header says (4, 2147483648, "),
    # gale-h5: located in the file that holds the problem.
    Case("gale NaN in the third file", {
        "n01_l.h5": _gale_class("n01", np.ones((2, 3), np.float32)),
        "n02_l.h5": _gale_class("n02", np.ones((2, 3), np.float32)),
        "n03_l.h5": _gale_class("n03", np.array([[1, 1, 1], [1, 1, np.nan]], np.float32))},
         _gale("n01_l.h5", "n02_l.h5", "n03_l.h5"),
         "n03_l.h5, row 1, column 'unit 2': non-finite activation nan"),
    Case("gale two paths of one uri", {
        "n01_l.h5": _gale_class("n01", np.ones((2, 3), np.float32),
                                [b"/d/n01/x.jpg", b"/d/n01//x.jpg"])},
         _gale("n01_l.h5"), "n01_l.h5, row 1, column '/file_names': '/d/n01//x.jpg' would be "
                            "stored as uri 'x.jpg', like '/d/n01/x.jpg' (n01_l.h5, row 0"),
    Case("gale class name not UTF-8", {
        "m.h5": _h5(lambda h: h.create_group(b"n0\xe9").create_dataset("activations",
                                                                       data=np.ones((2, 3))))},
         _gale("m.h5"), "m.h5: group name b'n0\\xe9' is not UTF-8 text"),
    Case("gale file name not UTF-8", {
        "n01_l.h5": _gale_class("n01", np.ones((2, 3), np.float32), [b"a.jpg", b"\xe9.jpg"])},
         _gale("n01_l.h5"), "n01_l.h5, row 1, column '/file_names': file name b'\\xe9.jpg' "
                            "is not UTF-8"),
    # A header-only concept CSV would replace a concept set with nothing.
    Case("header-only concepts", {"c.csv": "label,wnid\n"},
         ["ingest", "concepts", "toy", "--csv", "c.csv"], "c.csv: holds no rows",
         existing=True),
    # Options that would not apply are refused, not ignored.
    Case("dataset option for a .npy", GOOD, _arrays("--dataset", "x"),
         "acts.npy, option --dataset: does not apply"),
    Case("state option for a recorded model", GOOD, _arrays("--state", "untrained"),
         "option --state: does not apply: model 'm' is already recorded with state 'trained'",
         existing=True),
    # Declared sizes checked before anything is allocated.
    Case("npz declaring 10^12 values", {**GOOD, "acts.npz": _npz_declaring((4, 250 * 10**9))},
         _arrays(acts="acts.npz"), "acts.npz: the file ends early: its header says "
                                   "(4, 250000000000)"),
    Case("h5 declaring 3e9 units", {**GOOD, "acts.h5": _h5(lambda h: h.create_dataset(
        "x", shape=(4, 3 * 10**9), dtype="f4", chunks=(1, 1024)))},
         _arrays(acts="acts.h5"), "acts.h5: shape (4, 3000000000): 3,000,000,000 units"),
    Case("weights holding a tensor", {"w.pt": _pt(torch.ones(3)), "c.txt": "a\nb\n"},
         ["ingest", "readout", "--model-id", "r", "--arch", "resnet18", "--weights", "w.pt",
          "--layer", "fc", "--classes", "c.txt"],
         "w.pt: holds a Tensor; expected a state dict"),
]


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("existing")
    for name, content in GOOD.items():
        _write(folder / name, content)
    result = CliRunner().invoke(cli, [*_arrays(acts=str(folder / "acts.npy"),
                                               labels=str(folder / "labels.csv")),
                                      "--root", str(folder / "warehouse")])
    assert result.exit_code == 0, result.output
    return folder / "warehouse"


def _write(path: Path, content: str | bytes | Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content(path)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_where_it_is_and_writes_nothing(
        case: Case, tmp_path: Path, existing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, content in case.files.items():
        _write(tmp_path / name, content)
    root = tmp_path / "warehouse"
    if case.existing:
        shutil.copytree(existing, root)
    before = checksum(root)
    result = CliRunner().invoke(cli, [*case.args, "--root", str(root)])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert case.says in result.output, result.output
    assert checksum(root) == before, "the warehouse changed"


def test_query_statement_without_a_result_says_what_it_did(existing: Path) -> None:
    result = CliRunner().invoke(cli, ["query", "SET threads = 1", "--root", str(existing)])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: SET ran (no result to print)\n"


def test_a_root_is_a_path_never_a_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Roots named like glob patterns read their own files only; a backslash is refused."""
    monkeypatch.chdir(tmp_path)
    for name, content in GOOD.items():
        _write(tmp_path / name, content)
    _write(tmp_path / "wide.npy", _npy(np.ones((4, 5), np.float32)))
    for root, acts in (("g*", "acts.npy"), ("gx", "wide.npy"), ("w[1]", "acts.npy"),
                       ("w1", "wide.npy")):
        result = CliRunner().invoke(cli, [*_arrays(acts=acts), "--root", root])
        assert result.exit_code == 0, result.output
    for root, rows in (("g*", 12), ("gx", 20), ("w[1]", 12), ("w1", 20)):
        result = CliRunner().invoke(cli, ["query", "SELECT count(*) AS n FROM activations",
                                          "--csv", "--root", root])
        assert result.output == f"n\n{rows}\n", (root, result.output)
    result = CliRunner().invoke(cli, [*_arrays(), "--root", "b\\x"])
    assert result.exit_code != 0 and "may not contain a backslash" in result.output
    assert not (tmp_path / "b\\x").exists() and not (tmp_path / "b").exists()


def test_absolute_paths_keep_their_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """24 images in 8 class folders whose base names repeat, listed as absolute paths: 24
    uris, each relative to the folder they share, in thingsvision and gale-h5 alike."""
    monkeypatch.chdir(tmp_path)
    paths = [f"/data/run/class{c}/img{i}.jpg" for c in range(8) for i in range(3)]
    uris = [path.removeprefix("/data/run/") for path in paths]
    _write(tmp_path / "tv/features.npy", _npy(np.ones((24, 3), np.float32)))
    (tmp_path / "tv/file_names.txt").write_text("\n".join(paths) + "\n")
    for c in range(8):
        _write(tmp_path / f"class{c}_l.h5", _gale_class(
            f"class{c}", np.ones((3, 3), np.float32),
            [p.encode() for p in paths[3 * c:3 * c + 3]]))
    for args in (_things(), _gale(*(f"class{c}_l.h5" for c in range(8)))):
        root = tmp_path / args[1]
        result = CliRunner().invoke(cli, [*args, "--root", str(root)])
        assert result.exit_code == 0, result.output
        stimuli = unitsel.scan("stimuli", root).collect().sort("stimulus")
        assert stimuli["uri"].to_list() == uris, args[1]


def test_a_block_larger_than_memory_is_refused_before_it_is_read() -> None:
    class Declared:  # an HDF5 dataset's shape may declare far more than its file holds
        shape, dtype = (10**6, 10**10), np.dtype("f8")

        def __getitem__(self, rows: slice) -> np.ndarray:
            raise AssertionError("read before the size was checked")

    # One row of a wide array is a block of its own; here even that is more than memory.
    with pytest.raises(InputError, match=r"x.h5: shape \(1000000, 10000000000\) float64: a "
                                         r"block of 1 rows needs 80,000,000,000 bytes"):
        next(arrays.blocks(Declared(), Path("x.h5")))
