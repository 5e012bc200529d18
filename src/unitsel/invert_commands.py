"""`unitsel analyse invert`: INVERT's compositional labels of a layer's units over a concept
set; registered on the CLI by entry points."""

from __future__ import annotations

from pathlib import Path

import click

from unitsel.options import NAME, job, layer_options, root_option


@click.command("invert")
@layer_options("Stimulus set whose concept masks label the units.")
@click.option("--concept-set", type=NAME, required=True,
              help="Concepts (`unitsel ingest concept-masks`).")
@click.option("--max-length", default=3, show_default=True, help="Longest formula (L).")
@click.option("--beam-size", default=10, show_default=True, help="Formulas kept per length (B).")
@click.option("--min-fraction", default=0.0, show_default=True,
              help="Smallest share of stimuli a formula may mark.")
@click.option("--max-fraction", default=0.5, show_default=True,
              help="Largest share of stimuli a formula may mark.")
@click.option("--mode", type=click.Choice(["positive", "negative"]), default="positive",
              show_default=True, help="Highest AUROC, or lowest.")
@click.option("--limit-search", type=int, default=None,
              help="Combine only the most differentiating atoms (default: all).")
@click.option("--correct-only", is_flag=True, help="Only correctly classified stimuli.")
@root_option
def invert(model_id: str, stimulus_set: str, layer: str, pool: str, concept_set: str,
           max_length: int, beam_size: int, min_fraction: float, max_fraction: float,
           mode: str, limit_search: int | None, correct_only: bool, root: Path) -> None:
    """INVERT labels per unit (beam search over AND / OR / NOT) -> unit_labels."""
    from unitsel.analyses.invert import Search, run_invert

    search = Search(max_length, beam_size, min_fraction, max_fraction, mode, limit_search)
    with job(root) as tx:
        result = run_invert(tx, model_id, stimulus_set, layer, pool, concept_set, search,
                            correct_only=correct_only)
    best = result.filter(result["rank"] == 1).sort("auroc", descending=mode == "positive")
    click.echo(f"unit_labels: {best.height} units labelled, {(best['q'] < 0.05).sum()} with "
               "q < 0.05 for their best formula")
    for unit, formula, auroc in best.select("unit", "formula", "auroc").head(3).rows():
        click.echo(f"  unit {unit}: {formula} (AUROC {auroc:.3f})")
