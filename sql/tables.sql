-- GENERATED from src/unitsel/schema.py by `python -m unitsel.sqlfiles`; do not edit.
-- One view per table over its DuckLake table (sql/lake.sql attaches the lake).

CREATE OR REPLACE VIEW models AS
SELECT
    model_id,
    architecture,
    state,
    weights_sha256,
    preprocessing,
    source
FROM lake.models;
COMMENT ON VIEW models IS 'One row per model: provenance, so activations from different set-ups never mix silently.';

CREATE OR REPLACE VIEW layers AS
SELECT
    model_id,
    layer,
    pool,
    kind,
    n_units,
    shape,
    position
FROM lake.layers;
COMMENT ON VIEW layers IS 'One row per recorded layer and pool of a model: one per activations partition.';

CREATE OR REPLACE VIEW stimuli AS
SELECT
    stimulus_set,
    stimulus,
    uri,
    label,
    wnid
FROM lake.stimuli;
COMMENT ON VIEW stimuli IS 'One row per stimulus of a set, with its class label.';

CREATE OR REPLACE VIEW predictions AS
SELECT
    model_id,
    stimulus_set,
    stimulus,
    predicted_label,
    is_correct
FROM lake.predictions;
COMMENT ON VIEW predictions IS 'One row per (model, stimulus): the model''s prediction and whether it is correct.';

CREATE OR REPLACE VIEW activations AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    unit,
    stimulus,
    activation
FROM lake.activations;
COMMENT ON VIEW activations IS 'One row per (unit, stimulus): the raw truth every summary and metric derives from.';

CREATE OR REPLACE VIEW class_stats AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    subset,
    unit,
    label,
    n,
    mean,
    m2,
    min,
    max,
    rank_sum
FROM lake.class_stats;
COMMENT ON VIEW class_stats IS 'Summary: per unit and label, sufficient statistics of the activations.';

CREATE OR REPLACE VIEW unit_top AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    subset,
    unit,
    rank,
    stimulus,
    label,
    activation
FROM lake.unit_top;
COMMENT ON VIEW unit_top IS 'Summary: per unit its top-k most activating stimuli (k = summary_builds.k).';

CREATE OR REPLACE VIEW unit_summaries AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    subset,
    unit,
    n,
    top_label,
    top_activation,
    max_other,
    n_top_label,
    top_cluster,
    tie_term,
    precision_label,
    most_in_100,
    most_in_60
FROM lake.unit_summaries;
COMMENT ON VIEW unit_summaries IS 'Summary: per unit what top-class selectivity and precision need.';

CREATE OR REPLACE VIEW summary_builds AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    k,
    layout
FROM lake.summary_builds;
COMMENT ON VIEW summary_builds IS 'One row per summarised activations partition, committed with its inputs: how its summaries were built.';

CREATE OR REPLACE VIEW lesions AS
SELECT
    model_id,
    stimulus_set,
    layer,
    task,
    unit,
    baseline,
    lesioned,
    n_stimuli,
    snapshot_id
FROM lake.lesions;
COMMENT ON VIEW lesions IS 'Result: the task score with each unit (kernel) of a layer zeroed (Lado & Dobs Fig. 1d).';

CREATE OR REPLACE VIEW metric_consistency AS
SELECT
    model_id,
    stimulus_set,
    category,
    layer,
    pool,
    metric_a,
    metric_b,
    spearman_rho,
    n_units,
    snapshot_id
FROM lake.metric_consistency;
COMMENT ON VIEW metric_consistency IS 'Result: pairwise agreement of category-selectivity metrics per layer (Lado & Dobs Fig. 1f).';

CREATE OR REPLACE VIEW decoding AS
SELECT
    model_id,
    stimulus_set,
    category,
    layer,
    pool,
    decode_set,
    metric,
    cv,
    n_units,
    n_folds,
    accuracy,
    ci_low,
    ci_high,
    chance,
    snapshot_id
FROM lake.decoding;
COMMENT ON VIEW decoding IS 'Result: linear-SVM decoding from the top units of each metric (Lado & Dobs Fig. 1e).';

CREATE OR REPLACE VIEW concepts AS
SELECT
    concept_set,
    class_index,
    label,
    wnid,
    name
FROM lake.concepts;
COMMENT ON VIEW concepts IS 'One row per class of a concept set, mapped to its WordNet noun synset.';

CREATE OR REPLACE VIEW semantic_distances AS
SELECT
    concept_set,
    measure,
    wnid_a,
    wnid_b,
    similarity,
    distance,
    distance_max_scaled,
    source,
    snapshot_id
FROM lake.semantic_distances;
COMMENT ON VIEW semantic_distances IS 'Result: semantic baseline distances between every pair of a concept set (DORA Sec. 5).';

