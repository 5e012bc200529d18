"""Concept sets: class labels mapped to WordNet noun synsets, in class-index order.

- `imagenet-1k`: the 1000 ILSVRC-2012 wnids in class-index order (sorted wnids), read from the
  data files the `timm` wheel ships (`timm/data/_info/imagenet_synsets.txt`), located through
  the package metadata so timm (and its torch import) is never loaded.
- `cifar-100`: the 100 fine labels mapped by hand (`unitsel/data/cifar-100-wordnet.csv`), each
  checked against its WordNet gloss: `turtle` is the reptile (turtle.n.02), not the turtleneck;
  `aquarium_fish` and `maple_tree` are fish.n.01 and maple.n.02, as in DORA's appendix.
- any CSV `label,wnid`, rows in class-index order.
"""

from __future__ import annotations

import importlib.metadata
from importlib import resources
from pathlib import Path

import polars as pl

from unitsel import wordnet
from unitsel.errors import InputError
from unitsel.schema import CONCEPTS
from unitsel.warehouse import Transaction

IMAGENET = "imagenet-1k"
CIFAR100 = "cifar-100"
BUILT_IN = (IMAGENET, CIFAR100)


def imagenet_wnids() -> list[str]:
    """The 1000 ILSVRC-2012 wnids in class-index order, from the timm wheel's data file."""
    try:
        dist = importlib.metadata.distribution("timm")
    except importlib.metadata.PackageNotFoundError:
        raise InputError("the imagenet-1k concept set reads the ILSVRC wnids shipped in the "
                         "timm wheel: pip install timm") from None
    path = Path(str(dist.locate_file("timm/data/_info/imagenet_synsets.txt")))
    wnids = path.read_text().split()
    if len(wnids) != 1000 or wnids != sorted(wnids):
        raise InputError(f"expected 1000 sorted wnids, found {len(wnids)}", file=path)
    return wnids


def read_csv(path: Path | str) -> pl.DataFrame:
    """A user's `label,wnid` CSV (rows in class-index order), checked against WordNet."""
    try:
        frame = pl.read_csv(path, schema_overrides={"label": pl.String, "wnid": pl.String})
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(f"cannot read a label,wnid CSV: {error}", file=path) from None
    if frame.columns != ["label", "wnid"]:
        raise InputError(f"columns must be label,wnid; found {','.join(frame.columns)}",
                         file=path)
    for row, (label, wnid) in enumerate(frame.iter_rows(), start=2):  # row 1 is the header
        if not label:
            raise InputError("empty label", file=path, row=row, column="label")
        try:
            wordnet.synset(wnid or "")
        except InputError as error:
            raise InputError(str(error), file=path, row=row, column="wnid") from None
    duplicated = frame.filter(pl.col("label").is_duplicated())["label"].unique().sort()
    if len(duplicated):
        raise InputError(f"labels appear twice: {duplicated.to_list()}", file=path,
                         column="label")
    return frame


def built_in(concept_set: str) -> pl.DataFrame:
    """The label,wnid frame of a concept set unitsel ships."""
    if concept_set == IMAGENET:
        wnids = imagenet_wnids()
        return pl.DataFrame({"label": wnids, "wnid": wnids})
    if concept_set == CIFAR100:
        return read_csv(Path(str(resources.files("unitsel") / "data" / "cifar-100-wordnet.csv")))
    raise InputError(f"unknown concept set {concept_set!r}; built in: {list(BUILT_IN)}, or "
                     "give a label,wnid CSV")


def concept_frame(concept_set: str, labels: pl.DataFrame) -> pl.DataFrame:
    """The `concepts` rows of a label,wnid frame: class index and the synset's first lemma."""
    names = [wordnet.synset(w).lemma_names()[0] for w in labels["wnid"]]
    return pl.DataFrame({
        "concept_set": concept_set,
        "class_index": pl.Series(range(labels.height), dtype=pl.Int32),
        "label": labels["label"], "wnid": labels["wnid"], "name": names,
    })


def ingest_concepts(tx: Transaction, concept_set: str, labels: pl.DataFrame) -> pl.DataFrame:
    """Write (replace) a concept set; return its rows."""
    frame = concept_frame(concept_set, labels)
    tx.write(frame, CONCEPTS)
    return frame
