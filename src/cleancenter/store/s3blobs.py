"""Blobs in an S3-compatible bucket, for centers whose workers run on several machines.

The bucket is the store of record: ``<prefix>ab/cd/<sha256>``, the same layout as the
blobs folder. The local blobs folder becomes a cache of what this machine has written or
read, because everything downstream (archive extraction, LIEF, YARA) wants a file path.

The promises of `BlobStore` still hold:

- a blob is in the bucket before `publish` (or a writer's `commit`) returns, so catalog
  rows never name a blob the other machines cannot fetch;
- a blob's bytes are checked against its name when they are fetched, so a damaged or
  substituted object is refused, never analysed or handed to a cleaner;
- nothing half-written is ever under a blob's name, in the bucket (a PUT is atomic) or in
  the cache (temp file, then rename).

Credentials come from the usual AWS places (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``~/.aws/credentials``, an instance role), never from the
center's settings file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cleancenter.store.blobs import (
    BLOB_MODE,
    CHUNK,
    TMP_PREFIX,
    BlobError,
    BlobProblem,
    BlobStore,
)

_LAYOUT = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"404", "NoSuchKey", "NotFound"}
_FORBIDDEN = {"403", "AccessDenied", "Forbidden"}
_CLIENT_LOCK = threading.Lock()


def parse_blob_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``."""
    parts = urlsplit(url)
    if (parts.scheme != "s3" or not _BUCKET.match(parts.netloc) or parts.query
            or parts.fragment or "//" in parts.path):
        raise BlobError(f"not an s3://BUCKET[/PREFIX] URL (bucket: 3-63 lowercase letters, "
                        f"digits, dots and hyphens): {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def s3_client(endpoint_url: str | None, region: str) -> Any:
    """One client per endpoint and region (boto3 clients are thread-safe, and making one
    costs tens of milliseconds; making them is not thread-safe, hence the lock)."""
    with _CLIENT_LOCK:
        return _make_client(endpoint_url, region)


@functools.cache
def _make_client(endpoint_url: str | None, region: str) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise BlobError("the S3 blob store needs boto3: pip install 'cleancenter[s3]'") from exc
    config = Config(
        # path-style: S3-compatible servers on an address, not a DNS name
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10, read_timeout=120,
        # the payload checksums botocore adds by default are not understood by every
        # S3-compatible server; our own check is the sha256 of every blob we fetch
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class S3BlobStore(BlobStore):
    """`BlobStore` whose blobs live in ``s3://bucket/prefix``; ``cache_root`` holds copies."""

    def __init__(self, cache_root: Path, bucket: str, prefix: str = "", *, client: Any,
                 endpoint_label: str = "") -> None:
        # durable: a cache file is flushed before it gets a blob's name, so a power loss
        # cannot leave a short file there that later reads would trust
        super().__init__(cache_root, durable=True)
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.where = f"s3://{bucket}/{prefix}" + (f" at {endpoint_label}" if endpoint_label
                                                   else "")

    def key_for(self, sha256: str) -> str:
        self.path_for(sha256)  # validates the name
        return f"{self.prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"

    def location(self, sha256: str) -> Path | str:
        return f"s3://{self.bucket}/{self.key_for(sha256)}"

    # -- reading -------------------------------------------------------------------
    def readable_path(self, sha256: str) -> Path:
        """The local copy, fetched (and checked against its name) on first use; the cache
        path, which does not exist, when the bucket has no such blob."""
        if self._staged and sha256 in self._staged:
            return self._staged[sha256]
        path = self.path_for(sha256)
        if not path.is_file():
            self._fetch(sha256, path)
        return path

    def exists(self, sha256: str) -> bool:
        if (self._staged and sha256 in self._staged) or self.path_for(sha256).is_file():
            return True
        return self._remote_size(sha256) is not None

    def _remote_size(self, sha256: str, *, forbidden_is_missing: bool = False) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key_for(sha256))
        except Exception as exc:
            code = _code(exc)
            # AWS answers 403, not 404, for a missing key to a role without ListBucket
            if code in _MISSING or (forbidden_is_missing and code in _FORBIDDEN):
                return None
            raise self._error("look up", sha256, exc) from exc
        return int(head["ContentLength"])

    def _stored(self, sha256: str) -> bool:
        """In the bucket, whatever the cache holds: a cache filled before the move to S3
        (or from another bucket) must not stop an upload."""
        return self._remote_size(sha256, forbidden_is_missing=True) is not None

    def _fetch(self, sha256: str, target: Path) -> None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key_for(sha256))["Body"]
        except Exception as exc:
            if _code(exc) in _MISSING:
                return
            raise self._error("fetch", sha256, exc) from exc
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.root)
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                while chunk := body.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != sha256:
                raise BlobError(f"{self.location(sha256)} does not hash to its name (it hashes "
                                f"to {digest.hexdigest()}): refused, not cached")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, BLOB_MODE)
            os.replace(tmp, target)
        except BlobError:
            raise
        except Exception as exc:
            raise self._error("fetch", sha256, exc) from exc
        finally:
            body.close()
            tmp.unlink(missing_ok=True)

    # -- writing -------------------------------------------------------------------
    def upload(self, sha256: str, source: Path, *, check_first: bool = True) -> bool:
        """Put ``source`` under the blob's key unless the bucket has it already (same name,
        same size: content-addressed); True when it was sent."""
        size = source.stat().st_size
        if check_first and self._remote_size(sha256, forbidden_is_missing=True) == size:
            return False
        try:
            self.client.upload_file(str(source), self.bucket, self.key_for(sha256),
                                    ExtraArgs={"ContentType": "application/octet-stream",
                                               "Metadata": {"sha256": sha256}})
        except Exception as exc:
            raise self._error("store", sha256, exc) from exc
        if self._remote_size(sha256, forbidden_is_missing=True) not in (size, None):
            raise BlobError(f"{self.location(sha256)}: the server does not show the "
                            f"{size} bytes just sent")
        return True

    def publish(self) -> int:
        """Send the batch's blobs to the bucket, then move them into the cache."""
        for sha256, tmp in (self._staged or {}).items():
            self.upload(sha256, tmp, check_first=False)  # `_stage` looked already
        return super().publish()

    def _place(self, tmp: Path, target: Path) -> None:
        self.upload(target.name, tmp, check_first=False)  # the writer's commit looked
        super()._place(tmp, target)

    # -- listing and checking ------------------------------------------------------
    def iter_keys(self) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under the prefix, in key order."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    yield str(item["Key"]), int(item["Size"])
        except Exception as exc:
            raise BlobError(f"cannot list {self.where}: {type(exc).__name__}: {exc}") from exc

    def iter_sha256(self) -> Iterator[str]:
        for key, _ in self.iter_keys():
            match = _LAYOUT.match(key[len(self.prefix):])
            if match and match.group(3).startswith(match.group(1) + match.group(2)):
                yield match.group(3)

    def count(self) -> int:
        return sum(1 for _ in self.iter_keys())

    def audit(self) -> Iterator[tuple[str | None, list[BlobProblem]]]:
        """Every object under the prefix, re-hashed from the bucket (not the cache)."""
        for key, _ in self.iter_keys():
            where = f"s3://{self.bucket}/{key}"
            match = _LAYOUT.match(key[len(self.prefix):])
            if not match or not match.group(3).startswith(match.group(1) + match.group(2)):
                yield None, [BlobProblem("misplaced", where, "not a blob name or not in its "
                                                            "ab/cd folder")]
                continue
            sha256 = match.group(3)
            digest = hashlib.sha256()
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
                try:
                    while chunk := body.read(CHUNK):
                        digest.update(chunk)
                finally:
                    body.close()
            except Exception as exc:
                yield sha256, [BlobProblem("unreadable", where, str(self._error("read", sha256,
                                                                                exc)))]
                continue
            actual = digest.hexdigest()
            yield sha256, ([BlobProblem("mismatch", where, f"content hashes to {actual}")]
                           if actual != sha256 else [])
        # this machine's cache: a damaged copy here would be analysed as the real blob
        for path in self.iter_paths():
            problems = self.check(path)
            if problems:
                yield None, [BlobProblem(p.kind, p.path, f"in this machine's cache: {p.detail}")
                             for p in problems]

    def _error(self, action: str, sha256: str, exc: Exception) -> BlobError:
        code = _code(exc)
        detail = f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"
        return BlobError(f"cannot {action} blob {sha256} in {self.where}: {detail}"[:1000])
