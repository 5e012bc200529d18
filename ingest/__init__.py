"""Ingest jobs: one small module per (table, source), each a `unitsel ingest <job>` command
registered under the `unitsel.ingest` entry points (pyproject.toml)."""

from __future__ import annotations

import click

from unitsel.options import Group, scheduler_option


@click.group(cls=Group, plugins="unitsel.ingest")
@scheduler_option
def ingest() -> None:
    """Write activations, labels and predictions into the warehouse."""
