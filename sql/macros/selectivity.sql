-- Class selectivity metrics of Gale et al. (2019), "Selectivity metrics provide misleading
-- estimates of the selectivity of single units in neural networks". Pure scalar macros; the
-- table macro unit_selectivity (sql/views.sql) feeds them from the summaries.

-- Class-conditional mean activity selectivity (Morcos et al. 2018).
-- (mu_a - mu_rest) / (mu_a + mu_rest); NULL when the denominator is 0 or an input is NULL.
-- Not clipped: exceeds 1 when mu_rest < 0 (Gale et al., Fig. 2).
CREATE OR REPLACE MACRO sel_ccmas(mu_a, mu_rest) AS
    CASE WHEN mu_a + mu_rest = 0 THEN NULL ELSE (mu_a - mu_rest) / (mu_a + mu_rest) END;
COMMENT ON MACRO sel_ccmas IS
    'CCMAS (Morcos 2018; Gale 2019): (mu_a - mu_rest)/(mu_a + mu_rest); NULL if the denominator is 0; may exceed 1 when mu_rest < 0.';

-- Gale et al.'s mu_rest: the mean activation of all stimuli not in class A (their text, "the
-- mean activation of all images not in class A", and their released code pool them):
-- (sum of all activations - n_a * mu_a) / (n_all - n_a). NULL when no stimulus is outside A.
CREATE OR REPLACE MACRO sel_pooled_rest(sum_all, n_all, mu_a, n_a) AS
    CASE WHEN n_all > n_a THEN (sum_all - n_a * mu_a) / (n_all - n_a) END;
COMMENT ON MACRO sel_pooled_rest IS
    'mu_rest for CCMAS as Gale 2019: mean of every stimulus outside class A, (sum_all - n_a*mu_a)/(n_all - n_a); NULL when none.';

-- Morcos et al.'s wording: the mean of the other labels' means, (sum of all label means -
-- mu_a) / (n_labels - 1); equals the pooled mean on balanced classes.
-- NULL with a single label (there is no rest).
CREATE OR REPLACE MACRO sel_mean_rest(sum_means, mu_a, n_labels) AS
    CASE WHEN n_labels > 1 THEN (sum_means - mu_a) / (n_labels - 1) END;
COMMENT ON MACRO sel_mean_rest IS
    'mu_rest for CCMAS: mean of the other labels'' means, (sum_means - mu_a)/(n_labels - 1); NULL when n_labels <= 1.';

-- Top-class selectivity (Gale et al. 2019): the top label's stimuli strictly more active than
-- every stimulus of every other label, over the top label's stimuli. In [0, 1]; 1 = localist.
-- NULL when there is no other label (max_other NULL).
CREATE OR REPLACE MACRO sel_top_class(top_cluster, n_top_label, max_other) AS
    CASE WHEN max_other IS NOT NULL AND n_top_label > 0 THEN top_cluster / n_top_label END;
COMMENT ON MACRO sel_top_class IS
    'Top-class selectivity (Gale 2019): top_cluster/n_top_label in [0,1]; NULL with no other label.';

-- Localist unit (Bowers et al. 2014): the top label's activations are disjoint from, and all
-- above, every other label's, i.e. top-class selectivity is 1. NULL when that is NULL.
CREATE OR REPLACE MACRO sel_is_localist(top_class_selectivity) AS top_class_selectivity = 1;
COMMENT ON MACRO sel_is_localist IS
    'Localist (Bowers 2014; Gale 2019): top-class selectivity = 1; NULL when it is NULL.';

-- Precision (Zhou et al. 2015, as approximated by Gale et al.): among the k most active
-- stimuli (fewer when the set is smaller), the share of the most frequent label. In (0, 1].
CREATE OR REPLACE MACRO sel_precision(n_most_frequent, k, n_stimuli) AS
    n_most_frequent / least(k, n_stimuli);
COMMENT ON MACRO sel_precision IS
    'Precision (Zhou 2015; Gale 2019): count of the most frequent label among the top k / least(k, n_stimuli).';
