-- Tail probabilities of the normal and Student t distributions in plain SQL, so p-values come
-- out of the DuckDB CLI as they do out of SciPy. DuckDB has lgamma but no erf or incomplete
-- beta; these macros add them. tests/test_category.py checks them against SciPy: normal tail
-- to 1.2e-7 relative down to 1e-300, two-sided t p-values to 1e-8 relative for df 1 .. 1e5.

-- Complementary error function for x >= 0: the Chebyshev fit of Press et al., Numerical Recipes
-- (2nd ed., §6.2, erfcc), relative error below 1.2e-7 everywhere, so even p = 1e-300 keeps seven
-- significant digits (what Benjamini-Hochberg needs).
CREATE OR REPLACE MACRO dist_erfc_chebyshev(x, t) AS
    t * exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
    + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
    + t * (-0.82215223 + t * 0.17087277)))))))));
COMMENT ON MACRO dist_erfc_chebyshev IS
    'Numerical Recipes erfcc fit at x >= 0, t = 1/(1 + x/2); use dist_erfc_positive.';

CREATE OR REPLACE MACRO dist_erfc_positive(x) AS dist_erfc_chebyshev(x, 1 / (1 + 0.5 * x));
COMMENT ON MACRO dist_erfc_positive IS
    'erfc(x) for x >= 0 (Numerical Recipes erfcc; relative error < 1.2e-7).';

-- Upper tail P(Z > z) of the standard normal, scipy.stats.norm.sf(z).
CREATE OR REPLACE MACRO dist_normal_sf(z) AS
    CASE WHEN z >= 0 THEN 0.5 * dist_erfc_positive(z / sqrt(2))
         ELSE 1 - 0.5 * dist_erfc_positive(-z / sqrt(2)) END;
COMMENT ON MACRO dist_normal_sf IS
    'Standard normal upper tail P(Z > z) = scipy.stats.norm.sf(z); relative error < 1.2e-7.';

-- Continued fraction of the regularised incomplete beta function (Numerical Recipes §6.4),
-- evaluated backwards from a fixed depth: h <- d_i / (1 + h) for i = 200 .. 1. Where it is used
-- (x < (a + 1) / (a + b + 2)) the fraction converges in O(sqrt(max(a, b))) terms; for the t
-- distribution (b = 1/2) 100 terms reach 1e-10 at every df up to 1e8, and a, b up to 1000 need
-- under 200. The depth is the same for every row on purpose: DuckDB 1.5.6's list_reduce mixes
-- rows up when the lists differ in length and the lambda captures columns.
CREATE OR REPLACE MACRO dist_beta_fraction(a, b, x) AS
    1 + list_reduce(
        range(200, 0, -1),
        lambda h, i: (CASE WHEN i % 2 = 1
                           THEN -(a + (i - 1) // 2) * (a + b + (i - 1) // 2) * x
                           ELSE (i // 2) * (b - i // 2) * x END)
                     / ((a + i - 1) * (a + i)) / (1 + h),
        0.0::DOUBLE);
COMMENT ON MACRO dist_beta_fraction IS
    'Continued fraction of I_x(a, b) (Numerical Recipes betacf), evaluated backwards at a fixed depth.';

-- Regularised incomplete beta I_x(a, b), x and y = 1 - x given separately so that x near 1
-- (tiny t statistics) keeps its precision. Uses the symmetry I_x(a, b) = 1 - I_y(b, a) where
-- the fraction converges slowly. NULL for NULL, NaN or non-positive a, b (DuckDB sorts NaN
-- above every number, so a plain a > 0 would let it through).
CREATE OR REPLACE MACRO dist_incomplete_beta(a, b, x, y) AS
    CASE WHEN NOT coalesce(isfinite(a) AND isfinite(b) AND a > 0 AND b > 0
                           AND x >= 0 AND y >= 0, false) THEN NULL
         WHEN y <= 0 THEN 1.0
         WHEN x <= 0 THEN 0.0
         WHEN x < (a + 1) / (a + b + 2)
         THEN exp(a * ln(x) + b * ln(y) + lgamma(a + b) - lgamma(a) - lgamma(b))
              / a / dist_beta_fraction(a, b, x)
         ELSE 1 - exp(a * ln(x) + b * ln(y) + lgamma(a + b) - lgamma(a) - lgamma(b))
                  / b / dist_beta_fraction(b, a, y) END;
COMMENT ON MACRO dist_incomplete_beta IS
    'Regularised incomplete beta I_x(a, b) = scipy.special.betainc(a, b, x), y = 1 - x given separately; NULL unless a, b > 0.';

-- Two-sided p-value of a t statistic with df degrees of freedom (df may be fractional, as
-- Welch's is): P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2) = 2 * scipy.stats.t.sf(|t|, df).
CREATE OR REPLACE MACRO dist_t_two_sided_p(t, df) AS
    dist_incomplete_beta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t));
COMMENT ON MACRO dist_t_two_sided_p IS
    'Two-sided Student t p-value 2*scipy.stats.t.sf(|t|, df); df may be fractional (Welch).';
