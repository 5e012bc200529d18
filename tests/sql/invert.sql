-- case: AUROC of [3, 4] against [1, 2] is 1, of [1, 2] against [3, 4] is 0
SELECT invert_auroc(7.0, 2, 4), invert_auroc(3.0, 2, 4);
SELECT 1.0, 0.0;

-- case: AUROC of [1, 2] against [2, 3]: mid-ranks 1, 2.5 | 2.5, 4, half a pair for the tie
SELECT invert_auroc(3.5, 2, 4);
SELECT 0.125;

-- case: AUROC is NULL when the concept marks no stimulus or every stimulus
SELECT invert_auroc(0.0, 0, 4), invert_auroc(10.0, 4, 4);
SELECT NULL::DOUBLE, NULL::DOUBLE;

-- case: two-sided z is the same either way round: (|U - 2| - 0.5) / sqrt(2 * 2 / 12 * 5)
SELECT invert_mann_whitney_z(7.0, 2, 4, 0.0), invert_mann_whitney_z(3.0, 2, 4, 0.0);
SELECT 1.5 / sqrt(5 / 3), 1.5 / sqrt(5 / 3);

-- case: z is NULL when every activation ties or a side is empty
SELECT invert_mann_whitney_z(5.0, 2, 4, 60.0), invert_mann_whitney_z(10.0, 4, 4, 0.0);
SELECT NULL::DOUBLE, NULL::DOUBLE;

-- case: p is twice the normal tail of z
SELECT invert_mann_whitney_p(1.5 / sqrt(5 / 3), 2, 4);
SELECT 2 * dist_normal_sf(1.5 / sqrt(5 / 3));

-- case: p is 1 at U = n_in n_out / 2 (z below 0) and when every activation ties (z NULL)
SELECT invert_mann_whitney_p(invert_mann_whitney_z(5.0, 2, 4, 0.0), 2, 4),
       invert_mann_whitney_p(invert_mann_whitney_z(5.0, 2, 4, 60.0), 2, 4);
SELECT 1.0, 1.0;

-- case: p is NULL when the concept marks no stimulus or every stimulus
SELECT invert_mann_whitney_p(NULL, 0, 4), invert_mann_whitney_p(NULL, 4, 4);
SELECT NULL::DOUBLE, NULL::DOUBLE;
