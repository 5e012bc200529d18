-- How well a concept's stimuli separate from the rest in a unit's activations, as INVERT
-- (Bykov et al., "Labeling Neural Representations with Inverse Recognition", NeurIPS 2023)
-- scores a concept: the AUROC, and the two-sided Mann-Whitney test of the same ranks. Pure
-- scalar macros over rank sums; the table macro unit_concept_auroc (sql/invert.sql) feeds them
-- from class_stats (label-set concepts) or from the activations (per-stimulus concepts).
-- Definitions: docs/metrics.md.

-- AUROC = P(a_in > a_out) + 1/2 P(a_in = a_out) = U / (n_in n_out), U = R_in - n_in (n_in + 1) / 2,
-- R_in the sum of the concept's mid-ranks among all n activations (ascending): what
-- sklearn.metrics.roc_auc_score gives with the concept as the positive class. Counts are
-- taken as DOUBLE (an INTEGER n_in * n_out overflows from 46,341 stimuli a side). NULL when
-- either side is empty.
CREATE OR REPLACE MACRO invert_auroc(rank_sum_in, n_in, n) AS
    CASE WHEN n_in > 0 AND n > n_in
         THEN (rank_sum_in - n_in::DOUBLE * (n_in + 1) / 2) / (n_in::DOUBLE * (n - n_in)) END;
COMMENT ON MACRO invert_auroc IS
    'AUROC of a concept in a unit: (R_in - n_in(n_in+1)/2) / (n_in n_out) from its mid-rank sum R_in among n; NULL if a side is empty.';

-- Two-sided Mann-Whitney z: the larger of the two one-sided z (concept greater, rest
-- greater), i.e. (|U - n_in n_out / 2| - 0.5) / sigma with the tie-corrected sigma of
-- cat_ranksum_z. NULL when a side is empty or every activation ties.
CREATE OR REPLACE MACRO invert_mann_whitney_z(rank_sum_in, n_in, n, tie_term) AS
    greatest(cat_ranksum_z(rank_sum_in, n_in, n, tie_term),
             cat_ranksum_z(n::DOUBLE * (n + 1) / 2 - rank_sum_in, n - n_in, n, tie_term));
COMMENT ON MACRO invert_mann_whitney_z IS
    'Two-sided Mann-Whitney z = (|U - n_in n_out/2| - 0.5)/sigma, tie-corrected; NULL if a side is empty or all activations tie.';

-- Its p-value, 2 P(Z > z) capped at 1: scipy.stats.mannwhitneyu(in, out,
-- alternative='two-sided', method='asymptotic') (use_continuity, tie correction). When every
-- activation ties, z is undefined and SciPy's p is 1 (U equals its mean, so the continuity
-- correction sends z to -inf): 1 here too. NULL when a side is empty.
CREATE OR REPLACE MACRO invert_mann_whitney_p(z, n_in, n) AS
    CASE WHEN n_in > 0 AND n > n_in THEN coalesce(least(1.0, 2 * dist_normal_sf(z)), 1.0) END;
COMMENT ON MACRO invert_mann_whitney_p IS
    'Two-sided Mann-Whitney p = min(1, 2 P(Z > z)) as scipy.stats.mannwhitneyu asymptotic; 1 when all activations tie (z NULL); NULL if a side is empty.';
