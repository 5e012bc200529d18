"""The demo's INVERT labels (Bykov et al. 2023): compositional concept labels of units with
AUROC and p, over three kinds of concepts.

- the digits' labels, for both demo CNNs' logits: a trained logit's best one-concept label
  should be its own digit;
- the labels of the planted model's digits-and-faces set: its two face logits should be
  labelled `face` and `nonface`;
- the concepts the simulated naming study's annotators used (per stimulus), for the
  classifier.2 units they annotated (formulas marking at least 2 % of the stimuli: with
  INVERT's default 0, a formula of one or two stimuli can reach a high AUROC by chance).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ingest.demos import steps
from unitsel.analyses.invert import Search, run_invert
from unitsel.concept_masks import ingest_concept_masks
from unitsel.warehouse import connection

LABELS = "labels"  # each set's concept set of its own labels
NAMING_SEARCH = Search(min_fraction=0.02)


def best_concepts(root: Path, model_id: str, stimulus_set: str, layer: str,
                  concept_set: str) -> pl.DataFrame:
    """Per unit its best single concept by AUROC (ties: the first name), with p."""
    with connection(root) as con:
        return con.execute(
            "SELECT unit, concept, auroc, p FROM unit_concept_auroc($1, $2, $3, 'none', $4) "
            "QUALIFY row_number() OVER (PARTITION BY unit ORDER BY auroc DESC, concept) = 1 "
            "ORDER BY unit", [model_id, stimulus_set, layer, concept_set]).pl()


def run_invert_demo(root: Path, digits: str, classes: list[str], logits: str,
                    model_ids: list[str], planted: tuple[str, str, tuple[int, ...]],
                    naming: tuple[str, str], progress: bool = True) -> list[str]:
    """INVERT on the demo's logits (`model_ids`: trained first), the planted model's logits
    (model, stimulus set, planted units) and the naming study's layer (study, layer) of the
    trained model; returns the lines to print."""
    step = steps(root, progress)
    lines = []
    step(ingest_concept_masks, digits, LABELS, labels=True)
    for model_id in model_ids:
        step(run_invert, model_id, digits, logits, "none", LABELS)
        best = best_concepts(root, model_id, digits, logits, LABELS)
        own = best.filter(pl.col("concept") == pl.Series([classes[u] for u in best["unit"]]))
        lines.append(f"INVERT {model_id} logits: best single label is the unit's own digit "
                     f"for {own.height}/{best.height}, mean AUROC {best['auroc'].mean():.3f}, "
                     f"largest p {best['p'].max():.1e}")
    planted_model, planted_set, units = planted
    step(ingest_concept_masks, planted_set, LABELS, labels=True)
    step(run_invert, planted_model, planted_set, logits, "none", LABELS)
    best = best_concepts(root, planted_model, planted_set, logits, LABELS)
    lines.append("INVERT planted face logits: " + ", ".join(
        f"unit {u} '{c}' AUROC {a:.3f}" for u, c, a, _ in best.filter(
            pl.col("unit").is_in(units)).rows()))
    study, layer = naming
    step(ingest_concept_masks, digits, study, studies=[study])
    labels = step(run_invert, model_ids[0], digits, layer, "none", study, NAMING_SEARCH)
    with connection(root) as con:
        named = con.execute(
            "SELECT feature AS unit, mode(concept) AS most_named FROM annotations "
            "WHERE study_id = $1 AND concept IS NOT NULL GROUP BY ALL", [study]).pl()
    best = labels.filter(pl.col("rank") == 1).join(named, on="unit")
    agree = best.filter(pl.col("concepts").list.contains(pl.col("most_named")))
    lines.append(f"INVERT {model_ids[0]} {layer} over the naming study's concepts: "
                 f"{best.height} annotated units, best formula's AUROC median "
                 f"{best['auroc'].median():.3f}, {int((best['q'] < 0.05).sum())} with q < 0.05, "
                 f"{agree.height} name the unit's most-named concept")
    return lines
