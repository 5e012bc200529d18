"""Interactive-naming agreement (Namings of significant activations by several annotators).

An activation is one (model, stimulus set, stimulus, class label, feature) an annotator saw;
it is named when the annotator grouped it into a concept. Per study and class label:

- coverage: share of activations named (per annotator, and 'any' = by at least one); an
  explanation (a stimulus' activations) is partially covered when one is named, completely
  when all are (Figs. 3-5);
- purity: CX = share of named activations in the majority feature of their concept, XC = in
  the majority concept of their feature (Tables 2-3; plurality ties: lowest feature, first
  concept name);
- Jaccard of two annotators' named activations; D = 1 agreement = weight of the maximum
  one-to-one matching of the intersection graph (Hungarian, scipy); D = 2 = weight of the
  maximum partition into stars (one concept matched to several on the other side, exact
  integer program, HiGHS via scipy.optimize.milp), each over the activations both named;
- linguistic compatibility of matched names (WordNet approximation of the paper's manual
  judgement, see `compatibility`); activations named by exactly n annotators (Fig. 6);
  explanation summaries (Table 4).
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import polars as pl

from unitsel import wordnet
from unitsel.errors import InputError
from unitsel.schema import (
    ANNOTATION_AGREEMENT,
    ANNOTATION_COVERAGE,
    ANNOTATION_MATCHES,
    ANNOTATION_PURITY,
    ANNOTATIONS,
    EXPLANATION_SUMMARIES,
    NAMING_COUNTS,
    Table,
)
from unitsel.warehouse import Transaction

ACTIVATION = ["model_id", "stimulus_set", "stimulus", "label", "feature"]
_STOPWORDS = frozenset({"a", "an", "and", "the", "of", "with", "in", "on", "at", "to", "or"})


def coverage(ann: pl.DataFrame) -> pl.DataFrame:
    """Activation and explanation coverage per (label, annotator) and for 'any' annotator."""
    named = pl.col("concept").is_not_null()
    anyone = (ann.group_by(ACTIVATION).agg(named.any().alias("named"))
              .with_columns(annotator_id=pl.lit("any")))
    rows = pl.concat([ann.select(*ACTIVATION, "annotator_id", named.alias("named")),
                      anyone.select(*ACTIVATION, "annotator_id", "named")])
    per_image = rows.group_by("label", "annotator_id", "model_id", "stimulus_set",
                              "stimulus").agg(
        partial=pl.col("named").any(), complete=pl.col("named").all())
    activations = rows.group_by("label", "annotator_id").agg(
        n_activations=pl.len().cast(pl.Int32), activation_coverage=pl.col("named").mean())
    explanations = per_image.group_by("label", "annotator_id").agg(
        n_explanations=pl.len().cast(pl.Int32), partial_coverage=pl.col("partial").mean(),
        complete_coverage=pl.col("complete").mean())
    return activations.join(explanations, on=["label", "annotator_id"]).sort(
        "label", "annotator_id")


def _majority_share(named: pl.DataFrame, group: str, member: str) -> float:
    """Share of rows whose `member` is the plurality `member` of their `group`."""
    counts = named.group_by(group, member).agg(n=pl.len())
    majority = counts.sort([group, "n", member], descending=[False, True, False]).group_by(
        group, maintain_order=True).first()
    return float(majority["n"].sum() / named.height)


def purity(ann: pl.DataFrame) -> pl.DataFrame:
    """CX- and XC-purity of every annotator's naming, per label."""
    rows = []
    named = ann.filter(pl.col("concept").is_not_null())
    for (label, annotator), part in named.group_by("label", "annotator_id"):
        rows.append({"label": label, "annotator_id": annotator, "n_named": part.height,
                     "cx_purity": _majority_share(part, "concept", "feature"),
                     "xc_purity": _majority_share(part, "feature", "concept")})
    return pl.DataFrame(rows, schema={"label": pl.String, "annotator_id": pl.String,
                                      "n_named": pl.Int32, "cx_purity": pl.Float64,
                                      "xc_purity": pl.Float64}).sort("label", "annotator_id")


