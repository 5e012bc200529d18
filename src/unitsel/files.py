"""Folders of files the tables point at (images, study packages, corpora), replaced whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from unitsel import storage


@contextlib.contextmanager
def replaced_folder(final: Path | str) -> Iterator[Path]:
    """A staging folder to fill; on success it replaces `final` whole, on failure it is
    removed and `final` is untouched. On disk the staging folder is in the nearest folder
    above `final` that exists (so the same file system, and nothing made on the way: a job
    that fails leaves no new root) and replaces `final` in one move. In a bucket, which has
    no moves, it is a local folder whose files are uploaded over `final`'s at the end, then
    the objects it lacks are deleted."""
    if storage.is_remote(str(final)):
        with tempfile.TemporaryDirectory(prefix="unitsel-upload-") as staging:
            yield Path(staging)
            storage.replace_folder(staging, str(final))
        return
    final = Path(final)
    above = next(folder for folder in final.parents if folder.exists())
    staging_path = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=above))
    try:
        yield staging_path
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging_path, final)
    finally:
        shutil.rmtree(staging_path, ignore_errors=True)
