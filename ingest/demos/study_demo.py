"""The demo's human studies — SIMULATED: no public data of this kind exists, so `unitsel demo`
generates both studies from the demo warehouse and marks them `simulated` in `studies` (and in
their ids). They exercise the real path: export, CSV files, ingest, analyses.

- `simulated-gale-ratings`: the study package of both demo CNNs' logits (panels of their
  s-AMS), then 10 simulated raters per panel; a rater says yes with probability 0.2 + 0.7 x the
  unit's top-class selectivity and names the unit's digit ('seven') with probability equal to
  that selectivity, else a distractor ('squiggle', 'line', 'circle', 'number'). Gale's Table 1
  per model follows.
- `simulated-naming`: the significant features of the trained CNN's read-out (classifier.3 over
  the 32 classifier.2 units) on the held-out digits for their own class; five simulated
  annotators name each activation with a latent concept of its feature, each with a habit
  (skipping weak activations, merging, renaming, splitting, noise). Every agreement table
  follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ingest.demos import steps
from ingest.people import ingest_readout, read_annotations, read_ratings, write_study
from unitsel.analyses.agreement import run_agreement
from unitsel.analyses.ratings import run_rating_summary
from unitsel.study import export_study
from unitsel.warehouse import Transaction, connection

if TYPE_CHECKING:
    from torch import nn

RATINGS_STUDY = "simulated-gale-ratings"
NAMING_STUDY = "simulated-naming"
DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DISTRACTORS = ["squiggle", "line", "circle", "number"]
CONCEPTS = ["loop", "vertical stroke", "horizontal bar", "curve", "diagonal stroke", "hook",
            "tail", "arc"]


def simulate_ratings(manifest: pl.DataFrame, selectivity: dict[tuple[str, int], float],
                     label: dict[tuple[str, int], str], raters: int = 10,
                     seed: int = 0) -> pl.DataFrame:
    """Ratings rows (with `panel`) for every panel of a manifest."""
    rng = np.random.default_rng(seed)
    rows = []
    for trial, row in enumerate(manifest.iter_rows(named=True)):
        key = (row["model_id"], row["unit"])
        s = selectivity[key]
        for r in range(raters):
            yes = bool(rng.random() < min(0.95, 0.2 + 0.7 * s))
            name = ""
            if yes:
                name = (DIGIT_WORDS[int(label[key])] if rng.random() < s
                        else str(rng.choice(DISTRACTORS)))
            rows.append({"rater_id": f"rater-{r:02d}", "panel": row["panel"], "trial": trial,
                         "response": "yes" if yes else "no", "name": name})
    return pl.DataFrame(rows)


def _name(annotator: int, concept: str, stimulus: int, rng: np.random.Generator) -> str:
    """Annotator habits: 1 as is, 2 merges arcs into curves, 3 says 'line' for strokes,
    4 splits loops into top and bottom, 5 relabels 10 % at random."""
    if annotator == 2 and concept == "arc":
        return "curve"
    if annotator == 3:
        return concept.replace("stroke", "line")
    if annotator == 4 and concept == "loop":
        return "top loop" if stimulus % 2 else "bottom loop"
    if annotator == 5 and rng.random() < 0.1:
        return str(rng.choice(CONCEPTS))
    return concept


def simulate_annotations(features: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """Annotation rows for significant activations (stimulus, label, feature, rank)."""
    rng = np.random.default_rng(seed)
    rows = []
    for annotator in range(1, 6):
        keep = 0.95 - 0.05 * annotator  # later annotators skip more weak activations
        for row in features.iter_rows(named=True):
            named = row["rank"] == 1 or rng.random() < keep - 0.3
            concept = CONCEPTS[row["feature"] % len(CONCEPTS)]
            rows.append({"annotator_id": f"annotator-{annotator}", "model_id": row["model_id"],
                         "stimulus_set": row["stimulus_set"], "stimulus": row["stimulus"],
                         "label": row["label"], "feature": row["feature"],
                         "concept": _name(annotator, concept, row["stimulus"], rng)
                         if named else ""})
    return pl.DataFrame(rows)


def run_studies(root: Path, model: nn.Module, stimulus_set: str, logits: str,
                classes: list[str], model_ids: list[str]) -> list[str]:
    """Both simulated studies end to end (`model` is the trained CNN, `model_ids[0]`)."""
    folder = root / "studies"
    units = [(m, logits, "none", u) for m in model_ids for u in range(len(DIGIT_WORDS))]
    step = steps(root)
    manifest = step(export_study, RATINGS_STUDY, units, folder / RATINGS_STUDY, lists=2)
    with connection(root) as con:
        top = con.execute(
            "SELECT model_id, unit, top_class_selectivity, top_label FROM selectivity "
            "WHERE stimulus_set = $1 AND layer = $2 AND pool = 'none' AND subset = 'all'",
            [stimulus_set, logits]).fetchall()
    selectivity = {(m, u): max(0.0, float(s)) for m, u, s, _ in top}
    label = {(m, u): lab for m, u, _, lab in top}
    ratings_csv = folder / f"{RATINGS_STUDY}.csv"
    simulate_ratings(manifest, selectivity, label).write_csv(ratings_csv)
    with Transaction(root) as tx:
        write_study(tx, RATINGS_STUDY, "ratings", read_ratings(tx, ratings_csv, RATINGS_STUDY),
                    True, "SIMULATED raters judging s-AMS panels of the demo CNNs' logits")
    summary = step(run_rating_summary, RATINGS_STUDY, stimulus_set, stimulus_set)

    trained = model_ids[0]
    step(ingest_readout, dict(model.named_modules())[logits], trained, logits, classes)
    with connection(root) as con:
        features = con.execute(
            "SELECT f.* FROM significant_features($1, $2, $3, 'classifier.2') f "
            "JOIN stimuli s ON s.stimulus_set = f.stimulus_set AND s.stimulus = f.stimulus "
            "WHERE f.label = s.label AND f.stimulus % 5 = 0",
            [trained, stimulus_set, logits]).pl()
    annotations_csv = folder / f"{NAMING_STUDY}.csv"
    simulate_annotations(features).write_csv(annotations_csv)
    with Transaction(root) as tx:
        write_study(tx, NAMING_STUDY, "annotations",
                    read_annotations(tx, annotations_csv, NAMING_STUDY), True,
                    "SIMULATED annotators naming significant classifier.2 activations of the "
                    "trained demo CNN on held-out digits")
    agreement = step(run_agreement, NAMING_STUDY)["annotation_agreement"]
    return [
        "simulated Gale study, % yes: " + ", ".join(
            f"{m} {p:.0f} %" for m, p in summary.select("model_id", "pct_yes").rows()),
        f"simulated naming study: {features.height} significant activations, mean D = 1 "
        f"agreement {agreement['d1_agreement'].mean():.2f}, D = 2 "
        f"{agreement['d2_agreement'].mean():.2f}",
    ]
