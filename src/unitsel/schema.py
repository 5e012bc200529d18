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
    pl.List(pl.Float32()): "FLOAT[]",
    pl.List(pl.String()): "VARCHAR[]",
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
    """A DuckLake table partitioned by `partition_by` (Hive-style data file folders)."""

    name: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...]
    doc: str
    # Rebuilt from activations partitions by `unitsel.summaries`, never written by a job.
    derived: bool = False

    def __post_init__(self) -> None:
        missing = set(self.partition_by) - set(self.column_names)
        if missing:
            raise ValueError(f"table {self.name}: partition keys {sorted(missing)} are not columns")

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def written_columns(self) -> list[str]:
        """The columns a job supplies: all but `snapshot_id`, which the Transaction fills in
        with the snapshot the job read."""
        return [c for c in self.column_names if c != "snapshot_id"]

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
        Column("position", pl.Int32(), "The layer's place in the network, in the order its "
               "modules ran in the forward pass (0 first); NULL for imported arrays.",
               nullable=True),
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
    derived=True,
)

UNIT_TOP = Table(
    "unit_top",
    (*_PARTITION, _SUBSET, _UNIT,
     Column("rank", pl.Int32(), "1 = most active; ties broken by stimulus ascending."),
     _STIMULUS, _LABEL,
     Column("activation", pl.Float32(), "The stimulus' activation.")),
    ACTIVATIONS.partition_by,
    "Summary: per unit its top-k most activating stimuli (k = summary_builds.k).",
    derived=True,
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
            "Sum of t^3 - t over groups of t equal activations (rank-sum tie correction)."),
     Column("precision_label", pl.String(),
            "Most frequent label among the 100 most active stimuli (ties: the label ranked "
            "first); NULL in summaries built before it.", nullable=True),
     Column("most_in_100", pl.Int32(),
            "Stimuli of precision_label among the 100 most active; NULL in summaries built "
            "before it.", nullable=True),
     Column("most_in_60", pl.Int32(),
            "Stimuli of the most frequent label among the 60 most active; NULL in summaries "
            "built before it.", nullable=True)),
    ACTIVATIONS.partition_by,
    "Summary: per unit what top-class selectivity and precision need.",
    derived=True,
)

SUMMARY_BUILDS = Table(
    "summary_builds",
    (*_PARTITION,
     Column("k", pl.Int32(), "Top-k kept in unit_top."),
     Column("layout", pl.Int32(), "Version of the summaries' layout (unitsel.summaries).")),
    ACTIVATIONS.partition_by,
    "One row per summarised activations partition, committed with its inputs: how its "
    "summaries were built.",
    derived=True,
)

_SNAPSHOT_ID = Column(
    "snapshot_id", pl.Int64(),
    "Warehouse snapshot the row was computed from (`unitsel snapshots`; read it back with "
    "connect(root, snapshot=N)); NULL if computed before the warehouse had snapshots.",
    nullable=True)


def _result_table(name: str, columns: tuple[Column, ...], partition_by: tuple[str, ...],
                  doc: str) -> Table:
    """A result table: its rows also record the snapshot they were computed from (the
    writing Transaction fills it in)."""
    return Table(name, (*columns, _SNAPSHOT_ID), partition_by, doc)


# Result tables of analysis jobs. Their partition keys are the job's parameters, so re-running
# a job replaces exactly what it wrote before.
_CATEGORY = _key("category", "Target label the metrics compare with the rest, e.g. 'face'.")
_TASK = _key("task", "Task score measured under lesions, e.g. 'probe:face', 'accuracy:face'.")

