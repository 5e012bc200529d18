"""`unitsel analyse concepts`: WWW concept scores of a layer (and, for output layers, their
evaluation against the class labels); registered on the CLI by entry points."""

from __future__ import annotations

from pathlib import Path

import click

from unitsel.options import NAME, job, layer_options, root_option


@click.command("concepts")
@layer_options("Probe set: the units' top stimuli.")
@click.option("--encoder", required=True, help="Encoder of the stored image/text embeddings.")
@click.option("--concept-set", type=NAME, required=True, help="Embedded concept texts.")
@click.option("--crop", default="center", show_default=True, help="center or gradcam:<model>.")
@click.option("--similarity", type=click.Choice(["cos", "tvmf"]), default="cos",
              show_default=True)
@click.option("--kappa", default=8.0, show_default=True, help="t-vMF concentration.")
@click.option("--n", default=40, show_default=True, help="Top stimuli per unit.")
@click.option("--alpha", default=0.95, show_default=True, help="Concept sensitivity.")
@click.option("--inclusive", is_flag=True,
              help="Count scores equal to alpha x max as concepts too (>=; WWW says 'above').")
@click.option("--template", default="a photo of a", show_default=True)
@click.option("--labels", "label_set", default=None,
              help="Concept set of the output classes: also evaluate (F1, hit rate, cos).")
@root_option
def concepts(model_id: str, stimulus_set: str, layer: str, pool: str, encoder: str,
             concept_set: str, crop: str, similarity: str, kappa: float, n: int, alpha: float,
             inclusive: bool, template: str, label_set: str | None, root: Path) -> None:
    """WWW concept scores per unit -> concept_scores (+ concept_evaluation with --labels)."""
    from unitsel.adapters.encoders import SentenceTransformerText
    from unitsel.analyses.concept_scores import run_concept_scores, run_evaluation

    with job(root) as tx:
        result = run_concept_scores(tx, model_id, stimulus_set, layer, pool, encoder,
                                    concept_set, crop, similarity, kappa, n, alpha, template,
                                    inclusive=inclusive)
    click.echo(f"concept_scores: {result.filter('is_concept').height} concepts of "
               f"{result['unit'].n_unique()} units")
    if label_set is not None:
        with job(root) as tx:  # a job of its own: it reads the scores just committed
            click.echo(run_evaluation(tx, model_id, stimulus_set, layer, pool, encoder, crop,
                                      similarity, concept_set, label_set,
                                      SentenceTransformerText()))
