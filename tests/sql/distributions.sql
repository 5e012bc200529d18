-- case: erfc(1) = 0.1572992070 (Abramowitz & Stegun table 7.1)
SELECT round(dist_erfc_positive(1.0), 7), round(dist_erfc_chebyshev(0.0, 1.0), 7);
SELECT 0.1572992, 1.0;

-- case: normal tails are symmetric and the 97.5 % quantile leaves 2.5 %
SELECT dist_normal_sf(-1.5) + dist_normal_sf(1.5), round(dist_normal_sf(1.959963984540054), 7);
SELECT 1.0, 0.025;

-- case: I_x(1, 1) = x and I_x(2, 1) = x^2; the fraction of I_0.3(1, 1) is 0.21 / 0.3
SELECT round(dist_incomplete_beta(1, 1, 0.3, 0.7), 12), round(dist_incomplete_beta(2, 1, 0.5, 0.5), 12),
       round(dist_beta_fraction(1, 1, 0.3), 12);
SELECT 0.3, 0.25, 0.7;

-- case: Cauchy (df 1): P(|T| > 1) = 1/2; t = 0 gives p = 1
SELECT round(dist_t_two_sided_p(1.0, 1), 12), dist_t_two_sided_p(0.0, 5);
SELECT 0.5, 1.0;