LESIONS = _result_table(
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

METRIC_CONSISTENCY = _result_table(
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

DECODING = _result_table(
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

# Semantics (DORA): concept sets mapped to WordNet, baseline and functional distances between
# them, the activation-maximisation signals behind EA distances, and what is computed from the
# pair tables. Pair tables hold each unordered pair once, a < b.
_CONCEPT_SET = _key("concept_set", "Concept set, e.g. 'imagenet-1k', 'cifar-100', 'digits'.")
_MEASURE = _key(
    "measure",
    "Functional distance: 'minkowski', 'pearson', 'spearman', 'ea_n_pairwise', "
    "'ea_n_layerwise', 'ea_s_pairwise' or 'ea_s_layerwise'.")
_SETTING = _key("setting", "The measure's parameters, e.g. 'p=1', 'n=50,d=200', 'n=3,m=500'.")
_UNIT_A = Column("unit_a", pl.Int32(), "First unit of the pair (unit_a < unit_b).")
_UNIT_B = Column("unit_b", pl.Int32(), "Second unit of the pair.")
_SEMANTIC_PARTITION = (_MODEL_ID, _STIMULUS_SET, _LAYER, _POOL)

CONCEPTS = Table(
    "concepts",
    (_CONCEPT_SET,
     Column("class_index", pl.Int32(), "Class index: the output unit that stands for it."),
     _key("label", "The data set's class label."),
     _key("wnid", "WordNet 3.0 noun id, e.g. 'n02084071'."),
     _key("name", "Textual label for word vectors: the synset's first lemma ('great_white_shark')."
          )),
    ("concept_set",),
    "One row per class of a concept set, mapped to its WordNet noun synset.",
)

SEMANTIC_DISTANCES = _result_table(
    "semantic_distances",
    (_CONCEPT_SET,
     _key("measure", "'path', 'lch', 'wup' (WordNet, as NLTK) or the word vectors' name "
          "('glove-6b-50d' by default)."),
     _key("wnid_a", "First concept (wnid_a < wnid_b)."),
     _key("wnid_b", "Second concept."),
     Column("similarity", pl.Float64(),
            "NLTK's path_similarity / lch_similarity / wup_similarity, or the word-vector "
            "cosine (the smallest over word pairs of multi-word labels); NULL for a concept "
            "without a word vector.", nullable=True),
     Column("distance", pl.Float64(),
            "DORA's equations: path length l, log(l + 1), 1 - wup, sqrt((1 - cos) / 2).",
            nullable=True),
     Column("distance_max_scaled", pl.Float64(), "1 - similarity / max(similarity) over the set.",
            nullable=True),
     _key("source", "Where the similarity came from: WordNet, or the word vectors with "
          "their WordSim-353 / SimLex-999 Spearman rho.")),
    ("concept_set", "measure"),
    "Result: semantic baseline distances between every pair of a concept set (DORA Sec. 5).",
)

AMS = Table(
    "ams",
    (*_SEMANTIC_PARTITION, _SETTING, _UNIT,
     Column("signal", pl.Int32(), "Signal index t (n-AMS: block t of the shuffled set)."),
     Column("stimulus", pl.Int32(), "n-AMS: the block's most activating stimulus.",
            nullable=True),
     Column("uri", pl.String(), "s-AMS: PNG of the synthetic signal, relative to the root.",
            nullable=True),
     Column("activation", pl.Float64(), "The unit's activation on its signal.")),
    ACTIVATIONS.partition_by,
    "Activation-maximisation signals per unit: natural (n-AMS) from a stimulus set, or "
    "synthetic (s-AMS, stimulus_set 'synthetic') from the feature-visualisation job.",
)

AMS_ACTIVATIONS = Table(
    "ams_activations",
    (*_SEMANTIC_PARTITION, _SETTING,
     Column("ams_unit", pl.Int32(), "The unit i whose AMS were shown."),
     _UNIT,
     Column("mean_activation", pl.Float64(),
            "mu^i_j: mean activation of unit j over unit i's AMS (standardised for n-AMS, raw "
            "for s-AMS). Row i is the layer-wise RAV r_i*; (mu^i_i, mu^i_j) the pair-wise.")),
    ACTIVATIONS.partition_by,
    "Representation activation vectors (DORA Def. 4): what EA distances are computed from.",
)

UNIT_DISTANCES = _result_table(
    "unit_distances",
    (*_SEMANTIC_PARTITION, _MEASURE, _SETTING, _UNIT_A, _UNIT_B,
     Column("distance", pl.Float64(), "Functional distance between the two units.")),
    (*ACTIVATIONS.partition_by, "measure"),
    "Result: functional distances between the units of a layer (DORA Sec. 3).",
)

MANTEL_RESULTS = _result_table(
    "mantel_results",
    (*_SEMANTIC_PARTITION, _MEASURE, _SETTING, _CONCEPT_SET,
     _key("baseline", "Semantic measure compared with: 'path', 'lch', 'wup' or word vectors "
          "('glove-6b-50d'); n counts the concepts the baseline covers."),
     _key("conversion", "Baseline column used: 'distance' or 'distance_max_scaled'."),
     _key("method", "'pearson' or 'spearman'."),
     _key("alternative", "'two-sided', 'greater' or 'less'."),
     Column("permutations", pl.Int32(), "Permutations of the p-value (0: no p)."),
     Column("seed", pl.Int64(), "Seed of the permutations (scikit-bio's)."),
     Column("r", pl.Float64(), "Mantel statistic; NULL when a matrix is constant.",
            nullable=True),
     Column("p", pl.Float64(), "Permutation p-value; NULL without permutations or r.",
            nullable=True),
     Column("n", pl.Int32(), "Units (= concepts) in each matrix.")),
    (*ACTIVATIONS.partition_by, "measure"),
    "Result: Mantel tests of functional against semantic distances (DORA Tables 1-2).",
)

UNIT_OUTLIERS = _result_table(
    "unit_outliers",
    (*_SEMANTIC_PARTITION, _MEASURE, _SETTING,
     _key("detector", "'lof' (scikit-learn, on the distance matrix: DORA's protocol), or "
          "on the matrix's rows (PyOD): 'lof_rows', 'iforest', 'ocsvm', 'abod', "
          "'feature_bagging'."),
     Column("scored_on", pl.String(), "'distances' (the matrix itself) or 'rows' (each "
            "unit's row of distances as its feature vector)."),
     Column("contamination", pl.Float64(), "Expected share of outliers."),
     _UNIT,
     Column("score", pl.Float64(), "Outlier score (higher is more anomalous)."),
     Column("is_outlier", pl.Boolean(), "Among the top `contamination` share of scores.")),
    (*ACTIVATIONS.partition_by, "measure"),
    "Result: outlier detection on a layer's distance matrix (DORA Sec. 4).",
)

OUTLIER_AUC = _result_table(
    "outlier_auc",
    (*_SEMANTIC_PARTITION, _MEASURE, _SETTING,
     _key("detector", "Outlier detector, as in unit_outliers."),
     Column("scored_on", pl.String(), "'distances' or 'rows', as in unit_outliers."),
     Column("contamination", pl.Float64(), "Expected share of outliers."),
     Column("n_outliers", pl.Int32(), "Units labelled as true outliers."),
     Column("repeats", pl.Int32(), "Runs with random states 0 … repeats - 1."),
     Column("auc", pl.Float64(), "Mean ROC AUC of the scores against the true labels."),
     Column("auc_sd", pl.Float64(), "Standard deviation of the AUC over the runs.")),
    (*ACTIVATIONS.partition_by, "measure"),
    "Result: how well each detector finds known outlier units (DORA Table 3 protocol).",
)

UNIT_ATLAS = _result_table(
    "unit_atlas",
    (*_SEMANTIC_PARTITION, _MEASURE, _SETTING, _UNIT,
     Column("x", pl.Float64(), "UMAP coordinate 1."),
     Column("y", pl.Float64(), "UMAP coordinate 2."),
     Column("wnid", pl.String(), "The unit's concept, for output units of a concept set.",
            nullable=True),
     Column("hypernym", pl.String(), "Colour key: the concept's WordNet hypernym at the "
            "chosen depth ('animal.n.01').", nullable=True)),
    (*ACTIVATIONS.partition_by, "measure"),
    "Result: a 2-D representation atlas of a layer from its distance matrix (DORA Fig. 6).",
)

# People (Gale et al.'s ratings of AM panels; interactive naming of significant activations).
_STUDY = _key("study_id", "Study identifier; demo studies say 'simulated' in their name.")
_LABEL_CLASS = _key("label", "Class whose prediction the significant activations explain.")
_ANNOTATOR = _key("annotator_id", "Annotator identifier.")

STUDIES = Table(
    "studies",
    (_STUDY,
     _key("kind", "'ratings' or 'annotations'."),
     Column("simulated", pl.Boolean(), "True for generated data (the demo's), not people."),
     _key("description", "What the study is and where its data came from.")),
    ("study_id",),
    "One row per human study: its kind and whether its data is simulated.",
)

STUDY_PANELS = Table(
    "study_panels",
    (_STUDY,
     _key("panel", "Panel image file name, as in the exported manifest."),
     _MODEL_ID, _LAYER, _POOL, _UNIT,
     _key("source", "'ams' (activation-maximisation signals) or 'top' (most active stimuli)."),
     Column("list", pl.Int32(), "Counterbalanced list the panel is shown in (0-based).")),
    ("study_id",),
    "One row per exported rating panel: which unit it shows (the study manifest).",
)

RATINGS = Table(
    "ratings",
    (_STUDY,
     _key("rater_id", "Participant identifier."),
     _MODEL_ID, _LAYER, _POOL, _UNIT,
     Column("trial", pl.Int32(), "Trial number within the rater's session."),
     Column("response", pl.Boolean(), "Whether the rater saw an object in common."),
     Column("name", pl.String(), "The object named; NULL when none was given.",
            nullable=True)),
    ("study_id",),
    "One row per judgement of a unit's panel (Gale et al. 2019, Table 1).",
)

READOUT_WEIGHTS = Table(
    "readout_weights",
    (_MODEL_ID,
     _key("layer", "The linear read-out module, e.g. 'classifier.3'."),
     Column("feature", pl.Int32(), "Input feature of the read-out (a unit of the layer below)."),
     _key("label", "Output class."),
     Column("weight", pl.Float64(), "The read-out's weight from the feature to the class.")),
    ("model_id", "layer"),
    "One row per (feature, class) weight of a linear read-out (interactive naming Sec. 3.3).",
)

ANNOTATIONS = Table(
    "annotations",
    (_STUDY, _ANNOTATOR, _MODEL_ID, _STIMULUS_SET, _STIMULUS, _LABEL_CLASS,
     Column("feature", pl.Int32(), "The significant feature whose activation map was shown."),
     Column("concept", pl.String(), "The visual concept it was grouped into; NULL: unnamed.",
            nullable=True)),
    ("study_id",),
    "One row per significant activation (stimulus x feature) an annotator saw.",
)

_PAIR = (_key("annotator_a", "First annotator (annotator_a < annotator_b)."),
         _key("annotator_b", "Second annotator."))

RATING_SUMMARY = _result_table(
    "rating_summary",
    (_STUDY, _MODEL_ID, _LAYER, _POOL,
     _key("match_rule", "How names are matched: 'wordnet' (a noun sense equals or subsumes) "
          "or 'exact' (same word)."),
     Column("n_judgements", pl.Int32(), "Ratings of the layer's units."),
     Column("pct_yes", pl.Float64(), "% yes responses."),
     Column("pct_yes_se", pl.Float64(), "Its binomial standard error (% points)."),
     Column("n_units", pl.Int32(), "Units rated."),
     Column("pct_units_80", pl.Float64(), "% of units with >= 80 % yes responses."),
     Column("pct_units_80_se", pl.Float64(), "Its binomial standard error."),
     Column("pct_overlap_humans", pl.Float64(),
            "Units with >= 80 % yes: % of pairs of raters' names that match.", nullable=True),
     Column("pct_overlap_humans_se", pl.Float64(), "Binomial SE over name pairs.",
            nullable=True),
     Column("pct_overlap_top_class", pl.Float64(),
            "Units with >= 80 % yes: % of names matching the unit's top class.", nullable=True),
     Column("pct_overlap_top_class_se", pl.Float64(), "Binomial SE over names.", nullable=True),
     Column("pct_overlap_ccmas_class", pl.Float64(),
            "Same for the unit's CCMAS class.", nullable=True),
     Column("pct_overlap_ccmas_class_se", pl.Float64(), "Binomial SE over names.",
            nullable=True)),
    ("study_id",),
    "Result: Gale et al.'s Table 1 per layer, from the ratings and the unit selectivity.",
)

ANNOTATION_COVERAGE = _result_table(
    "annotation_coverage",
    (_STUDY, _LABEL_CLASS,
     _key("annotator_id", "Annotator, or 'any' for named by at least one annotator."),
     Column("n_activations", pl.Int32(), "Significant activations of the class."),
     Column("activation_coverage", pl.Float64(), "Share of them named."),
     Column("n_explanations", pl.Int32(), "Stimuli (explanations) of the class."),
     Column("partial_coverage", pl.Float64(), "Share with at least one activation named."),
     Column("complete_coverage", pl.Float64(), "Share with every activation named.")),
    ("study_id",),
    "Result: activation and explanation coverage (interactive naming Figs. 3-5).",
)

ANNOTATION_PURITY = _result_table(
    "annotation_purity",
    (_STUDY, _LABEL_CLASS, _ANNOTATOR,
     Column("n_named", pl.Int32(), "Named activations."),
     Column("cx_purity", pl.Float64(), "Share in the majority feature of their concept."),
     Column("xc_purity", pl.Float64(), "Share in the majority concept of their feature.")),
    ("study_id",),
    "Result: CX- and XC-purity of each annotator's naming (interactive naming Tables 2-3).",
)

ANNOTATION_AGREEMENT = _result_table(
    "annotation_agreement",
    (_STUDY, _LABEL_CLASS, *_PAIR,
     Column("jaccard", pl.Float64(), "|A_a & A_b| / |A_a | A_b| of the named activations."),
     Column("n_both", pl.Int32(), "Activations named by both."),
     Column("d1_agreement", pl.Float64(), "D = 1 (one-to-one) matching weight / n_both.",
            nullable=True),
     Column("d2_agreement", pl.Float64(), "D = 2 (stars) matching weight / n_both.",
            nullable=True),
     Column("d1_exact_compatible", pl.Float64(), "Share of D = 1 weight on exactly "
            "compatible names.", nullable=True),
     Column("d1_subset_compatible", pl.Float64(), "… on subset-compatible names.",
            nullable=True),
     Column("d2_exact_compatible", pl.Float64(), "Same for D = 2.", nullable=True),
     Column("d2_subset_compatible", pl.Float64(), "Same for D = 2.", nullable=True)),
    ("study_id",),
    "Result: pairwise agreement of namings (interactive naming Tables 5-6).",
)

ANNOTATION_MATCHES = _result_table(
    "annotation_matches",
    (_STUDY, _LABEL_CLASS, *_PAIR,
     Column("family", pl.Int32(), "D of the D-family matching: 1 or 2."),
     _key("concept_a", "Concept of annotator_a."),
     _key("concept_b", "Concept of annotator_b."),
     Column("weight", pl.Int32(), "Activations both concepts hold."),
     _key("compatibility", "'exact', 'subset' or 'none' (WordNet approximation).")),
    ("study_id",),
    "Result: the matched concept pairs of each D-family matching (interactive naming Fig. 7).",
)

NAMING_COUNTS = _result_table(
    "naming_counts",
    (_STUDY, _LABEL_CLASS,
     Column("n_annotators", pl.Int32(), "Number of annotators who named the activation."),
     Column("n_activations", pl.Int32(), "Activations named by exactly that many."),
     Column("fraction", pl.Float64(), "Their share of the class's activations.")),
    ("study_id",),
    "Result: activations named by exactly n annotators (interactive naming Fig. 6).",
)

EXPLANATION_SUMMARIES = _result_table(
    "explanation_summaries",
    (_STUDY, _LABEL_CLASS, _ANNOTATOR,
     _key("combination", "Sorted concept names of a stimulus' named activations, joined "
          "by ' + '; 'unlabeled' when none is named."),
     Column("n_stimuli", pl.Int32(), "Stimuli explained by that combination."),
     Column("share", pl.Float64(), "Their share of the class's stimuli.")),
    ("study_id",),
    "Result: test-set explanation summaries (interactive naming Table 4).",
)

# Concept discovery (WWW; Grad-CAM + t-vMF): embeddings of probe images and concept texts, and
# each unit's concept scores.
_ENCODER = _key("encoder", "Embedding model, e.g. 'all-MiniLM-L6-v2' or an open_clip name.")
_CROP = _key("crop", "'center' or 'gradcam' (window around the Grad-CAM peak).")
_EMBEDDING = Column("embedding", pl.List(pl.Float32()), "Unit-norm embedding vector.")

IMAGE_EMBEDDINGS = Table(
    "image_embeddings",
    (_ENCODER, _STIMULUS_SET, _STIMULUS, _CROP, _EMBEDDING),
    ("encoder", "stimulus_set", "crop"),
    "One row per (image encoder, stimulus, crop): the image's embedding.",
)

TEXT_EMBEDDINGS = Table(
    "text_embeddings",
    (_ENCODER, _CONCEPT_SET, _key("concept", "The concept's text, e.g. 'golden retriever'."),
     _EMBEDDING),
    ("encoder", "concept_set"),
    "One row per (text encoder, concept): the text's embedding.",
)

CONCEPT_SCORES = _result_table(
    "concept_scores",
    (_MODEL_ID, _STIMULUS_SET, _LAYER, _POOL, _ENCODER, _CROP,
     _key("similarity", "'cos' or 'tvmf' (t-vMF with the job's kappa)."),
     _CONCEPT_SET, _UNIT,
     _key("concept", "A concept text of the set."),
     Column("score", pl.Float64(), "S_j: mean over the unit's top-n images of sim(v, t_j) - "
            "sim(v, t_template)."),
     Column("is_concept", pl.Boolean(), "score > alpha * max score (>= with --inclusive): "
            "one of the unit's concepts.")),
    ("model_id", "stimulus_set", "layer", "pool", "encoder", "crop", "similarity",
     "concept_set"),
    "Result: WWW concept scores per unit; the unit's concepts and its next-best concepts.",
)

CONCEPT_EVALUATION = _result_table(
    "concept_evaluation",
    (_MODEL_ID, _STIMULUS_SET, _LAYER, _POOL, _ENCODER, _CROP,
     _key("similarity", "'cos' or 'tvmf'."), _CONCEPT_SET,
     _key("eval_encoder", "Text encoder that judges the concepts (the paper's CLIP / mpnet)."),
     Column("n_units", pl.Int32(), "Output units whose class is known."),
     Column("mean_cos", pl.Float64(), "Mean over units of the mean cosine between the unit's "
            "concepts and its class label, in eval_encoder's space."),
     Column("f1", pl.Float64(), "Mean over units of F1 of the concepts against the class "
            "label (precision hit/|concepts|, recall hit)."),
     Column("hit_rate", pl.Float64(), "Share of units whose concepts include the class label.")),
    ("model_id", "stimulus_set", "layer", "pool", "encoder", "crop", "similarity",
     "concept_set", "eval_encoder"),
    "Result: concept quality of output units against their class labels (WWW-GT Tables 1-2).",
)

# Compositional unit labels (INVERT, Bykov et al. 2023): the concepts' stimuli and each unit's
# best formulas over them.
_MASK_KIND = _key("kind", "Where the concept comes from: 'label' (a label of the set), "
                  "'wordnet' (a WordNet synset above the labels), 'annotation' (named in a "
                  "study's annotations) or 'csv' (a user's stimulus,concept file).")

CONCEPT_MASKS = Table(
    "concept_masks",
    (_STIMULUS_SET, _CONCEPT_SET,
     _key("concept", "The concept: a label, a synset name ('dog.n.01') or a named concept."),
     _MASK_KIND,
     Column("label", pl.String(), "A label the concept covers (label-set concepts); NULL for "
            "per-stimulus concepts.", nullable=True),
     Column("stimulus", pl.Int32(), "A stimulus the concept marks (per-stimulus concepts); "
            "NULL for label-set concepts.", nullable=True)),
    ("stimulus_set", "concept_set"),
    "One row per (concept, label it covers) or (concept, stimulus it marks): the concepts "
    "INVERT labels units with.",
)

UNIT_LABELS = _result_table(
    "unit_labels",
    (_MODEL_ID, _STIMULUS_SET, _LAYER, _POOL, _CONCEPT_SET, _SUBSET,
     _key("mode", "'positive' (formulas the unit prefers: highest AUROC) or 'negative' "
          "(lowest AUROC)."),
     _UNIT,
     Column("rank", pl.Int32(), "Place in the unit's final beam (1 = best); each distinct "
            "formula once."),
     _key("formula", "The formula over concepts: & (and), | (or), ~ (not), parentheses; "
          "names with spaces or operators in double quotes."),
     Column("concepts", pl.List(pl.String()), "Its distinct concepts, sorted."),
     Column("length", pl.Int32(), "Literals of the formula (a concept counted each time it "
            "appears)."),
     Column("auroc", pl.Float64(), "AUROC of the formula's stimuli against the rest."),
     Column("p", pl.Float64(), "Two-sided Mann-Whitney p (tie and continuity corrected, as "
            "SciPy's asymptotic test); 1 when every activation ties."),
     Column("q", pl.Float64(), "Benjamini-Hochberg q across the partition's rows."),
     Column("concept_fraction", pl.Float64(), "Share of the subset's stimuli the formula marks."),
     Column("n_in", pl.Int32(), "Stimuli the formula marks."),
     Column("beam_size", pl.Int32(), "Beam size B of the search."),
     Column("max_length", pl.Int32(), "Longest formula L searched."),
     Column("min_fraction", pl.Float64(), "Smallest concept fraction allowed."),
     Column("max_fraction", pl.Float64(), "Largest concept fraction allowed.")),
    ("model_id", "stimulus_set", "layer", "pool", "concept_set", "subset", "mode"),
    "Result: each unit's best formulas over a concept set by INVERT's beam search "
    "(Bykov et al. 2023).",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (MODELS, LAYERS, STIMULI, PREDICTIONS, ACTIVATIONS,
              CLASS_STATS, UNIT_TOP, UNIT_SUMMARIES, SUMMARY_BUILDS,
              LESIONS, METRIC_CONSISTENCY, DECODING,
              CONCEPTS, SEMANTIC_DISTANCES, AMS, AMS_ACTIVATIONS, UNIT_DISTANCES,
              MANTEL_RESULTS, UNIT_OUTLIERS, OUTLIER_AUC, UNIT_ATLAS,
              STUDIES, STUDY_PANELS, RATINGS, READOUT_WEIGHTS, ANNOTATIONS, RATING_SUMMARY,
              ANNOTATION_COVERAGE, ANNOTATION_PURITY, ANNOTATION_AGREEMENT,
              ANNOTATION_MATCHES, NAMING_COUNTS, EXPLANATION_SUMMARIES,
              IMAGE_EMBEDDINGS, TEXT_EMBEDDINGS, CONCEPT_SCORES, CONCEPT_EVALUATION,
              CONCEPT_MASKS, UNIT_LABELS)
}


def table(name: str) -> Table:
    """The declared table called `name`, or a KeyError listing the tables that exist."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r}; tables are {sorted(TABLES)}") from None
