-- Hand-written views users query, over the generated table views.

CREATE OR REPLACE VIEW labelled_activations AS
SELECT a.*, s.label, s.wnid, p.predicted_label, p.is_correct
FROM activations a
JOIN stimuli s USING (stimulus_set, stimulus)
LEFT JOIN predictions p USING (model_id, stimulus_set, stimulus);
COMMENT ON VIEW labelled_activations IS
    'activations with each stimulus'' label and wnid, and the model''s prediction (NULL if none recorded).';

-- Every unit's class selectivity (Gale et al. 2019), for every summarised partition and subset,
-- from the summaries alone. Pinned definitions (docs/metrics.md):
--   top_label: label of the most active stimulus (ties: smallest stimulus id);
--   ccmas_label / ccmas2_label: labels with the highest / second-highest mean (ties: label
--   ascending); ccmas / ccmas2 take mu_rest as the mean of every stimulus outside the label
--   (Gale et al.), ccmas_class_mean / ccmas2_class_mean as the mean of the other labels'
--   means (Morcos et al.);
--   precision_label: most frequent label among the top 100 (ties: the one ranked first);
--   the summary kernel counts the labels of the top 100 and 60 (unit_summaries), so the
--   view reads no unit_top rows (their two aggregates were half the query's time).
-- A new metric is one column in the final SELECT: unit_selectivity passes every column on,
-- layer_selectivity summarises the ones named there (docs/contributing.md).
CREATE OR REPLACE VIEW selectivity AS
WITH by_unit AS (
    -- One aggregate per unit, no window (a window over the units' labels cost 3x as much):
    -- the label sums both readings of mu_rest need, and the labels ranked 1 (CCMAS) and 2
    -- (CCMAS2) by mean, ties by label (the smallest key of (-mean, label)).
    SELECT model_id, stimulus_set, layer, pool, subset, unit,
           count(*) AS n_labels, sum(mean) AS sum_means, sum(n * mean) AS sum_all,
           sum(n) AS n_all,
           arg_min({'label': label, 'mean': mean, 'n': n}, {'mean': -mean, 'label': label}, 2)
               AS ranked
    FROM class_stats
    GROUP BY ALL
), ccmas AS (
    -- Both readings of mu_rest for the labels ranked 1 and 2.
    SELECT model_id, stimulus_set, layer, pool, subset, unit,
           ranked[1].label AS ccmas_label,
           sel_ccmas(ranked[1].mean,
                     sel_pooled_rest(sum_all, n_all, ranked[1].mean, ranked[1].n)) AS ccmas,
           sel_ccmas(ranked[1].mean,
                     sel_mean_rest(sum_means, ranked[1].mean, n_labels)) AS ccmas_class_mean,
           ranked[2].label AS ccmas2_label,
           sel_ccmas(ranked[2].mean,
                     sel_pooled_rest(sum_all, n_all, ranked[2].mean, ranked[2].n)) AS ccmas2,
           sel_ccmas(ranked[2].mean,
                     sel_mean_rest(sum_means, ranked[2].mean, n_labels)) AS ccmas2_class_mean
    FROM by_unit
)
SELECT u.model_id, u.stimulus_set, u.layer, u.pool, u.subset, u.unit,
       u.n AS n_stimuli,
       u.top_label,
       sel_top_class(u.top_cluster, u.n_top_label, u.max_other) AS top_class_selectivity,
       sel_is_localist(sel_top_class(u.top_cluster, u.n_top_label, u.max_other)) AS is_localist,
       c.ccmas_label, c.ccmas, c.ccmas2_label, c.ccmas2, c.ccmas_class_mean,
       c.ccmas2_class_mean,
       u.precision_label,
       sel_precision(u.most_in_100, 100, u.n) AS precision_100,
       sel_precision(u.most_in_60, 60, u.n) AS precision_60
FROM unit_summaries u
JOIN ccmas c USING (model_id, stimulus_set, layer, pool, subset, unit);
COMMENT ON VIEW selectivity IS
    'Class selectivity of every unit (Gale 2019): top-class, localist, CCMAS and CCMAS2 (Gale''s pooled mu_rest; *_class_mean: Morcos''s mean of class means), precision 100/60; subset all or correct.';

-- One partition's units; correct_only := true uses only correctly classified stimuli, as
-- Gale et al. did (empty when the model has no recorded predictions).
-- What exists, read once, for a table macro's checks of the names it was given: every
-- summarised model, the named model's stimulus sets, their layers and the layer's pools.
CREATE OR REPLACE MACRO summary_names(model_name, set_name, layer_name) AS TABLE
SELECT list(DISTINCT model_id ORDER BY model_id) AS models,
       list(DISTINCT stimulus_set ORDER BY stimulus_set)
           FILTER (model_id = model_name) AS sets,
       list(DISTINCT layer ORDER BY layer)
           FILTER (model_id = model_name AND stimulus_set = set_name) AS layers,
       list(DISTINCT pool ORDER BY pool)
           FILTER (model_id = model_name AND stimulus_set = set_name
                   AND layer = layer_name) AS pools
FROM summary_builds;
COMMENT ON MACRO TABLE summary_names IS
    'The summarised models, the model''s stimulus sets, their layers and the layer''s pools: what the table macros'' name checks list.';

CREATE OR REPLACE MACRO unit_selectivity(model_name, set_name, layer_name, pool_name,
                                         correct_only := false) AS TABLE
WITH known AS MATERIALIZED (
    -- Read once: the checks below name what exists when asked for something else.
    SELECT * FROM summary_names(model_name, set_name, layer_name)
)
SELECT s.* EXCLUDE (model_id, stimulus_set, layer, pool, subset)
FROM selectivity s, (
    -- One row, built before the summaries are read: the error comes even when the filters
    -- below (constants, so DuckLake prunes files by them) leave no row.
    SELECT checks_known('model', model_name, models) = model_name
           AND checks_known('stimulus set', set_name, sets) = set_name
           AND checks_known('layer', layer_name, layers) = layer_name
           AND checks_known('pool', pool_name, pools) = pool_name AS ok
    FROM known) c
WHERE c.ok AND s.model_id = model_name AND s.stimulus_set = set_name AND s.layer = layer_name
  AND s.pool = pool_name AND s.subset = CASE WHEN correct_only THEN 'correct' ELSE 'all' END
ORDER BY s.unit;

-- Per layer: mean and spread of every metric (Gale et al. Fig. 2), with the model's state so
-- trained and untrained networks sit side by side.
CREATE OR REPLACE VIEW layer_selectivity AS
SELECT s.model_id, m.state, s.stimulus_set, s.layer, s.pool, s.subset,
       count(*) AS n_units,
       avg(s.top_class_selectivity) AS mean_top_class_selectivity,
       max(s.top_class_selectivity) AS max_top_class_selectivity,
       avg(s.is_localist::INTEGER) AS share_localist,
       avg(s.ccmas) AS mean_ccmas,
       quantile_cont(s.ccmas, [0.1, 0.5, 0.9]) AS ccmas_deciles_10_50_90,
       avg(s.ccmas2) AS mean_ccmas2,
       avg(s.ccmas_class_mean) AS mean_ccmas_class_mean,
       avg(s.precision_100) AS mean_precision_100,
       quantile_cont(s.precision_100, [0.1, 0.5, 0.9]) AS precision_100_deciles_10_50_90,
       avg(s.precision_60) AS mean_precision_60,
       histogram(round(s.top_class_selectivity, 1)) AS top_class_selectivity_histogram
FROM selectivity s
JOIN models m USING (model_id)
GROUP BY ALL;
COMMENT ON VIEW layer_selectivity IS
    'Per model, layer and pool: mean, deciles and histogram of every class-selectivity metric (Gale 2019 Fig. 2).';

-- Jitterplot data for one unit (Gale et al. Figs. 3-4): every stimulus' activation, label and
-- whether it is the unit's top / CCMAS label, plus a deterministic jitter in [0, 1).
CREATE OR REPLACE MACRO unit_jitter(model_name, set_name, layer_name, pool_name, unit_id,
                                    correct_only := false) AS TABLE
SELECT a.stimulus, a.activation, a.label, a.is_correct,
       a.label = sel.top_label AS is_top_label,
       a.label = sel.ccmas_label AS is_ccmas_label,
       (hash(a.stimulus) % 1000000) / 1000000.0 AS jitter
FROM labelled_activations a,
     (SELECT * FROM unit_selectivity(model_name, set_name, layer_name, pool_name,
                                     correct_only := correct_only) x
      WHERE x.unit = unit_id) sel
WHERE a.model_id = model_name AND a.stimulus_set = set_name AND a.layer = layer_name
  AND a.pool = pool_name AND a.unit = unit_id AND (NOT correct_only OR a.is_correct)
ORDER BY a.stimulus;

-- Category selectivity (Lado & Dobs): every unit's FSI, d', Wilcoxon rank-sum and t-tests for
-- the target label `category_name` against the rest of the stimulus set, for every summarised
-- partition of the set (narrow with model_name / layer_name / pool_name), from the summaries
-- alone. t-tests compare the target with each other label separately; their p-values are
-- Benjamini-Hochberg adjusted across the units of a partition, per compared label. A unit is
-- t-test selective when every comparison has q < ttest_q and t > 0. Definitions:
-- docs/metrics.md. Empty when no summary has stimuli of that label.
CREATE OR REPLACE MACRO category_selectivity(set_name, category_name, model_name := NULL,
        layer_name := NULL, pool_name := NULL, correct_only := false, fsi_threshold := 0.3,
        dprime_threshold := 0.65, ranksum_alpha := 0.001, ttest_q := 0.05,
        welch := false) AS TABLE
WITH known AS MATERIALIZED (
    SELECT list(DISTINCT stimulus_set ORDER BY stimulus_set) AS sets,
           list(DISTINCT model_id ORDER BY model_id)
               FILTER (stimulus_set = set_name) AS models,
           list(DISTINCT layer ORDER BY layer)
               FILTER (stimulus_set = set_name
                       AND (model_name IS NULL OR model_id = model_name)) AS layers,
           list(DISTINCT pool ORDER BY pool)
               FILTER (stimulus_set = set_name AND (model_name IS NULL OR model_id = model_name)
                       AND (layer_name IS NULL OR layer = layer_name)) AS pools,
           (SELECT list(DISTINCT label ORDER BY label) FROM stimuli
            WHERE stimulus_set = set_name) AS labels
    FROM summary_builds
), checked AS (
    -- One row, built before the summaries are read, so a name that does not exist is an
    -- error listing what does even when the filters below leave no row.
    SELECT checks_known('stimulus set', set_name, sets) = set_name
           AND checks_known('category', category_name, labels) = category_name
           AND (model_name IS NULL OR checks_known('model', model_name, models) = model_name)
           AND (layer_name IS NULL OR checks_known('layer', layer_name, layers) = layer_name)
           AND (pool_name IS NULL OR checks_known('pool', pool_name, pools) = pool_name) AS ok
    FROM known
), stats AS (
    SELECT class_stats.* FROM class_stats, checked
    WHERE checked.ok AND stimulus_set = set_name
      AND (model_name IS NULL OR model_id = model_name)
      AND (layer_name IS NULL OR layer = layer_name)
      AND (pool_name IS NULL OR pool = pool_name)
      AND subset = CASE WHEN correct_only THEN 'correct' ELSE 'all' END
), tagged AS (
    SELECT *, label = category_name AS is_target,
           sum(n * mean) OVER g / sum(n) OVER g AS group_mean
    FROM stats
    WINDOW g AS (PARTITION BY model_id, layer, pool, unit, label = category_name)
), grouped AS (
    -- The rest pooled from its labels' moments (Chan et al.'s merge of M2).
    SELECT model_id, stimulus_set, layer, pool, subset, unit, is_target,
           sum(n)::INTEGER AS n, any_value(group_mean) AS mean,
           sum(m2 + n * (mean - group_mean) ** 2) AS m2, sum(rank_sum) AS rank_sum
    FROM tagged GROUP BY ALL
), against_rest AS (
    SELECT t.model_id, t.stimulus_set, t.layer, t.pool, t.subset, t.unit,
           t.n AS n_target, r.n AS n_rest, t.mean AS mean_target, r.mean AS mean_rest,
           cat_fsi(t.mean, r.mean) AS fsi,
           cat_dprime(t.mean, t.m2, t.n, r.mean, r.m2, r.n) AS dprime,
           cat_ranksum_z(t.rank_sum, t.n, u.n, u.tie_term) AS ranksum_z
    FROM grouped t
    JOIN grouped r USING (model_id, stimulus_set, layer, pool, subset, unit)
    JOIN unit_summaries u USING (model_id, stimulus_set, layer, pool, subset, unit)
    WHERE t.is_target AND NOT r.is_target
), ttests AS (
    SELECT model_id, layer, pool, unit, label, t, p,
           row_number() OVER (family ORDER BY p NULLS LAST) AS i, count(p) OVER family AS m
    FROM (
        -- t and df are materialised first: the p-value macro uses them inside a lambda, where
        -- an inlined expression would be re-evaluated at every step of the fraction.
        SELECT *, dist_t_two_sided_p(t, df) AS p
        FROM (
            SELECT c.model_id, c.layer, c.pool, c.unit, o.label,
                   cat_ttest_t(c.mean, c.m2, c.n, o.mean, o.m2, o.n, welch) AS t,
                   cat_ttest_df(c.m2, c.n, o.m2, o.n, welch) AS df
            FROM stats c JOIN stats o USING (model_id, layer, pool, unit)
            WHERE c.label = category_name AND o.label <> category_name
        )
    )
    WINDOW family AS (PARTITION BY model_id, layer, pool, label)
), adjusted AS (
    -- Benjamini-Hochberg: q_i = min over j >= i of p_j * m / j, at most 1.
    SELECT model_id, layer, pool, unit,
           min(t) AS ttest_min_t,
           max(q) AS ttest_max_p_fdr,
           bool_and(coalesce(q < ttest_q AND t > 0, false)) AS is_ttest_selective
    FROM (
        SELECT *, CASE WHEN p IS NOT NULL THEN least(1, min(p * m / i) OVER (
                      PARTITION BY model_id, layer, pool, label ORDER BY i DESC)) END AS q
        FROM ttests
    )
    GROUP BY ALL
), result AS (
    SELECT a.model_id, a.stimulus_set, a.layer, a.pool, a.subset, a.unit,
           a.n_target, a.n_rest, a.mean_target, a.mean_rest,
           a.fsi, coalesce(a.fsi > fsi_threshold, false) AS is_fsi_selective,
           a.dprime, coalesce(a.dprime > dprime_threshold, false) AS is_dprime_selective,
           a.ranksum_z, dist_normal_sf(a.ranksum_z) AS ranksum_p,
           coalesce(dist_normal_sf(a.ranksum_z) < ranksum_alpha, false) AS is_ranksum_selective,
           t.ttest_min_t, t.ttest_max_p_fdr, coalesce(t.is_ttest_selective, false)
               AS is_ttest_selective
    FROM against_rest a LEFT JOIN adjusted t USING (model_id, layer, pool, unit)
)
SELECT * FROM result;

-- One partition's units, ordered; the columns docs/metrics.md defines.
CREATE OR REPLACE MACRO unit_category_selectivity(model_name, set_name, layer_name, pool_name,
        category_name, correct_only := false, fsi_threshold := 0.3, dprime_threshold := 0.65,
        ranksum_alpha := 0.001, ttest_q := 0.05, welch := false) AS TABLE
SELECT * EXCLUDE (model_id, stimulus_set, layer, pool, subset)
FROM category_selectivity(set_name, category_name, model_name := model_name,
                          layer_name := layer_name, pool_name := pool_name,
                          correct_only := correct_only, fsi_threshold := fsi_threshold,
                          dprime_threshold := dprime_threshold, ranksum_alpha := ranksum_alpha,
                          ttest_q := ttest_q, welch := welch)
ORDER BY unit;

-- Percent of selective units per model, layer, pool and metric (Lado & Dobs Fig. 1b-c: pool
-- 'none' = units, 'mean' / 'l2' / 'max' = kernels), with the model's state for trained vs
-- untrained. A table macro rather than a view because the target category is a parameter.
CREATE OR REPLACE MACRO layer_category_selectivity(set_name, category_name,
        correct_only := false) AS TABLE
SELECT s.model_id, m.state, s.layer, s.pool, s.metric,
       count(*) AS n_units,
       count(*) FILTER (s.selective) AS n_selective,
       100 * count(*) FILTER (s.selective) / count(*) AS percent_selective
FROM (
    UNPIVOT (
        SELECT model_id, layer, pool, unit, is_fsi_selective AS fsi,
               is_dprime_selective AS dprime, is_ranksum_selective AS ranksum,
               is_ttest_selective AS ttest
        FROM category_selectivity(set_name, category_name, correct_only := correct_only)
    ) ON fsi, dprime, ranksum, ttest INTO NAME metric VALUE selective
) s
LEFT JOIN models m USING (model_id)
GROUP BY ALL
ORDER BY s.model_id, s.layer, s.pool, s.metric;

-- Mean inter-metric consistency per layer (Lado & Dobs Fig. 1f): the mean Spearman rho over
-- the pairs of the four category metrics (lesions excluded), its SEM over pairs, and the
-- model's state so trained and untrained networks sit side by side.
CREATE OR REPLACE VIEW layer_metric_consistency AS
SELECT c.model_id, m.state, c.stimulus_set, c.category, c.layer, c.pool,
       count(c.spearman_rho) AS n_pairs,
       avg(c.spearman_rho) AS mean_rho,
       stddev_samp(c.spearman_rho) / sqrt(count(c.spearman_rho)) AS sem_rho
FROM metric_consistency c
LEFT JOIN models m USING (model_id)
WHERE c.metric_a NOT LIKE 'lesion:%' AND c.metric_b NOT LIKE 'lesion:%'
GROUP BY ALL;
COMMENT ON VIEW layer_metric_consistency IS
    'Per layer and pool: mean and SEM of the Spearman rho between the category metrics (Lado & Dobs Fig. 1f).';

-- DORA Tables 1-2: per model, layer and functional measure, the mean Mantel r over the semantic
-- baselines it was tested against, and the largest p among them (all significant when small).
CREATE OR REPLACE VIEW mantel_summary AS
SELECT r.model_id, m.state, r.stimulus_set, r.layer, r.pool, r.measure, r.setting,
       r.concept_set, r.conversion, r.method,
       count(r.r) AS n_baselines,
       avg(r.r) AS mean_r,
       max(r.p) AS max_p
FROM mantel_results r
LEFT JOIN models m USING (model_id)
GROUP BY ALL;
COMMENT ON VIEW mantel_summary IS
    'Mean Mantel r over semantic baselines per model, layer and functional measure (DORA Tables 1-2).';

-- Significant features (interactive naming Sec. 3.3): per stimulus and class of a linear
-- read-out, the features whose positive contributions w * x (w > 0, w * x > 0) account for at
-- least `share` of the class's positive score, largest first: the minimal such set (a feature
-- is kept while the contributions ranked before it sum to less than share * score; ties by
-- feature). Features are the read-out's inputs: `feature_layer`'s units at pool 'none'.
CREATE OR REPLACE MACRO significant_features(model_name, set_name, readout_name, feature_layer,
                                             share := 0.9) AS TABLE
