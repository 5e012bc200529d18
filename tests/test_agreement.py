"""Interactive-naming agreement: a hand-worked study, D = 1 / D = 2 against brute force, and
coverage / purity / Jaccard against direct Python implementations."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.optimize import linear_sum_assignment

from unitsel import Transaction
from unitsel.analyses.agreement import (
    compatibility,
    coverage,
    d1_matching,
    d2_matching,
    pair_agreement,
    purity,
    run_agreement,
)
from unitsel.errors import InputError

# (stimulus, feature) -> concept, per annotator; None = seen but unnamed.
HAND = {
    "x": {(0, 0): "eye", (0, 1): "wing", (1, 0): "eye", (1, 1): "wing", (2, 0): "eye",
          (3, 1): None},
    "y": {(0, 0): "head", (0, 1): "wing", (1, 0): "head", (1, 1): None, (2, 0): "eye",
          (3, 1): "wing"},
}


def _annotations(namings: dict[str, dict[tuple[int, int], str | None]],
                 label: str = "a") -> pl.DataFrame:
    return pl.DataFrame([
        {"study_id": "s", "annotator_id": who, "model_id": "m", "stimulus_set": "set",
         "stimulus": stim, "label": label, "feature": feat, "concept": concept}
        for who, naming in namings.items() for (stim, feat), concept in naming.items()
    ], schema_overrides={"stimulus": pl.Int32, "feature": pl.Int32, "concept": pl.String})


def test_hand_worked_study(root: Path) -> None:
    with Transaction(root) as tx:
        tx.write(_annotations(HAND), "annotations")
    with Transaction(root) as tx:
        tables = run_agreement(tx, "s")
    cov = {r["annotator_id"]: r for r in tables["annotation_coverage"].iter_rows(named=True)}
    assert (cov["x"]["activation_coverage"], cov["x"]["partial_coverage"],
            cov["x"]["complete_coverage"]) == (5 / 6, 3 / 4, 3 / 4)
    assert (cov["y"]["activation_coverage"], cov["y"]["partial_coverage"],
            cov["y"]["complete_coverage"]) == (5 / 6, 1.0, 3 / 4)
    assert (cov["any"]["activation_coverage"], cov["any"]["complete_coverage"]) == (1.0, 1.0)
    pur = {r["annotator_id"]: r for r in tables["annotation_purity"].iter_rows(named=True)}
    assert (pur["x"]["cx_purity"], pur["x"]["xc_purity"]) == (1.0, 1.0)
    assert (pur["y"]["cx_purity"], pur["y"]["xc_purity"]) == (1.0, 0.8)
    agreement = tables["annotation_agreement"].row(0, named=True)
    # Both named 4 activations: eye-head twice, wing-wing once, eye-eye once.
    assert agreement["jaccard"] == pytest.approx(4 / 6) and agreement["n_both"] == 4
    assert agreement["d1_agreement"] == 3 / 4  # eye-head + wing-wing
    assert agreement["d2_agreement"] == 1.0  # the star eye-{head, eye} + wing-wing
    matches = tables["annotation_matches"].sort("family", "concept_a", "concept_b")
    assert matches.select("family", "concept_a", "concept_b", "weight").rows() == [
        (1, "eye", "head", 2), (1, "wing", "wing", 1),
        (2, "eye", "eye", 1), (2, "eye", "head", 2), (2, "wing", "wing", 1)]
    counts = tables["naming_counts"].select("n_annotators", "n_activations").rows()
    assert counts == [(0, 0), (1, 2), (2, 4)]
    summary = tables["explanation_summaries"].filter(annotator_id="x")
    assert summary.select("combination", "share").rows() == [
        ("eye + wing", 0.5), ("eye", 0.25), ("unlabeled", 0.25)]
    with Transaction(root) as tx:
        run_agreement(tx, "s")  # re-run replaces
    with pytest.raises(InputError, match="no annotations"), Transaction(root) as tx:
        run_agreement(tx, "other")


def _star_forest(edges: list[tuple[int, int]]) -> bool:
    degree = Counter(node for r, c in edges for node in (("r", r), ("c", c)))
    return all(degree[("r", r)] == 1 or degree[("c", c)] == 1 for r, c in edges)


@pytest.mark.parametrize("seed", range(12))
def test_matchings_against_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 5)))
    weights = rng.integers(0, 5, shape) * (rng.random(shape) < 0.7)
    edges = [(r, c) for r in range(shape[0]) for c in range(shape[1]) if weights[r, c] > 0]

    def total(chosen: list[tuple[int, int]]) -> float:
        return float(sum(weights[r, c] for r, c in chosen))

    best_one_to_one = max(
        (total(list(zip(rows, cols, strict=False)))
         for rows in itertools.permutations(range(shape[0]))
         for cols in itertools.permutations(range(shape[1]))), default=0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    assert total(d1_matching(weights)) == best_one_to_one == weights[rows, cols].sum()
    best_stars = max(total(list(subset)) for k in range(len(edges) + 1)
                     for subset in itertools.combinations(edges, k) if _star_forest(list(subset)))
    chosen = d2_matching(weights)
    assert _star_forest(chosen) and total(chosen) == best_stars


@pytest.mark.parametrize("seed", range(5))
def test_coverage_purity_jaccard_against_direct_python(seed: int) -> None:
    rng = np.random.default_rng(seed)
    activations = [(s, f) for s in range(8) for f in range(3) if rng.random() < 0.7]
    concepts = ["eye", "wing", "tail", "crown"]
    namings = {who: {a: (str(rng.choice(concepts)) if rng.random() < 0.7 else None)
                     for a in activations} for who in ("p", "q", "r")}
    ann = _annotations(namings)
    cov = coverage(ann)
    pur = purity(ann)
    for who, naming in namings.items():
        named = {a: c for a, c in naming.items() if c is not None}
        row = cov.filter(annotator_id=who).row(0, named=True)
        assert row["activation_coverage"] == pytest.approx(len(named) / len(naming))
        stimuli = {s for s, _ in naming}
        partial = sum(any((s, f) in named for f in range(3)) for s in stimuli)
        complete = sum(all(a in named for a in naming if a[0] == s) for s in stimuli)
        assert row["partial_coverage"] == pytest.approx(partial / len(stimuli))
        assert row["complete_coverage"] == pytest.approx(complete / len(stimuli))
        if named:
            # CX: each concept's plurality feature (ties: lowest feature).
            cx = 0
            for concept in set(named.values()):
                feats = Counter(f for (_, f), c in named.items() if c == concept)
                cx += max(feats.values())
            xc = 0
            for feature in {f for _, f in named}:
                names = Counter(c for (_, f), c in named.items() if f == feature)
                xc += max(names.values())
            prow = pur.filter(annotator_id=who).row(0, named=True)
            assert prow["cx_purity"] == pytest.approx(cx / len(named))
            assert prow["xc_purity"] == pytest.approx(xc / len(named))
    a = ann.filter(pl.col("concept").is_not_null(), annotator_id="p")
    b = ann.filter(pl.col("concept").is_not_null(), annotator_id="q")
    stats, _ = pair_agreement(a.drop("study_id", "annotator_id"),
                              b.drop("study_id", "annotator_id"))
    set_p = {k for k, v in namings["p"].items() if v is not None}
    set_q = {k for k, v in namings["q"].items() if v is not None}
    assert stats["jaccard"] == pytest.approx(len(set_p & set_q) / len(set_p | set_q))
    assert stats["n_both"] == len(set_p & set_q)


def test_linguistic_compatibility() -> None:
    assert compatibility("Eye", "eye") == "exact"
    assert compatibility("Open Wing", "Wing") == "subset"
    assert compatibility("Wing", "Wing and Eye") == "subset"
    assert compatibility("Tail", "Wing") == "none"
    assert compatibility("", "wing") == "none"
