"""Concept masks of a stimulus set: the stimuli each concept marks, which INVERT's labels
(`unitsel.analyses.invert`) and `unit_concept_auroc` are built from.

A concept set holds concepts of four kinds (the `kind` column):

- `label`: each label of the stimulus set, covering itself;
- `wordnet`: each WordNet noun synset above the labels' synsets (hypernyms and instance
  hypernyms, transitively, through NLTK), covering every label at or below it. The labels'
  wnids come from a concept set of the `concepts` table or from the stimuli's `wnid` column;
- `annotation`: each concept annotators named in a study (`annotations`), marking the
  stimuli it was named on;
- `csv`: each concept of a user's `stimulus,concept` file, marking the stimuli listed with it.

Label and WordNet concepts are label sets (rows with `label`), so their AUROCs come from the
rank sums in `class_stats`; the others mark stimuli (rows with `stimulus`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from unitsel import wordnet
from unitsel.adapters.labels import MAX_TEXT, check_columns, read_text
from unitsel.errors import InputError
from unitsel.schema import ANNOTATIONS, CONCEPT_MASKS, CONCEPTS, STIMULI
from unitsel.warehouse import Transaction

_LABEL_ROWS = {"concept": pl.String(), "label": pl.String()}
_STIMULUS_ROWS = {"concept": pl.String(), "stimulus": pl.Int32()}


def label_masks(labels: Sequence[str]) -> pl.DataFrame:
    """Each label a concept of its own: (concept, label) rows."""
    unique = sorted(set(labels))
    return pl.DataFrame({"concept": unique, "label": unique}, schema=_LABEL_ROWS)


def hypernym_masks(wnids: dict[str, str]) -> pl.DataFrame:
    """Every synset strictly above the labels' synsets (`wnids`: label -> noun wnid), named
    as NLTK names it ('dog.n.01'), with every label at or below it: (concept, label) rows.
    A label's own synset is a concept only when it lies above another label's."""
    below: dict[str, set[str]] = {}
    synsets = {label: wordnet.synset(w) for label, w in wnids.items()}
    for label, s in synsets.items():
        for above in s.closure(lambda x: x.hypernyms() + x.instance_hypernyms()):
            below.setdefault(above.name(), set()).add(label)
    for label, s in synsets.items():  # a label whose synset is an ancestor of another's
        if s.name() in below:
            below[s.name()].add(label)
    rows = [(concept, label) for concept in sorted(below) for label in sorted(below[concept])]
    return pl.DataFrame(rows, schema=_LABEL_ROWS, orient="row")


def annotation_masks(annotations: pl.DataFrame) -> pl.DataFrame:
    """Each concept annotators named, marking the stimuli it was named on (any annotator,
    any feature): (concept, stimulus) rows from `annotations` rows of one stimulus set."""
    return (annotations.filter(pl.col("concept").is_not_null())
            .select("concept", pl.col("stimulus").cast(pl.Int32)).unique()
            .sort("concept", "stimulus"))


def read_concepts_csv(path: Path, n_stimuli: int) -> pl.DataFrame:
    """A user's `stimulus,concept` CSV (many rows per stimulus; a repeated row counts once),
    checked against a stimulus set of `n_stimuli` stimuli: (concept, stimulus) rows."""
    rows = csv.reader(read_text(path).splitlines())
    header = [h.strip() for h in next(rows, [])]
    if not header:
        raise InputError("the file is empty; expected a header 'stimulus,concept'", file=path)
    check_columns(header, ("stimulus", "concept"), (), path)
    records: list[tuple[str, int]] = []
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields where the header has {len(header)}",
                             file=path, row=line)
        values = dict(zip(header, (v.strip() for v in row), strict=True))
        try:
            stimulus = int(values["stimulus"])
        except ValueError:
            raise InputError(f"{values['stimulus']!r} is not an integer", file=path, row=line,
                             column="stimulus") from None
        if not 0 <= stimulus < n_stimuli:
            raise InputError(f"no stimulus {stimulus} in the set (ids 0..{n_stimuli - 1})",
                             file=path, row=line, column="stimulus")
        concept = values["concept"]
        if not concept or len(concept) > MAX_TEXT:
            raise InputError(f"a concept needs 1 to {MAX_TEXT} characters", file=path,
                             row=line, column="concept")
        records.append((concept, stimulus))
    if not records:
        raise InputError("no rows after the header; a concepts file needs at least one",
                         file=path)
    return pl.DataFrame(records, schema=_STIMULUS_ROWS, orient="row").unique().sort(
        "concept", "stimulus")


def _wnids(tx: Transaction, stimuli: pl.DataFrame, wnids_from: str | None) -> dict[str, str]:
    """label -> wnid for every label of the set, from a concept set or the stimuli."""
    if wnids_from is None:
        pairs = stimuli.select("label", "wnid").unique()
        source = "the stimuli's wnid column (or name a concept set with --wnids)"
    else:
        pairs = tx.scan(CONCEPTS).filter(concept_set=wnids_from).select(
            "label", "wnid").collect()
        source = f"concept set {wnids_from!r}"
    known = dict(pairs.drop_nulls().iter_rows())
    missing = sorted(set(stimuli["label"]) - set(known))
    if missing:
        raise InputError(f"{len(missing)} labels have no wnid in {source}, e.g. "
                         f"{missing[:5]}", column="--wnids")
    return {label: known[label] for label in sorted(set(stimuli["label"]))}


def concept_masks(tx: Transaction, stimulus_set: str, concept_set: str, *,
                  labels: bool = False, hypernyms: bool = False,
                  wnids_from: str | None = None, studies: Sequence[str] = (),
                  files: Sequence[Path] = ()) -> pl.DataFrame:
    """The `concept_masks` rows of one concept set of a stimulus set, from the sources asked
    for; a concept name may come from one source only."""
    if wnids_from is not None and not hypernyms:
        raise InputError("--wnids names the labels' wnids for --hypernyms; add --hypernyms "
                         "or leave it out", column="--wnids")
    stimuli = tx.scan(STIMULI).filter(stimulus_set=stimulus_set).collect()
    if stimuli.is_empty():
        raise InputError(f"no stimulus set {stimulus_set!r} in the warehouse",
                         column="--stimulus-set")
    parts: list[tuple[str, pl.DataFrame]] = []
    if labels:
        parts.append(("label", label_masks(stimuli["label"].to_list())))
    if hypernyms:
        parts.append(("wordnet", hypernym_masks(_wnids(tx, stimuli, wnids_from))))
    for study in studies:
        named = tx.scan(ANNOTATIONS).filter(study_id=study, stimulus_set=stimulus_set).collect()
        if named.is_empty():
            raise InputError(f"study {study!r} has no annotations of {stimulus_set!r}",
                             column="--annotations")
        parts.append(("annotation", annotation_masks(named)))
    parts += [("csv", read_concepts_csv(path, stimuli.height)) for path in files]
    if not parts:
        raise InputError("name at least one source: --labels, --hypernyms, --annotations or "
                         "--file")
    frame = pl.concat([part.with_columns(
        kind=pl.lit(kind),
        label=pl.col("label") if "label" in part.columns else pl.lit(None, pl.String),
        stimulus=pl.col("stimulus") if "stimulus" in part.columns else pl.lit(None, pl.Int32),
    ).select("concept", "kind", "label", "stimulus") for kind, part in parts])
    kinds = frame.group_by("concept").agg(pl.col("kind").unique().sort()).filter(
        pl.col("kind").list.len() > 1).sort("concept")
    if kinds.height:
        concept, both = kinds.row(0)
        raise InputError(f"concept {concept!r} comes from {' and '.join(both)}; keep each "
                         "source's concepts in a concept set of its own or rename them")
    return (frame.unique().sort("concept", "label", "stimulus", nulls_last=True)
            .with_columns(stimulus_set=pl.lit(stimulus_set), concept_set=pl.lit(concept_set))
            .select(CONCEPT_MASKS.column_names))


def ingest_concept_masks(tx: Transaction, stimulus_set: str, concept_set: str, *,
                         labels: bool = False, hypernyms: bool = False,
                         wnids_from: str | None = None, studies: Sequence[str] = (),
                         files: Sequence[Path] = ()) -> pl.DataFrame:
    """Write (replace) one concept set of a stimulus set, built as `concept_masks` builds it."""
    frame = concept_masks(tx, stimulus_set, concept_set, labels=labels, hypernyms=hypernyms,
                          wnids_from=wnids_from, studies=studies, files=files)
    tx.write(frame, CONCEPT_MASKS)
    return frame
