-- Attach the warehouse's DuckLake as `lake`: its catalog (the root's SQLite file unless
-- wh_catalog names another) and its data files under <root>/data/, or where wh_data (or the
-- root's data.txt) says: another folder or a bucket (`s3://bucket/prefix/`, sql/s3.sql).
-- The extensions are installed from their PyPI wheels by unitsel (`python -m unitsel.lake`);
-- nothing is downloaded. A secret carries the paths because ATTACH takes only constants. An attached
-- `lake` (pinned to a snapshot by `unitsel.connect(root, snapshot=N)`) is kept as it is.
-- `.output` lines keep the CLI from printing the secret's "Success" row and the check's empty
-- result (Python skips them).
LOAD ducklake;
LOAD sqlite_scanner;
LOAD postgres_scanner;
LOAD httpfs;
.read sql/s3.sql
SET VARIABLE wh_data = coalesce(getvariable('wh_data'),
    (SELECT trim(content) FROM read_text(getvariable('wh_root') || '/data.tx[t]')),
    getvariable('wh_root') || '/data/');
-- Reading never creates: a root whose own catalog is missing or empty is refused (with data
-- files beside it that would start a new warehouse over them), and the ATTACH below is then
-- pointed where nothing can be created. (`unitsel` checks the same before it sets wh_catalog.)
SET VARIABLE wh_refused = CASE
    WHEN getvariable('wh_catalog') IS NOT NULL OR coalesce((SELECT max(size) FROM read_blob(
        [getvariable('wh_root') || '/catalog.sqlite']) WHERE getvariable('wh_catalog') IS NULL),
        0) > 0 THEN NULL
    WHEN (SELECT count(*) FROM glob(getvariable('wh_root') || '/data/**/*.parquet')
          WHERE getvariable('wh_catalog') IS NULL) > 0  -- (no glob when unitsel has checked)
    THEN getvariable('wh_root') || ' holds data files but its catalog.sqlite is missing or '
         || 'empty: restore it from a backup (docs/design.md); nothing was created'
    ELSE getvariable('wh_root') || ' is not a unitsel warehouse (no catalog.sqlite): check '
         || 'wh_root, or create one with `unitsel init`' END;
.output /dev/null
SELECT error('unitsel: ' || getvariable('wh_refused')) WHERE getvariable('wh_refused') NOT NULL;
CREATE OR REPLACE SECRET unitsel_lake (
    TYPE ducklake,
    METADATA_PATH CASE WHEN getvariable('wh_refused') IS NULL
        THEN coalesce(getvariable('wh_catalog'),
                      'sqlite:' || getvariable('wh_root') || '/catalog.sqlite')
        ELSE 'sqlite:/dev/null/unitsel-refused' END,
    DATA_PATH getvariable('wh_data')
);
.output
ATTACH IF NOT EXISTS 'ducklake:unitsel_lake' AS lake (OVERRIDE_DATA_PATH true);
