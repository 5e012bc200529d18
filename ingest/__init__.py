"""Ingest jobs: one small module per (table, source), each a `unitsel ingest <job>` command."""

from __future__ import annotations

import click

from unitsel.cli import scheduler_option


@click.group()
@scheduler_option
def ingest() -> None:
    """Write activations, labels and predictions into the warehouse."""


# Importing the job modules registers their commands on the group above.
from ingest import (  # noqa: E402, F401
    activations,
    arrays,
    concepts,
    embeddings,
    gale,
    lesions,
    people,
    sams,
    texts,
    thingsvision,
)