def d1_matching(weights: np.ndarray) -> list[tuple[int, int]]:
    """Maximum-weight one-to-one matching: the matched (row, column) pairs of positive weight."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(weights, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if weights[r, c] > 0]


def d2_matching(weights: np.ndarray) -> list[tuple[int, int]]:
    """Maximum-weight partition of the bipartite intersection graph into stars: the chosen
    edges. An edge set is a star forest iff every chosen edge has an end of chosen degree 1;
    with a 'centre' indicator per node: a non-centre has at most one chosen edge, and no
    chosen edge joins two centres."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    edges = [(int(r), int(c)) for r, c in zip(*np.nonzero(weights > 0), strict=True)]
    if not edges:
        return []
    n_rows, n_cols = weights.shape
    n_edges, n_nodes = len(edges), n_rows + n_cols
    node = {("r", r): r for r in range(n_rows)} | {("c", c): n_rows + c for c in range(n_cols)}
    constraints = np.zeros((n_nodes + n_edges, n_edges + n_nodes))
    upper = np.ones(n_nodes + n_edges)
    for e, (r, c) in enumerate(edges):
        for end in (node[("r", r)], node[("c", c)]):
            constraints[end, e] = 1.0  # chosen degree …
        constraints[n_nodes + e, e] = 1.0  # edge + both centres <= 2
        constraints[n_nodes + e, n_edges + node[("r", r)]] = 1.0
        constraints[n_nodes + e, n_edges + node[("c", c)]] = 1.0
        upper[n_nodes + e] = 2.0
    degree = constraints[:n_nodes, :n_edges].sum(axis=1)
    constraints[np.arange(n_nodes), n_edges + np.arange(n_nodes)] = -degree  # … <= 1 + deg*centre
    cost = np.concatenate([-np.array([weights[r, c] for r, c in edges], float),
                           np.zeros(n_nodes)])
    result = milp(cost, constraints=LinearConstraint(constraints, -np.inf, upper),
                  integrality=np.ones(n_edges + n_nodes), bounds=Bounds(0, 1))
    if not result.success:
        raise RuntimeError(f"D = 2 matching failed: {result.message}")
    return [edge for edge, chosen in zip(edges, result.x[:n_edges], strict=True)
            if chosen > 0.5]


def _tokens(name: str) -> list[str]:
    words = [w for w in re.findall(r"[a-z]+", name.lower()) if w not in _STOPWORDS]
    return [wordnet.wordnet().morphy(w, "n") or w for w in words]


def _senses(word: str) -> set[object]:
    return set(wordnet.wordnet().synsets(word, "n"))


def _synonyms(a: str, b: str) -> bool:
    return a == b or bool(_senses(a) & _senses(b))


def _related(a: str, b: str) -> bool:
    """Synonyms, or a sense of one is a hypernym or whole (holonym) of a sense of the other."""
    if _synonyms(a, b):
        return True

    def above(senses: set[object]) -> set[object]:
        return {s for sense in senses for s in sense.closure(  # type: ignore[attr-defined]
            lambda x: x.hypernyms() + x.part_holonyms())}

    sa, sb = _senses(a), _senses(b)
    return bool(above(sa) & sb or above(sb) & sa)


def compatibility(name_a: str, name_b: str) -> str:
    """'exact': every word of each name has a synonym in the other ('beak' ~ 'nose' only when
    WordNet says so); 'subset': every word of one name is a synonym, hypernym or part-whole
    relative of a word of the other ('open wing' ~ 'wing', 'wing' ~ 'wing and eye'); else
    'none'. An automatic approximation of the paper's manual judgement."""
    a, b = _tokens(name_a), _tokens(name_b)
    if not a or not b:
        return "none"
    if all(any(_synonyms(x, y) for y in b) for x in a) and all(
            any(_synonyms(y, x) for x in a) for y in b):
        return "exact"
    if all(any(_related(x, y) for y in b) for x in a) or all(
            any(_related(y, x) for x in a) for y in b):
        return "subset"
    return "none"


def _named_sets(ann: pl.DataFrame) -> dict[str, pl.DataFrame]:
    named = ann.filter(pl.col("concept").is_not_null())
    return {str(k[0]): part.select(*ACTIVATION, "concept")
            for k, part in named.group_by("annotator_id")}


def pair_agreement(a: pl.DataFrame, b: pl.DataFrame) -> tuple[dict[str, float | int | None],
                                                              list[dict[str, object]]]:
    """Jaccard, D = 1 and D = 2 agreement and compatibility of two namings (one label)."""
    both = a.join(b, on=ACTIVATION, suffix="_b")
    union = pl.concat([a.select(ACTIVATION), b.select(ACTIVATION)]).unique().height
    stats: dict[str, float | int | None] = {
        "jaccard": both.height / union if union else 0.0, "n_both": both.height}
    matches: list[dict[str, object]] = []
    concepts_a = sorted(set(both["concept"])) if both.height else []
    concepts_b = sorted(set(both["concept_b"])) if both.height else []
    weights = np.zeros((len(concepts_a), len(concepts_b)))
    for (ca, cb), part in both.group_by("concept", "concept_b"):
        weights[concepts_a.index(str(ca)), concepts_b.index(str(cb))] = part.height
    for family, matcher in ((1, d1_matching), (2, d2_matching)):
        chosen = matcher(weights) if both.height else []
        total = sum(weights[r, c] for r, c in chosen)
        kinds = {(r, c): compatibility(concepts_a[r], concepts_b[c]) for r, c in chosen}
        exact = sum(weights[rc] for rc, k in kinds.items() if k == "exact")
        subset = sum(weights[rc] for rc, k in kinds.items() if k != "none")
        stats[f"d{family}_agreement"] = total / both.height if both.height else None
        stats[f"d{family}_exact_compatible"] = exact / total if total else None
        stats[f"d{family}_subset_compatible"] = subset / total if total else None
        matches += [{"family": family, "concept_a": concepts_a[r], "concept_b": concepts_b[c],
                     "weight": int(weights[r, c]), "compatibility": kinds[(r, c)]}
                    for r, c in chosen]
    return stats, matches


