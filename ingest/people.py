"""`unitsel ingest ratings | annotations | readout`: human data and linear read-outs.

Ratings (Gale et al.'s judgements of unit panels), CSV or JSON (a list of records), columns:
`rater_id, trial, response, name` and either `model_id, layer, pool, unit` or `panel` (a panel
file of the study's exported manifest, see `unitsel export study`). `response` is yes/no,
true/false or 1/0; `name` may be empty.

Annotations (interactive naming), CSV: `annotator_id, model_id, stimulus_set, stimulus, label,
feature, concept`, one row per significant activation an annotator saw; `concept` empty when
the annotator left it unnamed.

Both are checked against the warehouse before anything is written (unknown model, layer, unit
or stimulus, a repeated trial or activation, an empty rater): the error names the file, the
row and the column. Re-ingesting a study replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import polars as pl

from unitsel.adapters.labels import check_columns
from unitsel.errors import InputError
from unitsel.options import NAME, job, root_option
from unitsel.schema import ANNOTATIONS, RATINGS, READOUT_WEIGHTS, STUDIES, STUDY_PANELS
from unitsel.warehouse import Transaction

if TYPE_CHECKING:
    from torch import nn

_TRUE = {"yes", "y", "true", "1"}
_FALSE = {"no", "n", "false", "0"}


def _read(path: Path) -> tuple[pl.DataFrame, int]:
    """The rows as strings, and the offset from a 0-based index to the row number users see."""
    try:
        if path.suffix.lower() == ".json":
            return pl.read_json(path, infer_schema_length=None).cast(pl.String), 1
        return pl.read_csv(path, infer_schema=False), 2  # row 1 is the header
    except (pl.exceptions.PolarsError, OSError) as error:
        raise InputError(f"cannot read: {error}", file=path) from None


def _columns(frame: pl.DataFrame, required: list[str], optional: list[str], path: Path,
             offset: int) -> None:
    # The labels CSV's rule: an unknown column (a misspelt `name`) is refused, not dropped.
    check_columns(frame.columns, required, optional, path, row=1 if offset == 2 else None)


def _first_bad(frame: pl.DataFrame, bad: pl.Expr, column: str, message: str, path: Path,
               offset: int) -> None:
    rows = frame.with_row_index("_row").filter(bad)
    if rows.height:
        row = rows.row(0, named=True)
        raise InputError(f"{message} ({row[column]!r})", file=path, row=row["_row"] + offset,
                         column=column)


def _not_empty(frame: pl.DataFrame, path: Path) -> None:
    # Re-ingesting a study replaces it: a header-only file would silently empty it.
    if frame.is_empty():
        raise InputError("no rows after the header; a study needs at least one", file=path)


def _integers(frame: pl.DataFrame, columns: list[str], path: Path,
              offset: int) -> pl.DataFrame:
    for column in columns:
        parsed = pl.col(column).str.strip_chars().cast(pl.Int32, strict=False)
        _first_bad(frame, parsed.is_null(), column, "not an integer", path, offset)
        frame = frame.with_columns(parsed.alias(column))
    return frame


def _empty(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def read_ratings(tx: Transaction, path: Path, study_id: str) -> pl.DataFrame:
    """A ratings file checked against the warehouse, as `ratings` rows."""
    frame, offset = _read(path)
    by_panel = "panel" in frame.columns
    _columns(frame, ["rater_id", "trial", "response",
                     *(["panel"] if by_panel else ["model_id", "layer", "pool", "unit"])],
             ["name"], path, offset)
    _not_empty(frame, path)
    if "name" not in frame.columns:
        frame = frame.with_columns(name=pl.lit(None, pl.String))
    if by_panel:
        panels = tx.scan(STUDY_PANELS).filter(study_id=study_id).collect()
        _first_bad(frame, ~pl.col("panel").is_in(panels["panel"].implode()), "panel",
                   f"not a panel of study {study_id!r}'s manifest", path, offset)
        frame = frame.join(panels.select("panel", "model_id", "layer", "pool",
                                         pl.col("unit").cast(pl.String)),
                           on="panel", how="left", maintain_order="left")
    _first_bad(frame, _empty("rater_id"), "rater_id", "empty rater", path, offset)
    frame = _integers(frame, ["trial", "unit"], path, offset)
    response = pl.col("response").str.strip_chars().str.to_lowercase()
    _first_bad(frame, ~response.is_in(list(_TRUE | _FALSE)), "response",
               "response must be yes/no, true/false or 1/0", path, offset)
    frame = frame.with_columns(response=response.is_in(list(_TRUE)),
                               name=pl.when(_empty("name")).then(None)
                               .otherwise(pl.col("name").str.strip_chars()))
    layers = tx.scan("layers").select("model_id", "layer", "pool", "n_units").collect()
    frame = frame.join(layers, on=["model_id", "layer", "pool"], how="left",
                       maintain_order="left")
    # Each error names the column that is wrong (the panel's, when the file gives panels).
    for keys, message in ((["model_id"], "no such model in the warehouse"),
                          (["model_id", "layer"], "no such model / layer in the warehouse"),
                          (["model_id", "layer", "pool"],
                           "no such model / layer / pool in the warehouse")):
        known = layers.select(keys).unique()
        _first_bad(frame, ~pl.struct(keys).is_in(known.to_struct().implode()),
                   "panel" if by_panel else keys[-1], message, path, offset)
    _first_bad(frame, (pl.col("unit") < 0) | (pl.col("unit") >= pl.col("n_units")),
               "panel" if by_panel else "unit", "unit outside the layer", path, offset)
    _first_bad(frame, ~pl.struct("rater_id", "trial").is_first_distinct(), "trial",
               "the rater has this trial twice", path, offset)
    return frame.with_columns(study_id=pl.lit(study_id)).select(RATINGS.column_names)


def read_annotations(tx: Transaction, path: Path, study_id: str) -> pl.DataFrame:
    """An annotations CSV checked against the warehouse, as `annotations` rows."""
    frame, offset = _read(path)
    _columns(frame, [c for c in ANNOTATIONS.column_names if c != "study_id"], [], path,
             offset)
    _not_empty(frame, path)
    for column in ("annotator_id", "model_id", "stimulus_set", "label"):
        _first_bad(frame, _empty(column), column, f"empty {column}", path, offset)
    frame = _integers(frame, ["stimulus", "feature"], path, offset)
    _first_bad(frame, pl.col("feature") < 0, "feature", "a feature index is 0 or more", path,
               offset)
    models = tx.scan("layers").select("model_id").unique().collect()["model_id"]
    _first_bad(frame, ~pl.col("model_id").is_in(models.implode()), "model_id",
               "no model with recorded layers of this id in the warehouse", path, offset)
    stimuli = tx.scan("stimuli").select("stimulus_set", "stimulus",
                                        pl.col("label").alias("stimulus_label")).collect()
    _first_bad(frame, ~pl.col("stimulus_set").is_in(stimuli["stimulus_set"].implode()),
               "stimulus_set", "no such stimulus set in the warehouse", path, offset)
    frame = frame.join(stimuli, on=["stimulus_set", "stimulus"], how="left",
                       maintain_order="left")
    _first_bad(frame, pl.col("stimulus_label").is_null(), "stimulus",
               "no such stimulus in the set", path, offset)
    _first_bad(frame, pl.col("label") != pl.col("stimulus_label"), "label",
               "not the stimulus's label in the warehouse", path, offset)
    _first_bad(frame, ~pl.struct("annotator_id", "model_id", "stimulus_set", "stimulus",
                                 "label", "feature").is_first_distinct(), "feature",
               "the annotator has this activation twice", path, offset)
    return frame.with_columns(
        study_id=pl.lit(study_id),
        concept=pl.when(_empty("concept")).then(None).otherwise(pl.col("concept").str.strip_chars()),
    ).select(ANNOTATIONS.column_names)


def write_study(tx: Transaction, study_id: str, kind: str, frame: pl.DataFrame,
                simulated: bool, description: str) -> None:
    """Replace a study's rows and its `studies` entry (in the job's one commit)."""
    tx.write(frame, RATINGS if kind == "ratings" else ANNOTATIONS)
    tx.write(pl.DataFrame({"study_id": [study_id], "kind": [kind], "simulated": [simulated],
                           "description": [description]}), STUDIES)


def readout_frame(module: nn.Module, model_id: str, layer: str,
                  class_names: list[str]) -> pl.DataFrame:
    """`readout_weights` rows of a torch linear layer (classes x features weight matrix)."""
    from torch import nn

    if not isinstance(module, nn.Linear):
        raise InputError(f"{layer!r} is a {type(module).__name__}, not a linear read-out")
    weight = module.weight.detach().double().cpu().numpy()
    if weight.shape[0] != len(class_names):
        raise InputError(f"{layer!r} has {weight.shape[0]} outputs but {len(class_names)} "
                         "class names were given")
    n_classes, n_features = weight.shape
    return pl.DataFrame({
        "model_id": model_id, "layer": layer,
        "feature": pl.Series(list(range(n_features)) * n_classes, dtype=pl.Int32),
        "label": [c for c in class_names for _ in range(n_features)],
        "weight": weight.reshape(-1),
    })


def ingest_readout(tx: Transaction, module: nn.Module, model_id: str, layer: str,
                   class_names: list[str]) -> pl.DataFrame:
    frame = readout_frame(module, model_id, layer, class_names)
    tx.write(frame, READOUT_WEIGHTS)
    return frame


_study = click.option("--study-id", type=NAME, required=True, help="Study identifier.")
_file = click.option("--file", "path", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="CSV (or JSON records for ratings).")
_description = click.option("--description", default="", help="What the study is.")


@click.command("ratings")
@_study
@_file
@_description
@root_option
def ratings_command(study_id: str, path: Path, description: str, root: Path) -> None:
    """Human judgements of unit panels (Gale et al.) -> ratings."""
    with job(root) as tx:
        frame = read_ratings(tx, path, study_id)
        write_study(tx, study_id, "ratings", frame, False, description or str(path))
    click.echo(f"ratings: {frame.height} judgements by {frame['rater_id'].n_unique()} raters")


@click.command("annotations")
@_study
@_file
@_description
@root_option
def annotations_command(study_id: str, path: Path, description: str, root: Path) -> None:
    """Annotators' namings of significant activations -> annotations."""
    with job(root) as tx:
        frame = read_annotations(tx, path, study_id)
        write_study(tx, study_id, "annotations", frame, False, description or str(path))
    click.echo(f"annotations: {frame.height} activations, "
               f"{frame['annotator_id'].n_unique()} annotators")


@click.command("readout")
@click.option("--model-id", type=NAME, required=True)
@click.option("--arch", required=True, help="torchvision architecture name.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--layer", type=NAME, required=True,
              help="The linear read-out module, e.g. classifier.1.")
@click.option("--classes", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Class names in output order, one per line.")
@root_option
def readout_command(model_id: str, arch: str, weights: str | None, layer: str, classes: Path,
                    root: Path) -> None:
    """A model's linear read-out weights -> readout_weights (for significant features)."""
    from ingest.activations import read_classes
    from unitsel.adapters.torch_model import load_model

    modules = dict(load_model(arch, weights).named_modules())
    if layer not in modules:
        raise InputError(f"the model has no module {layer!r}")
    with job(root) as tx:
        frame = ingest_readout(tx, modules[layer], model_id, layer, read_classes(classes))
    click.echo(f"readout_weights: {frame.height} weights of {layer}")
