"""Labels CSV -> stimuli (and, when given, correctness) frames.

Format: a header, then one row per stimulus. Required columns `stimulus,label`; optional
`wnid`, `uri` (image path relative to the image folder), `is_correct` (true/false/1/0).
`stimulus` ids must be exactly 0..n-1 (any order): stimulus i is row i of an activation array
or the i-th image. Errors name the file's line number (the header is line 1) and the column.
"""

from __future__ import annotations

import csv
import posixpath
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from unitsel import storage
from unitsel.errors import InputError

REQUIRED = ("stimulus", "label")
OPTIONAL = ("wnid", "uri", "is_correct")
# Labels, wnids and uris are text for people; a field longer than this is a mistake (a
# missing quote swallowing the file), reported with its line.
MAX_TEXT = 1000
MAX_FIELD = 2**31 - 1
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def read_labels(path: Path | str) -> pl.DataFrame:
    """Parse and validate a labels CSV into a frame sorted by stimulus.

    Columns: stimulus (Int32), label, wnid, uri (String, NULL when absent or empty) and
    is_correct (Boolean, NULL when absent).
    """
    path = Path(path)
    text = read_text(path)
    try:
        return _parse(path, text)
    except csv.Error as error:  # a quoting the csv module cannot read
        raise InputError(f"not CSV: {error}", file=path) from None


def read_text(path: Path) -> str:
    """A CSV file's text: UTF-8, with or without a byte-order mark (spreadsheets write one).
    Undecodable bytes are reported with their line."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror or error}", file=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte {data[error.start]:#x}); save the file as "
                         "UTF-8", file=path, row=line) from None


def _parse(path: Path, text: str) -> pl.DataFrame:
    csv.field_size_limit(MAX_FIELD)  # longer fields get a located error below, not csv's
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    if header is None:
        raise InputError("the file is empty; expected a header 'stimulus,label'", file=path)
    header = [h.strip() for h in header]
    repeated = [c for c in dict.fromkeys(header) if header.count(c) > 1]
    if repeated:
        raise InputError("repeated column", file=path, row=1, column=repeated[0])
    check_columns(header, REQUIRED, OPTIONAL, path)
    records: dict[str, list[object]] = {c: [] for c in REQUIRED + OPTIONAL}
    seen: dict[int, int] = {}
    for line, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields where the header has {len(header)}",
                             file=path, row=line)
        values = dict(zip(header, (v.strip() for v in row), strict=True))
        records["stimulus"].append(_stimulus(values["stimulus"], seen, path, line))
        if not values["label"]:
            raise InputError("empty label", file=path, row=line, column="label")
        for column in ("label", "wnid", "uri"):
            if len(values.get(column) or "") > MAX_TEXT:
                raise InputError(f"{len(values[column])} characters; at most {MAX_TEXT}",
                                 file=path, row=line, column=column)
        if values.get("uri"):
            why = uri_problem(values["uri"])
            if why:
                raise InputError(why, file=path, row=line, column="uri")
        records["label"].append(values["label"])
        for column in ("wnid", "uri"):
            records[column].append(values.get(column) or None)
        records["is_correct"].append(_boolean(values.get("is_correct"), path, line))
    frame = pl.DataFrame(
        records,
        schema={"stimulus": pl.Int32(), "label": pl.String(), "wnid": pl.String(),
                "uri": pl.String(), "is_correct": pl.Boolean()},
    )
    if frame.is_empty():
        raise InputError("no stimuli after the header", file=path)
    expected = set(range(frame.height))
    if set(seen) != expected:
        gap = min(expected - set(seen))
        raise InputError(
            f"stimulus ids must be 0..{frame.height - 1}; stimulus {gap} has no row",
            file=path, column="stimulus",
        )
    if "is_correct" in header and frame["is_correct"].null_count():
        line = int(frame["is_correct"].is_null().arg_true()[0]) + 2
        raise InputError("is_correct is empty", file=path, row=line, column="is_correct")
    return frame.sort("stimulus")


def check_columns(header: Sequence[str], required: Sequence[str], optional: Sequence[str],
                  path: Path, row: int | None = 1) -> None:
    """The rule for every user CSV: the required columns, any of the optional ones and no
    others. An unknown column is refused, not ignored: a misspelt optional column (`nmae`)
    would otherwise drop its values without a word. `row` is the header's (None for JSON)."""
    missing = [c for c in required if c not in header]
    extra = [c for c in header if c not in (*required, *optional)]
    if missing or extra:
        raise InputError(
            f"columns must be {list(required)} plus any of {list(optional)}; "
            f"missing {missing}, unexpected {extra}",
            file=path, row=row, column=(missing or extra)[0],
        )