def naming_counts(ann: pl.DataFrame) -> pl.DataFrame:
    """Per label, activations named by exactly n annotators, n = 0 … number of annotators."""
    annotators = ann["annotator_id"].n_unique()
    per = ann.group_by(ACTIVATION).agg(
        n_annotators=pl.col("concept").is_not_null().sum().cast(pl.Int32))
    grid = (per.select("label").unique().join(pl.DataFrame(
        {"n_annotators": pl.Series(range(annotators + 1), dtype=pl.Int32)}), how="cross"))
    counted = per.group_by("label", "n_annotators").agg(n_activations=pl.len().cast(pl.Int32))
    return (grid.join(counted, on=["label", "n_annotators"], how="left")
            .with_columns(pl.col("n_activations").fill_null(0))
            .with_columns(fraction=pl.col("n_activations")
                          / pl.col("n_activations").sum().over("label"))
            .sort("label", "n_annotators"))


def explanation_summaries(ann: pl.DataFrame) -> pl.DataFrame:
    """Per label and annotator, the share of stimuli explained by each concept combination."""
    per_image = ann.group_by("label", "annotator_id", "model_id", "stimulus_set",
                             "stimulus").agg(names=pl.col("concept").drop_nulls().unique()
                                             .sort())
    combos = per_image.with_columns(combination=pl.when(pl.col("names").list.len() > 0)
                                    .then(pl.col("names").list.join(" + "))
                                    .otherwise(pl.lit("unlabeled")))
    return (combos.group_by("label", "annotator_id", "combination")
            .agg(n_stimuli=pl.len().cast(pl.Int32))
            .with_columns(share=pl.col("n_stimuli")
                          / pl.col("n_stimuli").sum().over("label", "annotator_id"))
            .sort(["label", "annotator_id", "n_stimuli", "combination"],
                  descending=[False, False, True, False]))


def run_agreement(tx: Transaction, study_id: str) -> dict[str, pl.DataFrame]:
    """Compute every agreement table of a study and write (replace) them."""
    ann = tx.scan(ANNOTATIONS).filter(study_id=study_id).collect()
    if ann.is_empty():
        raise InputError(f"no annotations in study {study_id!r}; ingest them with "
                         "`unitsel ingest annotations`")
    pairs, match_rows = [], []
    for label, part in ann.group_by("label", maintain_order=True):
        namings = _named_sets(part)
        for x, y in itertools.combinations(sorted(part["annotator_id"].unique()), 2):
            empty = part.clear().select(*ACTIVATION, "concept")
            stats, matches = pair_agreement(namings.get(x, empty), namings.get(y, empty))
            keys = {"label": label[0], "annotator_a": x, "annotator_b": y}
            pairs.append(keys | stats)
            match_rows += [keys | m for m in matches]
    tables = {
        ANNOTATION_COVERAGE: coverage(ann),
        ANNOTATION_PURITY: purity(ann),
        ANNOTATION_AGREEMENT: _frame(pairs, ANNOTATION_AGREEMENT),
        ANNOTATION_MATCHES: _frame(match_rows, ANNOTATION_MATCHES),
        NAMING_COUNTS: naming_counts(ann),
        EXPLANATION_SUMMARIES: explanation_summaries(ann),
    }
    for t, frame in tables.items():
        tables[t] = frame.with_columns(study_id=pl.lit(study_id)).select(t.written_columns)
        tx.write(tables[t], t)
    return {t.name: frame for t, frame in tables.items()}


def _frame(rows: list[dict[str, object]], t: Table) -> pl.DataFrame:
    """Rows of `t` without study_id (possibly none), typed by the registry."""
    schema = {c.name: c.dtype for c in t.columns if c.name != "study_id"}
    return pl.DataFrame(rows, schema=schema)