CREATE OR REPLACE VIEW ams AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    setting,
    unit,
    signal,
    stimulus,
    uri,
    activation
FROM lake.ams;
COMMENT ON VIEW ams IS 'Activation-maximisation signals per unit: natural (n-AMS) from a stimulus set, or synthetic (s-AMS, stimulus_set ''synthetic'') from the feature-visualisation job.';

CREATE OR REPLACE VIEW ams_activations AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    setting,
    ams_unit,
    unit,
    mean_activation
FROM lake.ams_activations;
COMMENT ON VIEW ams_activations IS 'Representation activation vectors (DORA Def. 4): what EA distances are computed from.';

CREATE OR REPLACE VIEW unit_distances AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    measure,
    setting,
    unit_a,
    unit_b,
    distance,
    snapshot_id
FROM lake.unit_distances;
COMMENT ON VIEW unit_distances IS 'Result: functional distances between the units of a layer (DORA Sec. 3).';

CREATE OR REPLACE VIEW mantel_results AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    measure,
    setting,
    concept_set,
    baseline,
    conversion,
    method,
    alternative,
    permutations,
    seed,
    r,
    p,
    n,
    snapshot_id
FROM lake.mantel_results;
COMMENT ON VIEW mantel_results IS 'Result: Mantel tests of functional against semantic distances (DORA Tables 1-2).';

CREATE OR REPLACE VIEW unit_outliers AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    measure,
    setting,
    detector,
    scored_on,
    contamination,
    unit,
    score,
    is_outlier,
    snapshot_id
FROM lake.unit_outliers;
COMMENT ON VIEW unit_outliers IS 'Result: outlier detection on a layer''s distance matrix (DORA Sec. 4).';

CREATE OR REPLACE VIEW outlier_auc AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    measure,
    setting,
    detector,
    scored_on,
    contamination,
    n_outliers,
    repeats,
    auc,
    auc_sd,
    snapshot_id
FROM lake.outlier_auc;
COMMENT ON VIEW outlier_auc IS 'Result: how well each detector finds known outlier units (DORA Table 3 protocol).';

CREATE OR REPLACE VIEW unit_atlas AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    measure,
    setting,
    unit,
    x,
    y,
    wnid,
    hypernym,
    snapshot_id
FROM lake.unit_atlas;
COMMENT ON VIEW unit_atlas IS 'Result: a 2-D representation atlas of a layer from its distance matrix (DORA Fig. 6).';

CREATE OR REPLACE VIEW studies AS
SELECT
    study_id,
    kind,
    simulated,
    description
FROM lake.studies;
COMMENT ON VIEW studies IS 'One row per human study: its kind and whether its data is simulated.';

CREATE OR REPLACE VIEW study_panels AS
SELECT
    study_id,
    panel,
    model_id,
    layer,
    pool,
    unit,
    source,
    list
FROM lake.study_panels;
COMMENT ON VIEW study_panels IS 'One row per exported rating panel: which unit it shows (the study manifest).';

CREATE OR REPLACE VIEW ratings AS
SELECT
    study_id,
    rater_id,
    model_id,
    layer,
    pool,
    unit,
    trial,
    response,
    name
FROM lake.ratings;
COMMENT ON VIEW ratings IS 'One row per judgement of a unit''s panel (Gale et al. 2019, Table 1).';

CREATE OR REPLACE VIEW readout_weights AS
SELECT
    model_id,
    layer,
    feature,
    label,
    weight
FROM lake.readout_weights;
COMMENT ON VIEW readout_weights IS 'One row per (feature, class) weight of a linear read-out (interactive naming Sec. 3.3).';

CREATE OR REPLACE VIEW annotations AS
SELECT
    study_id,
    annotator_id,
    model_id,
    stimulus_set,
    stimulus,
    label,
    feature,
    concept
FROM lake.annotations;
COMMENT ON VIEW annotations IS 'One row per significant activation (stimulus x feature) an annotator saw.';

CREATE OR REPLACE VIEW rating_summary AS
SELECT
    study_id,
    model_id,
    layer,
    pool,
    match_rule,
    n_judgements,
    pct_yes,
    pct_yes_se,
    n_units,
    pct_units_80,
    pct_units_80_se,
    pct_overlap_humans,
    pct_overlap_humans_se,
    pct_overlap_top_class,
    pct_overlap_top_class_se,
    pct_overlap_ccmas_class,
    pct_overlap_ccmas_class_se,
    snapshot_id
FROM lake.rating_summary;
COMMENT ON VIEW rating_summary IS 'Result: Gale et al.''s Table 1 per layer, from the ratings and the unit selectivity.';