def image_uris(paths: Sequence[str], where: Callable[[int], dict[str, Any]]) -> list[str]:
    """The `uri` of each image path another tool listed: the paths as listed when all are
    relative paths inside their folder; otherwise each path relative to the folder all of
    them share, so absolute paths (from the machine that ran the model) keep their class
    folders and stay distinct (base names alone collide: `a/0.jpg`, `b/0.jpg`).
    `where(i)` locates path i for InputError; refused: a path that still is no uri (absolute
    beside relative ones) and two different paths that become one uri (`/d/a/x.jpg`,
    `/d/a/./x.jpg`); one path listed twice is one image, shown twice."""
    uris = list(paths)
    if any(uri_problem(path) for path in paths):
        parts = [PurePosixPath(posixpath.normpath(p.replace("\\", "/"))).parts for p in paths]
        folders = [p[:-1] for p in parts]
        shared = next((n for n, level in enumerate(zip(*folders, strict=False))
                       if len(set(level)) > 1), min(map(len, folders)))
        uris = ["/".join(p[shared:]) for p in parts]
    for index, uri in enumerate(uris):
        if uri_problem(uri):
            raise InputError(f"{paths[index]!r} shares no folder with the other paths: it "
                             "cannot be stored as a path inside the stimulus set's folder",
                             **where(index))
    seen: dict[str, int] = {}
    for index, uri in enumerate(uris):
        first = seen.setdefault(uri, index)
        if paths[first] != paths[index]:
            other = str(InputError("", **where(first))).removesuffix(": ")
            raise InputError(f"{paths[index]!r} would be stored as uri {uri!r}, like "
                             f"{paths[first]!r} ({other})", **where(index))
    return uris


def uri_problem(uri: str) -> str | None:
    """Why `uri` cannot locate an image inside its stimulus set's folder, or None: it must be
    a relative path that stays inside (no absolute path, drive, `..` or backslash)."""
    parts = PurePosixPath(uri).parts
    if uri.startswith(("/", "\\")) or "\\" in uri or ":" in (parts[0] if parts else "") \
            or ".." in parts:
        return (f"must be a relative path inside the stimulus set's image folder (no '..', "
                f"no absolute path), got {uri!r}")
    return None


def _stimulus(text: str, seen: dict[int, int], path: Path, line: int) -> int:
    try:
        stimulus = int(text)
    except ValueError:
        raise InputError(f"{text!r} is not an integer", file=path, row=line,
                         column="stimulus") from None
    if not 0 <= stimulus < 2**31:
        raise InputError(f"{stimulus} is out of range (ids are 0..n-1)", file=path, row=line,
                         column="stimulus")
    if stimulus in seen:
        raise InputError(f"duplicate stimulus {stimulus} (first on line {seen[stimulus]})",
                         file=path, row=line, column="stimulus")
    seen[stimulus] = line
    return stimulus


def _boolean(text: str | None, path: Path, line: int) -> bool | None:
    if text is None or text == "":
        return None
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise InputError(f"{text!r} is not one of {sorted(_BOOLEANS)}", file=path, row=line,
                         column="is_correct") from None


def image_file(folder: str, uri: str) -> str | None:
    """The image a stored `uri` names inside a stimulus set's image `folder` (on disk or in a
    bucket, `unitsel.lake.images_path`), or None (with a logged warning) when the path would
    lead outside that folder (on disk also through a link): only images inside a warehouse's
    image folders are ever shown or served."""
    import logging

    if uri_problem(uri) is None:
        if storage.is_remote(folder):
            return storage.join(folder, uri)
        inside = Path(folder).resolve()
        path = (inside / uri).resolve()
        if path.is_relative_to(inside):
            return str(path)
    logging.getLogger("unitsel").warning("refused image %r: outside %s", uri, folder)
    return None
