-- INVERT's concept scores (Bykov et al. 2023) of one partition's units: per unit and concept of
-- a concept set (concept_masks), the AUROC of the concept's stimuli against the rest, the
-- two-sided Mann-Whitney p-value and its Benjamini-Hochberg q across every test the call
-- returns (the layer's units x concepts). Label-set concepts come from class_stats alone
-- (a concept's rank sum is the sum of its labels' rank sums); per-stimulus concepts rank the
-- unit's activations once. correct_only := true uses only correctly classified stimuli (their
-- own ranks, as class_stats' subset 'correct'). A concept that marks no stimulus of the subset
-- has no row. Definitions: docs/metrics.md.
CREATE OR REPLACE MACRO unit_concept_auroc(model_name, set_name, layer_name, pool_name,
                                           concept_set_name, correct_only := false) AS TABLE
WITH known AS MATERIALIZED (
    SELECT *, (SELECT list(DISTINCT concept_set ORDER BY concept_set) FROM concept_masks
               WHERE stimulus_set = set_name) AS concept_sets
    FROM summary_names(model_name, set_name, layer_name)
), masks AS MATERIALIZED (
    -- Built after the checks, so a name that does not exist is an error listing what does.
    SELECT m.concept, m.label, m.stimulus
    FROM concept_masks m, known k
    WHERE checks_known('model', model_name, k.models) = model_name
      AND checks_known('stimulus set', set_name, k.sets) = set_name
      AND checks_known('layer', layer_name, k.layers) = layer_name
      AND checks_known('pool', pool_name, k.pools) = pool_name
      AND checks_known('concept set', concept_set_name, k.concept_sets) = concept_set_name
      AND m.stimulus_set = set_name AND m.concept_set = concept_set_name
), label_sums AS (
    SELECT c.unit, m.concept, sum(c.n) AS n_in, sum(c.rank_sum) AS rank_sum
    FROM class_stats c JOIN masks m ON m.label = c.label
    WHERE c.model_id = model_name AND c.stimulus_set = set_name AND c.layer = layer_name
      AND c.pool = pool_name AND c.subset = CASE WHEN correct_only THEN 'correct' ELSE 'all' END
    GROUP BY ALL
), ranked AS (
    -- Mid-ranks (ascending, ties share their mean rank) among the unit's activations in the
    -- subset; read only when the concept set has per-stimulus masks.
    SELECT a.unit, a.stimulus,
           rank() OVER (PARTITION BY a.unit ORDER BY a.activation)
               + (count(*) OVER (PARTITION BY a.unit, a.activation) - 1) / 2 AS mid_rank
    FROM activations a
    LEFT JOIN predictions p
           ON p.model_id = a.model_id AND p.stimulus_set = a.stimulus_set
          AND p.stimulus = a.stimulus
    WHERE a.model_id = model_name AND a.stimulus_set = set_name AND a.layer = layer_name
      AND a.pool = pool_name AND (NOT correct_only OR coalesce(p.is_correct, false))
      AND (SELECT count(*) FROM masks WHERE stimulus IS NOT NULL) > 0
), stimulus_sums AS (
    SELECT r.unit, m.concept, count(*) AS n_in, sum(r.mid_rank) AS rank_sum
    FROM ranked r JOIN masks m ON m.stimulus = r.stimulus
    GROUP BY ALL
), tests AS (
    SELECT s.unit, s.concept, s.n_in::INTEGER AS n_in, (u.n - s.n_in)::INTEGER AS n_out,
           invert_auroc(s.rank_sum, s.n_in, u.n) AS auroc,
           invert_mann_whitney_z(s.rank_sum, s.n_in, u.n, u.tie_term) AS z
    FROM (SELECT * FROM label_sums UNION ALL SELECT * FROM stimulus_sums) s
    JOIN unit_summaries u ON u.unit = s.unit
    WHERE u.model_id = model_name AND u.stimulus_set = set_name AND u.layer = layer_name
      AND u.pool = pool_name AND u.subset = CASE WHEN correct_only THEN 'correct' ELSE 'all' END
), ordered AS (
    -- z is materialised before the p-value, whose macro uses it several times.
    SELECT *, row_number() OVER (ORDER BY p NULLS LAST, unit, concept) AS i,
           count(p) OVER () AS m
    FROM (SELECT unit, concept, n_in, n_out, auroc,
                 invert_mann_whitney_p(z, n_in, n_in + n_out) AS p FROM tests)
)
-- Benjamini-Hochberg: q_i = min over j >= i of p_j * m / j, at most 1.
SELECT unit, concept, n_in, n_out, auroc, p,
       CASE WHEN p IS NOT NULL
            THEN least(1, min(p * m / i) OVER (ORDER BY i DESC)) END AS q
FROM ordered
ORDER BY unit, concept;
COMMENT ON MACRO TABLE unit_concept_auroc IS
    'INVERT concept scores per unit and concept of a concept set: AUROC, n_in, n_out, two-sided Mann-Whitney p and BH q over the layer (Bykov 2023).';

-- Does class selectivity agree with the best INVERT label? Every unit's best formula (rank 1)
-- of each labelling beside its class-selectivity metrics of the same subset, with the model's
-- state (trained / untrained side by side).
CREATE OR REPLACE VIEW unit_label_selectivity AS
SELECT l.model_id, m.state, l.stimulus_set, l.layer, l.pool, l.subset, l.concept_set, l.mode,
       l.unit, l.formula, l.length, l.auroc, l.p, l.q,
       s.top_label, s.top_class_selectivity, s.ccmas_label, s.ccmas, s.precision_100
FROM unit_labels l
JOIN selectivity s USING (model_id, stimulus_set, layer, pool, subset, unit)
LEFT JOIN models m USING (model_id)  -- an imported array's model may have no models row
WHERE l.rank = 1;
COMMENT ON VIEW unit_label_selectivity IS
    'Each unit''s best INVERT formula (rank 1: AUROC, p, q, length) beside its class selectivity (top-class, CCMAS, precision), same subset.';

-- Per layer and labelling: how many units, their best labels' AUROC and length, and the
-- Spearman correlation of CCMAS with the best label's AUROC (Pearson of mid-ranks: ties
-- share their mean rank, as scipy.stats.spearmanr).
CREATE OR REPLACE VIEW layer_label_selectivity AS
WITH ranked AS (
    SELECT *,
           rank() OVER k_ccmas + (count(*) OVER (PARTITION BY model_id, stimulus_set, layer,
               pool, subset, concept_set, mode, ccmas) - 1) / 2 AS ccmas_rank,
           rank() OVER k_auroc + (count(*) OVER (PARTITION BY model_id, stimulus_set, layer,
               pool, subset, concept_set, mode, auroc) - 1) / 2 AS auroc_rank
    FROM unit_label_selectivity
    WHERE ccmas IS NOT NULL
    WINDOW k_ccmas AS (PARTITION BY model_id, stimulus_set, layer, pool, subset, concept_set,
                       mode ORDER BY ccmas),
           k_auroc AS (PARTITION BY model_id, stimulus_set, layer, pool, subset, concept_set,
                       mode ORDER BY auroc)
)
SELECT model_id, state, stimulus_set, layer, pool, subset, concept_set, mode,
       count(*) AS n_units, avg(auroc) AS mean_auroc, avg(length) AS mean_length,
       avg((q < 0.05)::INTEGER) AS share_q_below_05,
       corr(ccmas_rank, auroc_rank) AS spearman_ccmas_auroc
FROM ranked
GROUP BY ALL;
COMMENT ON VIEW layer_label_selectivity IS
    'Per layer and INVERT labelling: units, mean best AUROC and length, share with q < 0.05, Spearman of CCMAS with the best AUROC (units with a CCMAS).';
