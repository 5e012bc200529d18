.startup_text none
-- (first line: keeps the CLI from printing '-- Loading resources from …' in colour codes
-- into pipes and scripts; the CLI reads it only as the first line of an -init file.)
-- unitsel: the one entry point. From the repo root:
--   duckdb -init sql/init.sql                       (warehouse in ./warehouse)
--   duckdb -cmd "SET VARIABLE wh_root='DIR'" -cmd ".read sql/init.sql"   (any other root)
-- A PostgreSQL catalog: also -cmd "SET VARIABLE wh_catalog='postgres:dbname=… host=…'".
-- Data in a bucket: the root's data.txt names it; keys come from AWS_ACCESS_KEY_ID /
-- AWS_SECRET_ACCESS_KEY; a server other than Amazon's: -cmd "SET VARIABLE wh_s3_endpoint=
-- 'http://host:9000'" (docs/cluster.md). `unitsel sql` prints the whole command.
SET VARIABLE wh_root = coalesce(getvariable('wh_root'), 'warehouse');
.read sql/lake.sql
.read sql/macros/distributions.sql
.read sql/macros/selectivity.sql
.read sql/macros/category.sql
.read sql/macros/invert.sql
.read sql/macros/checks.sql
.read sql/tables.sql
.read sql/views.sql
.read sql/invert.sql
