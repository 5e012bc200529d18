-- GENERATED from src/unitsel/schema.py by `python -m unitsel.sqlfiles`; do not edit.
-- One view per table over its Hive-partitioned Parquet under getvariable('wh_root').

CREATE OR REPLACE VIEW models AS
SELECT
    model_id,
    architecture,
    state,
    weights_sha256,
    preprocessing,
    source
FROM read_parquet(
    getvariable('wh_root') || '/models/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'model_id': 'VARCHAR'}
);
COMMENT ON VIEW models IS 'One row per model: provenance, so activations from different set-ups never mix silently.';

CREATE OR REPLACE VIEW layers AS
SELECT
    model_id,
    layer,
    pool,
    kind,
    n_units,
    shape
FROM read_parquet(
    getvariable('wh_root') || '/layers/*/*/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'model_id': 'VARCHAR', 'layer': 'VARCHAR', 'pool': 'VARCHAR'}
);
COMMENT ON VIEW layers IS 'One row per recorded layer and pool of a model: one per activations partition.';

CREATE OR REPLACE VIEW stimuli AS
SELECT
    stimulus_set,
    stimulus,
    uri,
    label,
    wnid
FROM read_parquet(
    getvariable('wh_root') || '/stimuli/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'stimulus_set': 'VARCHAR'}
);
COMMENT ON VIEW stimuli IS 'One row per stimulus of a set, with its class label.';

CREATE OR REPLACE VIEW predictions AS
SELECT
    model_id,
    stimulus_set,
    stimulus,
    predicted_label,
    is_correct
FROM read_parquet(
    getvariable('wh_root') || '/predictions/*/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'model_id': 'VARCHAR', 'stimulus_set': 'VARCHAR'}
);
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
FROM read_parquet(
    getvariable('wh_root') || '/activations/*/*/*/*/*.parquet',
    hive_partitioning = true,
    hive_types = {'model_id': 'VARCHAR', 'stimulus_set': 'VARCHAR', 'layer': 'VARCHAR', 'pool': 'VARCHAR'}
);
COMMENT ON VIEW activations IS 'One row per (unit, stimulus): the raw truth every summary and metric derives from.';
