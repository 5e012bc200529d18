"""Gale et al.'s Table 1 from human ratings of units' panels, per layer.

- % yes responses over all judgements of the layer's units, binomial SE;
- % of units with at least 80 % yes responses, binomial SE over units;
- for those units only: % overlap among humans = share of pairs of names given to the same
  unit that match; % overlap with the top class / CCMAS class = share of names matching the
  unit's top-class / CCMAS label (from `unit_selectivity` on the stimulus set, all stimuli),
  binomial SEs over pairs / names.

Name matching (`match_rule`): 'wordnet' (default) — a name matches a class when one of the
name's noun senses equals or subsumes (is a hypernym of) the class synset, so "dog" matches
"flat-coated retriever"; two names match when a sense of one equals or subsumes a sense of the
other. 'exact' — the same word (case-insensitive; for a class, its label or one of its synset's
lemmas). Class labels reach WordNet through a concept set (label -> wnid).
"""

from __future__ import annotations

import functools
import itertools
import math

import polars as pl

from unitsel import wordnet
from unitsel.analyses.semantics import concept_set_frame
from unitsel.errors import InputError
from unitsel.schema import RATING_SUMMARY, RATINGS
from unitsel.warehouse import Transaction

MATCH_RULES = ("wordnet", "exact")
THRESHOLD = 0.8


@functools.cache
def _senses(name: str) -> frozenset[object]:
    reader = wordnet.wordnet()
    lemma = "_".join(name.lower().split())
    return frozenset(reader.synsets(lemma, "n"))


@functools.cache
def _with_ancestors(s: object) -> frozenset[object]:
    return frozenset({s, *s.closure(  # type: ignore[attr-defined]
        lambda x: x.hypernyms() + x.instance_hypernyms())})


def name_matches_class(name: str, wnid: str, rule: str) -> bool:
    """Whether a rater's name fits the class synset `wnid` under `rule`."""
    target = wordnet.synset(wnid)
    if rule == "exact":
        words = {target.name().split(".")[0], *target.lemma_names()}
        return "_".join(name.lower().split()) in {w.lower() for w in words}
    return any(sense in _with_ancestors(target) for sense in _senses(name))


def names_match(a: str, b: str, rule: str) -> bool:
    """Whether two raters' names agree under `rule`."""
    if rule == "exact" or a.strip().lower() == b.strip().lower():
        return a.strip().lower() == b.strip().lower()
    sa, sb = _senses(a), _senses(b)
    return any(x in _with_ancestors(y) or y in _with_ancestors(x) for x in sa for y in sb)


def _share(hits: int, n: int) -> tuple[float | None, float | None]:
    """Percentage and its binomial standard error, None when n is 0."""
    if n == 0:
        return None, None
    p = hits / n
    return 100 * p, 100 * math.sqrt(p * (1 - p) / n)


def layer_table(ratings: pl.DataFrame, classes: pl.DataFrame, label_wnid: dict[str, str],
                rule: str) -> dict[str, object]:
    """One Table 1 row from a layer's ratings and its units' top / CCMAS labels."""
    yes, n = int(ratings["response"].sum()), ratings.height
    per_unit = ratings.group_by("unit").agg(rate=pl.col("response").mean(),
                                            names=pl.col("name").filter(pl.col("response"))
                                            .drop_nulls())
    strong = per_unit.filter(pl.col("rate") >= THRESHOLD).join(classes, on="unit", how="left")
    pairs = hits_pairs = names = hits_top = hits_ccmas = 0
    for row in strong.iter_rows(named=True):
        unit_names = row["names"]
        for a, b in itertools.combinations(unit_names, 2):
            pairs += 1
            hits_pairs += names_match(a, b, rule)
        for name in unit_names:
            names += 1
            for label, counter in ((row["top_label"], "top"), (row["ccmas_label"], "ccmas")):
                wnid = label_wnid.get(label) if label is not None else None
                hit = wnid is not None and name_matches_class(name, wnid, rule)
                if counter == "top":
                    hits_top += hit
                else:
                    hits_ccmas += hit
    row_out: dict[str, object] = {"n_judgements": n, "n_units": per_unit.height}
    for column, (hits, total) in {
        "pct_yes": (yes, n), "pct_units_80": (strong.height, per_unit.height),
        "pct_overlap_humans": (hits_pairs, pairs), "pct_overlap_top_class": (hits_top, names),
        "pct_overlap_ccmas_class": (hits_ccmas, names),
    }.items():
        row_out[column], row_out[f"{column}_se"] = _share(hits, total)
    return row_out


def run_rating_summary(tx: Transaction, study_id: str, stimulus_set: str, concept_set: str,
                       match_rule: str = "wordnet") -> pl.DataFrame:
    """Write (replace) the study's Table 1: one row per rated model, layer and pool."""
    if match_rule not in MATCH_RULES:
        raise InputError(f"match rule {match_rule!r} is not one of {list(MATCH_RULES)}")
    ratings = tx.scan(RATINGS).filter(study_id=study_id).collect()
    if ratings.is_empty():
        raise InputError(f"no ratings in study {study_id!r}; ingest them with "
                         "`unitsel ingest ratings`")
    concepts = concept_set_frame(tx, concept_set)
    label_wnid = dict(zip(concepts["label"], concepts["wnid"], strict=True))
    rows = []
    keys = ["model_id", "layer", "pool"]
    with tx.sql() as con:
        for key, part in ratings.group_by(keys, maintain_order=True):
            model_id, layer, pool = (str(k) for k in key)
            classes = con.execute(
                "SELECT unit, top_label, ccmas_label FROM unit_selectivity($1, $2, $3, $4)",
                [model_id, stimulus_set, layer, pool]).pl()
            rows.append(dict(zip(keys, key, strict=True))
                        | layer_table(part, classes, label_wnid, match_rule))
    result = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        study_id=pl.lit(study_id), match_rule=pl.lit(match_rule))
    schema = {c.name: c.dtype for c in RATING_SUMMARY.columns}
    result = result.select(pl.col(c).cast(schema[c]) for c in RATING_SUMMARY.written_columns)
    tx.write(result, RATING_SUMMARY)
    return result
