-- Category (e.g. face) selectivity metrics compared by Lado & Dobs, "Selective is selective, or
-- not?": the target category against the rest of the stimulus set. Pure scalar macros over
-- summary statistics; the table macro category_selectivity (sql/views.sql) feeds them from
-- class_stats and unit_summaries. Definitions and edge cases: docs/metrics.md.

-- Face selectivity index (Tsao et al. 2006) on mean responses r_t (target) and r_n (rest):
-- (r_t - r_n) / (r_t + r_n) when both are >= 0; set to 1 when r_t > 0 > r_n and to -1 when
-- r_t < 0 < r_n (Tsao's rule, so the index stays in [-1, 1]); NULL when both are <= 0 (the
-- ratio's sign would invert, and a silent unit has no preference).
CREATE OR REPLACE MACRO cat_fsi(r_t, r_n) AS
    CASE WHEN r_t > 0 AND r_n < 0 THEN 1.0
         WHEN r_t < 0 AND r_n > 0 THEN -1.0
         WHEN r_t >= 0 AND r_n >= 0 AND r_t + r_n > 0 THEN (r_t - r_n) / (r_t + r_n) END;
COMMENT ON MACRO cat_fsi IS
    'FSI (r_t - r_n)/(r_t + r_n) on mean responses; 1 if r_t > 0 > r_n, -1 if r_t < 0 < r_n; NULL if both <= 0.';

-- d' = (mu_t - mu_n) / sqrt((var_t + var_n) / 2), sample variances (ddof 1) from M2 and n.
-- NULL when a group has fewer than 2 stimuli or both variances are 0.
CREATE OR REPLACE MACRO cat_dprime(mean_t, m2_t, n_t, mean_n, m2_n, n_n) AS
    CASE WHEN n_t > 1 AND n_n > 1 AND m2_t / (n_t - 1) + m2_n / (n_n - 1) > 0
         THEN (mean_t - mean_n) / sqrt((m2_t / (n_t - 1) + m2_n / (n_n - 1)) / 2) END;
COMMENT ON MACRO cat_dprime IS
    'd'' = (mu_t - mu_n)/sqrt((s2_t + s2_n)/2), sample variances; NULL if n < 2 or both variances are 0.';

-- Mann-Whitney z from group sizes a (target) and b (rest) as DOUBLE: with INTEGER counts,
-- n * (n - 1) overflows from n = 46,341 stimuli.
CREATE OR REPLACE MACRO cat_mann_whitney_z(rank_sum_t, a, b, tie_term) AS
    CASE WHEN a > 0 AND b > 0
              AND a * b / 12 * ((a + b + 1) - tie_term / ((a + b) * (a + b - 1))) > 0
         THEN (rank_sum_t - a * (a + 1) / 2 - a * b / 2 - 0.5)
              / sqrt(a * b / 12 * ((a + b + 1) - tie_term / ((a + b) * (a + b - 1)))) END;
COMMENT ON MACRO cat_mann_whitney_z IS
    'Mann-Whitney z (target > rest) from DOUBLE group sizes; use cat_ranksum_z.';

-- Wilcoxon rank-sum / Mann-Whitney z for "target > rest" from the target's mid-rank sum
-- among all n stimuli, with the tie correction and the 0.5 continuity correction:
-- exactly scipy.stats.mannwhitneyu(target, rest, alternative='greater', method='asymptotic').
-- NULL when either group is empty or every activation is equal.
CREATE OR REPLACE MACRO cat_ranksum_z(rank_sum_t, n_t, n, tie_term) AS
    cat_mann_whitney_z(rank_sum_t, n_t::DOUBLE, (n - n_t)::DOUBLE, tie_term);
COMMENT ON MACRO cat_ranksum_z IS
    'Mann-Whitney z (target > rest) with tie and continuity corrections, as scipy.stats.mannwhitneyu asymptotic.';

-- Two-sample t statistic of groups a and b from (mean, M2, n): Student's pooled-variance test
-- (scipy.stats.ttest_ind) or, with welch, Welch's. NULL when a group has fewer than 2 stimuli
-- or the standard error is 0 (SciPy returns inf or nan there).
CREATE OR REPLACE MACRO cat_ttest_se(m2_a, n_a, m2_b, n_b, welch) AS
    CASE WHEN n_a > 1 AND n_b > 1
         THEN CASE WHEN welch THEN sqrt(m2_a / (n_a - 1) / n_a + m2_b / (n_b - 1) / n_b)
                   ELSE sqrt((m2_a + m2_b) / (n_a + n_b - 2) * (1 / n_a + 1 / n_b)) END END;
COMMENT ON MACRO cat_ttest_se IS
    'Standard error of mean_a - mean_b: pooled (Student) or Welch; NULL if a group has < 2 stimuli.';

CREATE OR REPLACE MACRO cat_ttest_t(mean_a, m2_a, n_a, mean_b, m2_b, n_b, welch) AS
    CASE WHEN cat_ttest_se(m2_a, n_a, m2_b, n_b, welch) > 0
         THEN (mean_a - mean_b) / cat_ttest_se(m2_a, n_a, m2_b, n_b, welch) END;
COMMENT ON MACRO cat_ttest_t IS
    't statistic of group a vs b (scipy.stats.ttest_ind, equal_var = not welch); NULL if the SE is 0 or undefined.';

-- Degrees of freedom: n_a + n_b - 2, or Welch-Satterthwaite's.
CREATE OR REPLACE MACRO cat_ttest_df(m2_a, n_a, m2_b, n_b, welch) AS
    CASE WHEN NOT welch THEN n_a + n_b - 2
         ELSE (m2_a / (n_a - 1) / n_a + m2_b / (n_b - 1) / n_b) ** 2
              / ((m2_a / (n_a - 1) / n_a) ** 2 / (n_a - 1)
                 + (m2_b / (n_b - 1) / n_b) ** 2 / (n_b - 1)) END;
COMMENT ON MACRO cat_ttest_df IS
    'Degrees of freedom of the t-test: n_a + n_b - 2 (Student) or Welch-Satterthwaite.';
