"""Demo warehouses: the `unitsel demo` builders and the data and models they make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from unitsel.warehouse import Transaction


def steps(root: Path, progress: bool = True) -> Callable[..., Any]:
    """`step(job, *args)` runs `job(tx, *args)` as a job of its own, one commit, as the CLI
    runs one command after another."""
    def step(job: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with Transaction(root, progress=progress) as tx:
            return job(tx, *args, **kwargs)
    return step