CREATE OR REPLACE VIEW annotation_coverage AS
SELECT
    study_id,
    label,
    annotator_id,
    n_activations,
    activation_coverage,
    n_explanations,
    partial_coverage,
    complete_coverage,
    snapshot_id
FROM lake.annotation_coverage;
COMMENT ON VIEW annotation_coverage IS 'Result: activation and explanation coverage (interactive naming Figs. 3-5).';

CREATE OR REPLACE VIEW annotation_purity AS
SELECT
    study_id,
    label,
    annotator_id,
    n_named,
    cx_purity,
    xc_purity,
    snapshot_id
FROM lake.annotation_purity;
COMMENT ON VIEW annotation_purity IS 'Result: CX- and XC-purity of each annotator''s naming (interactive naming Tables 2-3).';

CREATE OR REPLACE VIEW annotation_agreement AS
SELECT
    study_id,
    label,
    annotator_a,
    annotator_b,
    jaccard,
    n_both,
    d1_agreement,
    d2_agreement,
    d1_exact_compatible,
    d1_subset_compatible,
    d2_exact_compatible,
    d2_subset_compatible,
    snapshot_id
FROM lake.annotation_agreement;
COMMENT ON VIEW annotation_agreement IS 'Result: pairwise agreement of namings (interactive naming Tables 5-6).';

CREATE OR REPLACE VIEW annotation_matches AS
SELECT
    study_id,
    label,
    annotator_a,
    annotator_b,
    family,
    concept_a,
    concept_b,
    weight,
    compatibility,
    snapshot_id
FROM lake.annotation_matches;
COMMENT ON VIEW annotation_matches IS 'Result: the matched concept pairs of each D-family matching (interactive naming Fig. 7).';

CREATE OR REPLACE VIEW naming_counts AS
SELECT
    study_id,
    label,
    n_annotators,
    n_activations,
    fraction,
    snapshot_id
FROM lake.naming_counts;
COMMENT ON VIEW naming_counts IS 'Result: activations named by exactly n annotators (interactive naming Fig. 6).';

CREATE OR REPLACE VIEW explanation_summaries AS
SELECT
    study_id,
    label,
    annotator_id,
    combination,
    n_stimuli,
    share,
    snapshot_id
FROM lake.explanation_summaries;
COMMENT ON VIEW explanation_summaries IS 'Result: test-set explanation summaries (interactive naming Table 4).';

CREATE OR REPLACE VIEW image_embeddings AS
SELECT
    encoder,
    stimulus_set,
    stimulus,
    crop,
    embedding
FROM lake.image_embeddings;
COMMENT ON VIEW image_embeddings IS 'One row per (image encoder, stimulus, crop): the image''s embedding.';

CREATE OR REPLACE VIEW text_embeddings AS
SELECT
    encoder,
    concept_set,
    concept,
    embedding
FROM lake.text_embeddings;
COMMENT ON VIEW text_embeddings IS 'One row per (text encoder, concept): the text''s embedding.';

CREATE OR REPLACE VIEW concept_scores AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    encoder,
    crop,
    similarity,
    concept_set,
    unit,
    concept,
    score,
    is_concept,
    snapshot_id
FROM lake.concept_scores;
COMMENT ON VIEW concept_scores IS 'Result: WWW concept scores per unit; the unit''s concepts and its next-best concepts.';

CREATE OR REPLACE VIEW concept_evaluation AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    encoder,
    crop,
    similarity,
    concept_set,
    eval_encoder,
    n_units,
    mean_cos,
    f1,
    hit_rate,
    snapshot_id
FROM lake.concept_evaluation;
COMMENT ON VIEW concept_evaluation IS 'Result: concept quality of output units against their class labels (WWW-GT Tables 1-2).';

CREATE OR REPLACE VIEW concept_masks AS
SELECT
    stimulus_set,
    concept_set,
    concept,
    kind,
    label,
    stimulus
FROM lake.concept_masks;
COMMENT ON VIEW concept_masks IS 'One row per (concept, label it covers) or (concept, stimulus it marks): the concepts INVERT labels units with.';

CREATE OR REPLACE VIEW unit_labels AS
SELECT
    model_id,
    stimulus_set,
    layer,
    pool,
    concept_set,
    subset,
    mode,
    unit,
    rank,
    formula,
    concepts,
    length,
    auroc,
    p,
    q,
    concept_fraction,
    n_in,
    beam_size,
    max_length,
    min_fraction,
    max_fraction,
    snapshot_id
FROM lake.unit_labels;
COMMENT ON VIEW unit_labels IS 'Result: each unit''s best formulas over a concept set by INVERT''s beam search (Bykov et al. 2023).';
