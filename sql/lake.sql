-- Attach the warehouse's DuckLake as `lake`: its catalog (the root's SQLite file unless
-- wh_catalog names another) and its data files under <root>/data/. The extensions are
-- installed from their PyPI wheels by unitsel (`python -m unitsel.lake`); nothing is
-- downloaded. A secret carries the paths because ATTACH takes only constants. An attached
-- `lake` (pinned to a snapshot by `unitsel.connect(root, snapshot=N)`) is kept as it is.
-- `.output` lines keep the CLI from printing the secret's "Success" row (Python skips them).
LOAD ducklake;
LOAD sqlite_scanner;
LOAD postgres_scanner;
.output /dev/null
CREATE OR REPLACE SECRET unitsel_lake (
    TYPE ducklake,
    METADATA_PATH coalesce(getvariable('wh_catalog'),
                           'sqlite:' || getvariable('wh_root') || '/catalog.sqlite'),
    DATA_PATH getvariable('wh_root') || '/data/'
);
.output
ATTACH IF NOT EXISTS 'ducklake:unitsel_lake' AS lake (OVERRIDE_DATA_PATH true);
