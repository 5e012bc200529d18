-- Object storage: a data path in an S3-compatible bucket (`s3://bucket/prefix/`). DuckDB reads
-- the keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION itself (or from a
-- DuckDB secret of yours). A server other than Amazon's (MinIO, Ceph, moto) is named by
-- wh_s3_endpoint, its URL as in AWS_ENDPOINT_URL (unitsel sets it from there): path-style
-- addressing, TLS unless the URL says http://. Without it every setting is left as it was.
SET GLOBAL s3_endpoint = coalesce(
    regexp_replace(getvariable('wh_s3_endpoint')::VARCHAR, '^https?://|/+$', '', 'g'),
    current_setting('s3_endpoint'));
SET GLOBAL s3_use_ssl = coalesce(NOT starts_with(getvariable('wh_s3_endpoint')::VARCHAR, 'http://'),
                                 current_setting('s3_use_ssl'));
SET GLOBAL s3_url_style = CASE WHEN getvariable('wh_s3_endpoint')::VARCHAR IS NULL
    THEN current_setting('s3_url_style') ELSE 'path' END;