WITH contributions AS (
    SELECT a.stimulus, w.label, a.unit AS feature, w.weight * a.activation AS contribution
    FROM activations a
    JOIN readout_weights w ON w.model_id = a.model_id AND w.feature = a.unit
    WHERE a.model_id = model_name AND a.stimulus_set = set_name AND a.layer = feature_layer
      AND a.pool = 'none' AND w.layer = readout_name
      AND w.weight > 0 AND w.weight * a.activation > 0
), ranked AS (
    SELECT *,
           sum(contribution) OVER (PARTITION BY stimulus, label) AS positive_score,
           coalesce(sum(contribution) OVER (
               PARTITION BY stimulus, label ORDER BY contribution DESC, feature
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
           row_number() OVER (PARTITION BY stimulus, label
                              ORDER BY contribution DESC, feature) AS rank
    FROM contributions
)
SELECT model_name AS model_id, set_name AS stimulus_set, stimulus, label, feature, rank,
       contribution, positive_score
FROM ranked
WHERE before < share * positive_score
ORDER BY stimulus, label, rank;
COMMENT ON MACRO TABLE significant_features IS
    'Per stimulus and read-out class: the minimal set of features reaching share (0.9) of the positive score (interactive naming).';

-- Each unit's WWW concepts beside its class selectivity on the same stimulus set (all
-- stimuli): are the units WWW names 'dog' also selective for dogs?
CREATE OR REPLACE VIEW unit_concepts AS
SELECT c.model_id, c.stimulus_set, c.layer, c.pool, c.unit, c.encoder, c.crop, c.similarity,
       c.concept_set, c.concept, c.score,
       s.top_label, s.top_class_selectivity, s.ccmas_label, s.ccmas, s.precision_label,
       s.precision_100
FROM concept_scores c
LEFT JOIN selectivity s
       ON s.model_id = c.model_id AND s.stimulus_set = c.stimulus_set AND s.layer = c.layer
      AND s.pool = c.pool AND s.unit = c.unit AND s.subset = 'all'
WHERE c.is_concept;
COMMENT ON VIEW unit_concepts IS
    'Each unit''s WWW concepts with its top-class, CCMAS and precision selectivity (all stimuli).';
