"""`unitsel ingest concept-masks`: a concept set of a stimulus set for INVERT's labels: its
labels, the WordNet synsets above them, the concepts of annotation studies and users' CSVs."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl

from unitsel.concept_masks import ingest_concept_masks
from unitsel.options import NAME, job, root_option


@click.command("concept-masks")
@click.option("--stimulus-set", type=NAME, required=True, help="The stimuli the masks mark.")
@click.option("--concept-set", type=NAME, required=True, help="Name of the concept set written.")
@click.option("--labels", is_flag=True, help="Each label of the set, a concept of its own.")
@click.option("--hypernyms", is_flag=True,
              help="Every WordNet synset above the labels, covering the labels below it.")
@click.option("--wnids", "wnids_from", type=NAME, default=None,
              help="Concept set (`unitsel ingest concepts`) mapping the labels to wnids for "
                   "--hypernyms; default: the stimuli's wnid column.")
@click.option("--annotations", "studies", type=NAME, multiple=True,
              help="Study whose named concepts mark the stimuli they were named on "
                   "(repeatable).")
@click.option("--file", "files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV stimulus,concept, many rows per stimulus (repeatable).")
@root_option
def concept_masks_command(stimulus_set: str, concept_set: str, labels: bool, hypernyms: bool,
                          wnids_from: str | None, studies: tuple[str, ...],
                          files: tuple[Path, ...], root: Path) -> None:
    """Write the concept masks of a stimulus set (replaces the concept set)."""
    with job(root) as tx:
        frame = ingest_concept_masks(tx, stimulus_set, concept_set, labels=labels,
                                     hypernyms=hypernyms, wnids_from=wnids_from,
                                     studies=studies, files=files)
    per_kind = frame.group_by("kind").agg(pl.col("concept").n_unique()).sort("kind")
    click.echo(f"concept_masks {concept_set} of {stimulus_set}: "
               + ", ".join(f"{n} {kind}" for kind, n in per_kind.rows()) + " concepts")
