-- Table macros name what exists when asked for what does not: a typo in a model id would
-- otherwise return no rows and no hint.

-- `value` when it is one of `known`, else an error naming the kind and listing `known`. Used
-- as the value a filter compares with (`model_id = checks_known('model', …)`), so the check
-- runs even when the filter leaves no rows.
CREATE OR REPLACE MACRO checks_known(kind, value, known) AS
    CASE WHEN list_contains(known, value) THEN value
         ELSE error(format('unknown {} {}: the warehouse has {}', kind,
                           coalesce('''' || value || '''', 'NULL'),
                           CASE WHEN len(coalesce(known, [])) = 0 THEN 'none yet'
                                ELSE array_to_string(known, ', ') END)) END;
COMMENT ON MACRO checks_known IS
    'value when it is in the list known, else error(''unknown <kind> <value>: the warehouse has <known>'').';
