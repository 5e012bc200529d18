-- case: fsi on positive means
SELECT cat_fsi(3.0, 1.0);
SELECT 0.5;

-- case: fsi is 1 when only the target drives the unit above zero (Tsao's rule)
SELECT cat_fsi(2.0, -1.0), cat_fsi(-1.0, 2.0);
SELECT 1.0, -1.0;

-- case: fsi is NULL for a silent unit and when both means are negative
SELECT cat_fsi(0.0, 0.0), cat_fsi(-1.0, -2.0);
SELECT NULL::DOUBLE, NULL::DOUBLE;

-- case: d' of [1, 3] against [0, 2]: (2 - 1) / sqrt((2 + 2) / 2)
SELECT cat_dprime(2.0, 2.0, 2, 1.0, 2.0, 2);
SELECT 1 / sqrt(2);

-- case: d' is NULL when neither group varies
SELECT cat_dprime(2.0, 0.0, 5, 1.0, 0.0, 5);
SELECT NULL::DOUBLE;

-- case: rank-sum z of [3, 4] against [1, 2]: U = 4, mu = 2, var = 2 * 2 / 12 * 5
SELECT cat_ranksum_z(7.0, 2, 4, 0.0);
SELECT 1.5 / sqrt(5 / 3);

-- case: rank-sum z is NULL when every activation ties
SELECT cat_ranksum_z(5.0, 2, 4, 60.0);
SELECT NULL::DOUBLE;

-- case: Student t of [1, 3] against [4, 6, 8]: pooled variance 10/3, se 5/3
SELECT cat_ttest_se(2.0, 2, 8.0, 3, false), cat_ttest_t(2.0, 2.0, 2, 6.0, 8.0, 3, false),
       cat_ttest_df(2.0, 2, 8.0, 3, false);
SELECT 5 / 3, -2.4, 3;

-- case: Welch t and df of the same groups: se sqrt(1 + 4/3), df (7/3)^2 / (1 + 8/9)
SELECT cat_ttest_se(2.0, 2, 8.0, 3, true), cat_ttest_t(2.0, 2.0, 2, 6.0, 8.0, 3, true),
       cat_ttest_df(2.0, 2, 8.0, 3, true);
SELECT sqrt(7 / 3), -4 / sqrt(7 / 3), 98 / 34;

-- case: t is NULL with a single stimulus in a group
SELECT cat_ttest_t(2.0, 0.0, 1, 6.0, 8.0, 3, false);
SELECT NULL::DOUBLE;

-- case: rank-sum z with 10^5 stimuli (counts beyond INTEGER products): U at its mean gives -0.5/sd
SELECT cat_ranksum_z(50000.0 * 100001 / 2, 50000, 100000, 0.0),
       cat_mann_whitney_z(7.0, 2.0, 2.0, 0.0);
SELECT -0.5 / sqrt(50000.0 * 50000 / 12 * 100001), 1.5 / sqrt(5 / 3);
