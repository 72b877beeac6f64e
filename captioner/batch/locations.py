"""Where bytes are: local paths and the URIs the batch reads, checked before anything is contacted.

A URI can come from a data file (a line of a list), so it is trusted with nothing but a place:
only the schemes the README documents (`s3://`, `gs://`, `file://`), a bucket name and a key. A
query string (pyarrow would read `?endpoint_override=...&scheme=http` as options), user info
(`s3://KEY:SECRET@bucket`), a port or any other scheme (`abfs://` aborts the process in the Azure
SDK, `hdfs://` loads a JVM) is refused with one message, before pyarrow sees the URI. The
filesystem itself is built from the scheme alone, so endpoint, credentials and region come from the
user's own environment (AWS_* / GOOGLE_* variables and config files; an S3-compatible endpoint from
AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL), with bounded timeouts.
`file://` URIs are local paths and get the same checks as paths (a FIFO is refused, never opened).
"""

from __future__ import annotations

import functools
import os
import re
from datetime import timedelta
from urllib.parse import quote_from_bytes, unquote, unquote_to_bytes

SCHEMES = ("s3", "gs", "file")  # what the README documents
CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 60.0  # per request to S3; 3 attempts at most
GCS_RETRY_LIMIT_S = 15.0  # all of GCS's retries of one call (without network a listing then fails in about 40 s)
MAX_URI_CHARS = 4096
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")  # S3 and GCS bucket names: no ':', no '@'


class LocationRefused(ValueError):
    """A URI the batch will not contact; the message says why."""


def is_uri(location: str) -> bool:
    return "://" in location


def scheme_of(uri: str) -> str:
    match = _SCHEME.match(uri)
    if not match:
        raise LocationRefused(f"{_short(uri)} is not a URI the batch reads (scheme://place/path).")
    return match.group(1).lower()


def check_uri(uri: str) -> tuple[str, str]:
    """(scheme, path inside its filesystem) of an allowed URI; LocationRefused for any other."""
    if len(uri) > MAX_URI_CHARS:
        raise LocationRefused(f"a URI of {len(uri)} characters is refused (the limit is {MAX_URI_CHARS}).")
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise LocationRefused(f"{_short(uri)}: {scheme}:// is not read (only s3://, gs:// and file://).")
    if "?" in uri or "#" in uri:
        raise LocationRefused(
            f"{_short(uri)}: a URI with a query string or fragment is refused; filesystem "
            "options (endpoint, credentials, region) come from your environment, never a URI."
        )
    rest = uri[len(scheme) + 3 :]
    place, _, path = rest.partition("/")
    if scheme == "file":
        if place not in ("", "localhost"):
            raise LocationRefused(f"{_short(uri)}: a file:// URI names a path on this machine (file:///path).")
        return scheme, file_uri_path(uri)
    if not _BUCKET.match(place):
        raise LocationRefused(
            f"{_short(uri)}: {_short(place, 60)!r} is not a bucket name (user info, ports and "
            "hosts are refused: the endpoint comes from your environment)."
        )
    return scheme, f"{place}/{unquote(path)}".rstrip("/") if path else place


def file_uri_path(uri: str) -> str:
    """The local path of a file:// URI (percent-escapes decoded to the bytes of the name)."""
    rest = uri[uri.index("://") + 3 :]
    path = rest[rest.index("/") :] if "/" in rest else "/"
    return os.fsdecode(unquote_to_bytes(path))


def file_uri(path: str) -> str:
    """A local path as a file:// URI, any bytes of its name percent-escaped."""
    return "file://" + quote_from_bytes(os.fsencode(os.path.abspath(path)), safe="/")


def filesystem_of(uri: str):
    """(pyarrow filesystem, path inside it, "scheme://") of an allowed URI (LocationRefused otherwise)."""
    scheme, path = check_uri(uri)
    return _filesystem(scheme), path, scheme + "://"


@functools.lru_cache(maxsize=None)
def _filesystem(scheme: str):
    """The filesystem of a scheme, configured by the user's environment only, with bounded time."""
    from pyarrow import fs

    if scheme == "s3":
        return fs.S3FileSystem(
            connect_timeout=CONNECT_TIMEOUT_S,
            request_timeout=REQUEST_TIMEOUT_S,
            retry_strategy=fs.AwsStandardS3RetryStrategy(max_attempts=3),
            **_s3_endpoint(),
        )
    if scheme == "gs":
        return fs.GcsFileSystem(retry_time_limit=timedelta(seconds=GCS_RETRY_LIMIT_S))
    return fs.LocalFileSystem()


def _s3_endpoint() -> dict[str, str]:
    """An S3-compatible endpoint (MinIO, Ceph) from the user's AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL,
    which pyarrow does not read itself."""
    url = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return {}
    scheme, _, host = url.partition("://") if "://" in url else ("https", "", url)
    return {"endpoint_override": host.rstrip("/"), "scheme": scheme}


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
