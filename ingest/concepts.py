"""`unitsel ingest concepts`: a concept set (class labels -> WordNet noun synsets)."""

from __future__ import annotations

from pathlib import Path

import click

from unitsel.concepts import BUILT_IN, built_in, ingest_concepts, read_csv
from unitsel.errors import InputError
from unitsel.options import job, root_option


@click.command("concepts")
@click.argument("concept_set")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help=f"label,wnid CSV in class-index order; omit for the built-in {BUILT_IN}.")
@root_option
def concepts_command(concept_set: str, csv_file: Path | None, root: Path) -> None:
    """Map a concept set's labels to WordNet noun synsets."""
    labels = read_csv(csv_file) if csv_file else built_in(concept_set)
    if labels.is_empty():  # writing it would replace the concept set with nothing
        raise InputError("holds no rows after the header; a concept set needs at least one "
                         "label,wnid row", file=csv_file)
    with job(root) as tx:
        frame = ingest_concepts(tx, concept_set, labels)
    click.echo(f"concepts {concept_set}: {frame.height} labels, e.g. "
               + ", ".join(f"{label}={name}" for label, name in
                           frame.select("label", "name").head(3).rows()))
