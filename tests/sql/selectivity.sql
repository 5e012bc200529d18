-- case: ccmas of a unit silent outside its class is 1
SELECT sel_ccmas(2.0, 0.0);
SELECT 1.0;

-- case: ccmas exceeds 1 when the rest mean is negative (not clipped)
SELECT sel_ccmas(3.0, -1.0);
SELECT 2.0;

-- case: ccmas is NULL when the denominator is 0
SELECT sel_ccmas(1.0, -1.0);
SELECT NULL::DOUBLE;

-- case: pooled rest mean, hand-worked: A = 2 stimuli of mean 3, the others 1, 1, 4 (sum 12 in all)
SELECT sel_pooled_rest(12.0, 5, 3.0, 2);
SELECT 2.0;

-- case: no pooled rest when every stimulus is in A
SELECT sel_pooled_rest(6.0, 2, 3.0, 2);
SELECT NULL::DOUBLE;

-- case: mean of the other labels' means
SELECT sel_mean_rest(6.0, 3.0, 4);
SELECT 1.0;

-- case: no rest with a single label
SELECT sel_mean_rest(3.0, 3.0, 1);
SELECT NULL::DOUBLE;

-- case: top-class selectivity is the cluster share
SELECT sel_top_class(84, 1000, 0.5);
SELECT 0.084;

-- case: top-class selectivity is NULL without another label
SELECT sel_top_class(10, 10, NULL);
SELECT NULL::DOUBLE;

-- case: localist iff top-class selectivity is 1
SELECT sel_is_localist(1.0), sel_is_localist(0.99), sel_is_localist(NULL);
SELECT true, false, NULL::BOOLEAN;

-- case: precision over fewer stimuli than k
SELECT sel_precision(95, 100, 1000), sel_precision(30, 100, 40);
SELECT 0.95, 0.75;

-- case: the selectivity view's columns (a new metric column also goes in docs/metrics.md, in METRICS of tests/test_selectivity.py, and in layer_selectivity if it has a per-layer summary)
SELECT string_agg(column_name, ', ' ORDER BY column_index) FROM duckdb_columns()
WHERE database_name = 'memory' AND table_name = 'selectivity';
SELECT 'model_id, stimulus_set, layer, pool, subset, unit, n_stimuli, top_label, top_class_selectivity, is_localist, ccmas_label, ccmas, ccmas2_label, ccmas2, ccmas_class_mean, ccmas2_class_mean, precision_label, precision_100, precision_60';
