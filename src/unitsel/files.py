"""Folders of files the tables point at (images, study packages, corpora), replaced whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def replaced_folder(final: Path) -> Iterator[Path]:
    """A staging folder to fill, in the nearest folder above `final` that exists (so the
    same file system, and nothing made on the way: a job that fails leaves no new root);
    on success it replaces `final` in one move, on failure it is removed and `final` is
    untouched."""
    above = next(folder for folder in final.parents if folder.exists())
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=above))
    try:
        yield staging
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
