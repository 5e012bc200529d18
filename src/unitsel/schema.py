"""Every warehouse table, declared once.

The writer casts to these declarations, `sql/tables.sql` is generated from them and the test
fixtures are built through them: a table's columns are never spelled twice by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

_DUCKDB_TYPES: dict[pl.DataType, str] = {
    pl.String(): "VARCHAR",
    pl.Int32(): "INTEGER",
    pl.Int64(): "BIGINT",
    pl.Float32(): "FLOAT",
    pl.Float64(): "DOUBLE",
    pl.Boolean(): "BOOLEAN",
    pl.List(pl.Int32()): "INTEGER[]",
}


@dataclass(frozen=True)
class Column:
    """One column: its name, Polars type, whether NULL is allowed, and what it holds."""

    name: str
    dtype: pl.DataType
    doc: str
    nullable: bool = False

    @property
    def duckdb_type(self) -> str:
        return _DUCKDB_TYPES[self.dtype]


@dataclass(frozen=True)
class Table:
    """A Hive-partitioned Parquet table: `<root>/<name>/<key>=<value>/.../data.parquet`."""

    name: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...]
    doc: str

    def __post_init__(self) -> None:
        missing = set(self.partition_by) - set(self.column_names)
        if missing:
            raise ValueError(f"table {self.name}: partition keys {sorted(missing)} are not columns")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def data_columns(self) -> list[Column]:
        """Columns stored inside the Parquet files (partition keys live in the path)."""
        return [c for c in self.columns if c.name not in self.partition_by]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _key(name: str, doc: str) -> Column:
    return Column(name, pl.String(), doc)


_MODEL_ID = _key("model_id", "Model identifier chosen at ingest, e.g. 'alexnet-trained'.")
_STIMULUS_SET = _key("stimulus_set", "Stimulus set identifier, e.g. 'imagenet-val'.")
_LAYER = _key("layer", "Torch module path verbatim ('features.10'), or 'output' / 'prob'.")
_POOL = _key(
    "pool",
    "'none': one unit per output element; 'mean' / 'max' / 'l2': a conv channel "
    "aggregated over space (kernel level).",
)
_STIMULUS = Column("stimulus", pl.Int32(), "Stimulus index within its set (0-based).")
_UNIT = Column("unit", pl.Int32(), "Unit index within the layer (C-order flat index, or channel).")

MODELS = Table(
    "models",
    (
        _MODEL_ID,
        Column("architecture", pl.String(), "Architecture name, e.g. 'mobilenet_v2'."),
        Column("state", pl.String(), "'trained', 'untrained' or a checkpoint name."),
        Column(
            "weights_sha256",
            pl.String(),
            "sha256 over the state dict (names, dtypes, shapes, bytes); NULL when unknown.",
            nullable=True,
        ),
        Column("preprocessing", pl.String(), "JSON: image size, normalisation, resizing."),
        Column("source", pl.String(), "Where the model came from (weights file, array file)."),
    ),
    ("model_id",),
    "One row per model: provenance, so activations from different set-ups never mix silently.",
)

LAYERS = Table(
    "layers",
    (
        _MODEL_ID,
        _LAYER,
        _POOL,
        Column("kind", pl.String(), "Module class ('Conv2d', 'Linear', 'ReLU', 'Softmax', …)."),
        Column("n_units", pl.Int32(), "Number of units in this layer at this pool."),
        Column("shape", pl.List(pl.Int32()), "Output shape per stimulus, e.g. [64, 56, 56]."),
    ),
    ("model_id", "layer", "pool"),
    "One row per recorded layer and pool of a model: one per activations partition.",
)

STIMULI = Table(
    "stimuli",
    (
        _STIMULUS_SET,
        _STIMULUS,
        Column("uri", pl.String(), "Image path relative to the set's folder; NULL for arrays.",
               nullable=True),
        Column("label", pl.String(), "Class label of the stimulus."),
        Column("wnid", pl.String(), "WordNet noun id ('n02084071') when known.", nullable=True),
    ),
    ("stimulus_set",),
    "One row per stimulus of a set, with its class label.",
)

PREDICTIONS = Table(
    "predictions",
    (
        _MODEL_ID,
        _STIMULUS_SET,
        _STIMULUS,
        Column("predicted_label", pl.String(), "The model's top-1 label; NULL when unknown.",
               nullable=True),
        Column("is_correct", pl.Boolean(), "Whether the top-1 prediction equals the label."),
    ),
    ("model_id", "stimulus_set"),
    "One row per (model, stimulus): the model's prediction and whether it is correct.",
)

ACTIVATIONS = Table(
    "activations",
    (
        _MODEL_ID,
        _STIMULUS_SET,
        _LAYER,
        _POOL,
        _UNIT,
        _STIMULUS,
        Column("activation", pl.Float32(), "The unit's response to the stimulus (finite)."),
    ),
    ("model_id", "stimulus_set", "layer", "pool"),
    "One row per (unit, stimulus): the raw truth every summary and metric derives from.",
)

# Derived tables: rebuilt from an activations partition (and its stimuli and predictions)
# whenever any of those is rewritten; see unitsel.summaries.
_SUBSET = _key("subset", "'all' stimuli, or 'correct': those the model classified correctly.")
_PARTITION = (_MODEL_ID, _STIMULUS_SET, _LAYER, _POOL)
_LABEL = _key("label", "Class label.")

CLASS_STATS = Table(
    "class_stats",
    (*_PARTITION, _SUBSET, _UNIT, _LABEL,
     Column("n", pl.Int32(), "Number of stimuli of the label."),
     Column("mean", pl.Float64(), "Mean activation."),
     Column("m2", pl.Float64(), "Sum of squared deviations from the mean (variance * n)."),
     Column("min", pl.Float32(), "Smallest activation."),
     Column("max", pl.Float32(), "Largest activation."),
     Column("rank_sum", pl.Float64(),
            "Sum of the label's mid-ranks among all the unit's activations in the subset "
            "(ascending, ties share their mean rank): the Wilcoxon rank-sum statistic.")),
    ACTIVATIONS.partition_by,
    "Summary: per unit and label, sufficient statistics of the activations.",
)

UNIT_TOP = Table(
    "unit_top",
    (*_PARTITION, _SUBSET, _UNIT,
     Column("rank", pl.Int32(), "1 = most active; ties broken by stimulus ascending."),
     _STIMULUS, _LABEL,
     Column("activation", pl.Float32(), "The stimulus' activation.")),
    ACTIVATIONS.partition_by,
    "Summary: per unit its top-k most activating stimuli (k = summary_builds.k).",
)

UNIT_SUMMARIES = Table(
    "unit_summaries",
    (*_PARTITION, _SUBSET, _UNIT,
     Column("n", pl.Int32(), "Number of stimuli."),
     Column("top_label", pl.String(), "Label of the most active stimulus."),
     Column("top_activation", pl.Float32(), "The largest activation."),
     Column("max_other", pl.Float32(), "Largest activation of any other label; NULL if none.",
            nullable=True),
     Column("n_top_label", pl.Int32(), "Number of stimuli of the top label."),
     Column("top_cluster", pl.Int32(),
            "Stimuli of the top label strictly more active than every other label's."),
     Column("tie_term", pl.Float64(),
            "Sum of t^3 - t over groups of t equal activations (rank-sum tie correction).")),
    ACTIVATIONS.partition_by,
    "Summary: per unit what top-class selectivity needs.",
)

SUMMARY_BUILDS = Table(
    "summary_builds",
    (*_PARTITION,
     Column("k", pl.Int32(), "Top-k kept in unit_top."),
     Column("fingerprint", pl.String(), "sha256 of the inputs' sizes and mtimes.")),
    ACTIVATIONS.partition_by,
    "One row per summarised activations partition: what its summaries were built from.",
)

# Result tables of analysis jobs. Their partition keys are the job's parameters, so re-running
# a job replaces exactly what it wrote before.
_CATEGORY = _key("category", "Target label the metrics compare with the rest, e.g. 'face'.")
_TASK = _key("task", "Task score measured under lesions, e.g. 'probe:face', 'accuracy:face'.")

LESIONS = Table(
    "lesions",
    (_MODEL_ID, _STIMULUS_SET, _LAYER, _TASK,
     Column("unit", pl.Int32(),
            "Lesioned unit: the channel of a conv layer (a kernel: compare with pools mean, "
            "l2, max) or the element of a flat layer (pool none)."),
     Column("baseline", pl.Float64(), "Task score of the intact model."),
     Column("lesioned", pl.Float64(), "Task score with the unit's output set to 0."),
     Column("n_stimuli", pl.Int32(), "Held-out stimuli the score was measured on.")),
    ("model_id", "stimulus_set", "layer", "task"),
    "Result: the task score with each unit (kernel) of a layer zeroed (Lado & Dobs Fig. 1d).",
)

METRIC_CONSISTENCY = Table(
    "metric_consistency",
    (_MODEL_ID, _STIMULUS_SET, _CATEGORY, _LAYER, _POOL,
     Column("metric_a", pl.String(), "'fsi', 'dprime', 'ranksum', 'ttest' or 'lesion:<task>'."),
     Column("metric_b", pl.String(), "The other metric (metric_a < metric_b)."),
     Column("spearman_rho", pl.Float64(),
            "Spearman correlation of the two metrics' values over the units; NULL if constant.",
            nullable=True),
     Column("n_units", pl.Int32(), "Units where both metrics are defined.")),
    ("model_id", "stimulus_set", "category"),
    "Result: pairwise agreement of category-selectivity metrics per layer (Lado & Dobs Fig. 1f).",
)

DECODING = Table(
    "decoding",
    (_MODEL_ID, _STIMULUS_SET, _CATEGORY, _LAYER, _POOL,
     _key("decode_set", "Stimulus set whose labels are decoded (identities, categories)."),
     Column("metric", pl.String(), "Metric that chose the units, or 'random' (seeded)."),
     Column("cv", pl.String(), "'leave-one-out' or 'k-fold' (stratified, k in n_folds)."),
     Column("n_units", pl.Int32(), "Units decoded from: the same for every metric."),
     Column("n_folds", pl.Int32(), "Cross-validation folds."),
     Column("accuracy", pl.Float64(), "Mean held-out accuracy over the folds."),
     Column("ci_low", pl.Float64(), "95 % t-interval over folds, lower end.", nullable=True),
     Column("ci_high", pl.Float64(), "95 % t-interval over folds, upper end.", nullable=True),
     Column("chance", pl.Float64(), "Share of the most frequent label.")),
    ("model_id", "stimulus_set", "category", "layer", "pool", "decode_set"),
    "Result: linear-SVM decoding from the top units of each metric (Lado & Dobs Fig. 1e).",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (MODELS, LAYERS, STIMULI, PREDICTIONS, ACTIVATIONS,
              CLASS_STATS, UNIT_TOP, UNIT_SUMMARIES, SUMMARY_BUILDS,
              LESIONS, METRIC_CONSISTENCY, DECODING)
}
# Writing any of these makes summaries stale.
SUMMARISED_FROM = frozenset({ACTIVATIONS.name, STIMULI.name, PREDICTIONS.name})


def table(name: str) -> Table:
    """The declared table called `name`, or a KeyError listing the tables that exist."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r}; tables are {sorted(TABLES)}") from None
