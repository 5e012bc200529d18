-- case: a known name comes back unchanged
SELECT checks_known('model', 'b', ['a', 'b']);
SELECT 'b';

-- case: an unknown name is an error listing what exists
SELECT checks_known('model', 'x', ['a', 'b']);
SELECT 'error: unknown model ''x'': the warehouse has a, b';

-- case: nothing exists yet
SELECT checks_known('layer', 'fc', NULL);
SELECT 'error: unknown layer ''fc'': the warehouse has none yet';
