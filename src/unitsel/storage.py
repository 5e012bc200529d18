"""Where a lake's data files live: a local folder or an S3-compatible bucket (`s3://bucket/
prefix/`), and the few file operations unitsel's own writers and checks need on either.

Credentials and the endpoint come from the standard places, never from unitsel's options, so
nothing secret is written into a warehouse or printed: the `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY` (`AWS_SESSION_TOKEN`) and `AWS_REGION` variables, which pyarrow,
Polars and DuckDB all read, and `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for a server other
than Amazon's (MinIO, Ceph, moto), which pyarrow and Polars read and unitsel hands to DuckDB
(`sql/s3.sql`). A Dask worker needs the same variables in its environment.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitsel.errors import InputError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

S3 = "s3://"
# Seconds to connect and to wait for an answer: a wrong endpoint fails in seconds, not in the
# SDK's default minutes of retries.
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 20.0


def is_remote(path: str) -> bool:
    return path.startswith(S3)


def data_path(given: str) -> str:
    """The lake's data path in the place `given` (`s3://bucket/prefix` or a local folder),
    as the lake records it: its `data/` folder, ending in '/', as in a root of its own.
    Beside it, not in it, go the files the lake does not list (a stimulus set's images):
    DuckLake's clean-up deletes whatever it does not list under its data path. Any other
    URL is refused."""
    return _place(given).rstrip("/") + "/data/"


def _place(given: str) -> str:
    if is_remote(given):
        bucket = given.removeprefix(S3).split("/", 1)[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise InputError(f"{given!r} names no valid bucket: a data path in a bucket is "
                             "s3://<bucket>/<prefix>", column="--data")
        return given
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", given):
        raise InputError(f"{given!r} is neither a local folder nor an s3:// URL (the only "
                         "object storage unitsel reads and writes)", column="--data")
    return str(Path(given).resolve())


def endpoint() -> str | None:
    """The S3 endpoint other than Amazon's, from the variables the AWS SDKs read."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def identity() -> tuple[str | None, ...]:
    """What decides which server and account a bucket path reaches in this process."""
    return endpoint(), *(os.environ.get(name) for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"))


@functools.cache
def _s3(identity: tuple[str | None, ...]) -> pafs.FileSystem:
    """pyarrow's S3 file system as the variables in `identity` say (it reads them itself)."""
    import pyarrow.fs as pafs

    endpoint_url = identity[0]
    return pafs.S3FileSystem(
        endpoint_override=endpoint_url, connect_timeout=CONNECT_TIMEOUT,
        request_timeout=REQUEST_TIMEOUT,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3))


def filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's file system for `path` and the path within it."""
    import pyarrow.fs as pafs

    if is_remote(path):
        return _s3(identity()), path.removeprefix(S3)
    return pafs.LocalFileSystem(), path


def polars_options(path: str) -> dict[str, str] | None:
    """Polars' `storage_options` for `path`: the endpoint (keys come from the variables)."""
    url = endpoint()
    if not is_remote(path) or url is None:
        return None
    return {"aws_endpoint_url": url, "aws_allow_http": str(url.startswith("http://")).lower()}


def compression(path: str) -> dict[str, object]:
    """pyarrow's Parquet compression for a file at `path`: on disk Snappy (the fastest to
    write), in a bucket zstd level 1 (fewer bytes to upload, for a little more CPU)."""
    return {"compression": "zstd", "compression_level": 1} if is_remote(path) else {}


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def prepare(path: str) -> None:
    """Make the folder `path` goes in (buckets have no folders)."""
    if not is_remote(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def exists(path: str) -> bool:
    import pyarrow.fs as pafs

    fs, inner = filesystem(path)
    return bool(fs.get_file_info(inner).type == pafs.FileType.File)


def read_bytes(path: str) -> bytes:
    fs, inner = filesystem(path)
    with fs.open_input_stream(inner) as stream:
        return bytes(stream.read())


@functools.cache
def _deleter(identity: tuple[str | None, ...]) -> Any:
    """boto3's S3 client, for deletes only: pyarrow's leaves an empty "folder" object behind
    each deleted file (apache/arrow#36275), and a bucket has no folders to keep."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=identity[0], config=Config(
        connect_timeout=CONNECT_TIMEOUT, read_timeout=REQUEST_TIMEOUT,
        retries={"max_attempts": 3}))


def _delete_objects(bucket: str, keys: list[str]) -> None:
    client = _deleter(identity())
    for start in range(0, len(keys), 1000):  # the most one request deletes
        client.delete_objects(Bucket=bucket, Delete={
            "Objects": [{"Key": key} for key in keys[start:start + 1000]], "Quiet": True})


def remove(path: str) -> None:
    """Delete the file at `path`, if it is there."""
    if is_remote(path):
        bucket, key = path.removeprefix(S3).split("/", 1)
        _delete_objects(bucket, [key])
    else:
        Path(path).unlink(missing_ok=True)


def parquet_files(folder: str) -> list[str]:
    """Every Parquet file under `folder`, as full paths (one listing, not one request a
    file)."""
    import pyarrow.fs as pafs

    fs, inner = filesystem(folder)
    found = fs.get_file_info(pafs.FileSelector(inner.rstrip("/"), allow_not_found=True,
                                               recursive=True))
    prefix = S3 if is_remote(folder) else ""
    return sorted(prefix + f.path for f in found
                  if f.type == pafs.FileType.File and f.path.endswith(".parquet"))


def missing(paths: list[str]) -> list[str]:
    """Those of `paths` that are not there; in a bucket from one listing of their common
    folder rather than a request a file."""
    if not paths or not is_remote(paths[0]):
        return [p for p in paths if not Path(p).is_file()]
    folder = os.path.commonpath([p.removeprefix(S3).rsplit("/", 1)[0] for p in paths])
    present = set(parquet_files(S3 + folder))
    return [p for p in paths if p not in present]


def replace_folder(local: str, remote: str) -> None:
    """Upload the files under the local folder `local` to the bucket folder `remote` (in
    parallel), then delete the objects under `remote` that `local` does not hold."""
    import pyarrow.fs as pafs

    fs, inner = filesystem(remote)
    inner = inner.rstrip("/")
    pafs.copy_files(local, inner, source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=fs, use_threads=True)
    kept = {str(path.relative_to(local)) for path in Path(local).rglob("*") if path.is_file()}
    bucket = inner.split("/", 1)[0]
    _delete_objects(bucket, [
        found.path.removeprefix(bucket + "/") for found in fs.get_file_info(
            pafs.FileSelector(inner, allow_not_found=True, recursive=True))
        if found.type == pafs.FileType.File and found.path[len(inner) + 1:] not in kept])


def check_bucket(path: str) -> None:
    """An InputError in one line, within seconds, when the bucket of `path` cannot be used:
    an endpoint that does not answer, credentials it refuses, a bucket that does not exist.
    Credentials are never part of the message."""
    import pyarrow.fs as pafs

    if not is_remote(path):
        return
    fs, inner = filesystem(path)
    bucket = inner.split("/", 1)[0]
    where = f"s3://{bucket}" + (f" at {endpoint()}" if endpoint() else "")
    try:
        found = fs.get_file_info(bucket).type
        fs.get_file_info(pafs.FileSelector(inner.rstrip("/"), allow_not_found=True))
    except OSError as error:
        text = str(error)
        if "NETWORK_CONNECTION" in text or "curlCode" in text:
            why = "the endpoint does not answer; check AWS_ENDPOINT_URL (or --endpoint)"
        elif "ACCESS_DENIED" in text or "InvalidAccessKeyId" in text or "403" in text:
            why = ("the credentials were refused; check AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY")
        else:
            why = re.sub(r"\s+", " ", text)[:200]
        raise InputError(f"cannot use {where}: {why}; nothing was written",
                         column="--data") from None
    if found != pafs.FileType.Directory:
        raise InputError(f"the bucket {bucket!r} does not exist at "
                         f"{endpoint() or 'Amazon S3'}; create it first", column="--data")
