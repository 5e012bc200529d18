"""The bad-input catalogue, table-driven: each bad input is run through the command a user
would type and must exit non-zero with one line naming where the problem is (the file, the
CSV line with the header as line 1, the column or the option), print no traceback, and leave
the warehouse exactly as it was (a checksum of every file and the catalog's newest snapshot).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from unitsel.cli import cli

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
]


def _checksum(root: Path) -> str | None:
    """Every file's path and content (the catalog by its newest snapshot: SQLite may rewrite
    its pages without a change); None when the root does not exist."""
    if not root.exists():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("catalog.sqlite"):
            continue
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    catalog = root / "catalog.sqlite"
    if catalog.exists():
        with sqlite3.connect(catalog) as con:
            digest.update(repr(con.execute(
                "SELECT max(snapshot_id) FROM ducklake_snapshot").fetchone()).encode())
    return digest.hexdigest()


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
    before = _checksum(root)
    result = CliRunner().invoke(cli, [*case.args, "--root", str(root)])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert case.says in result.output, result.output
    assert _checksum(root) == before, "the warehouse changed"


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
