"""Fetching href targets: file paths confined to the allowed roots, S3 objects, a per-request cache."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

from vncommon.errors import MalformedXml
from vncommon.xmlsafe import parse_xml
from vnvs.hydration.settings import HydrationSettings

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


class FetchRefused(Exception):
    """The href may not be read (scheme, path outside the roots, bucket not allowed, limit)."""


class FetchLimit(FetchRefused):
    """Reading the href would pass a hydration limit; `limit` names the setting."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class FetchFailed(Exception):
    """The href could not be read or did not hold well-formed XML."""


def _default_s3_client() -> Any:
    import boto3  # imported lazily: most requests never touch S3

    return boto3.client("s3")


class Fetcher:
    """Reads and parses href targets once per request; counts fetches and caps their size."""

    def __init__(
        self,
        settings: HydrationSettings,
        base_dir: Path | None,
        s3_client_factory: Callable[[], Any] | None,
    ) -> None:
        self.settings = settings
        self.base_dir = base_dir if base_dir is not None else next(iter(settings.file_roots), None)
        self._roots = [Path(os.path.realpath(root)) for root in settings.file_roots]
        self._s3_factory = s3_client_factory or _default_s3_client
        self._s3: Any = None
        self._cache: dict[str, etree._Element] = {}
        self.fetch_count = 0

    def location(self, href: str) -> str:
        """The canonical source (`file:` real path or `s3://bucket/key`) of `href`, after the safety checks."""
        scheme = _SCHEME.match(href)
        if scheme is None:
            return "file:" + str(self._confine(self._relative(href)))
        name = scheme.group(1).lower()
        if name == "file":
            return "file:" + str(self._confine(self._file_url(href)))
        if name == "s3":
            bucket, key = self._s3_parts(href)
            return f"s3://{bucket}/{key}"
        raise FetchRefused(f"scheme {name!r} is not allowed")

    def fetch(self, source: str) -> etree._Element:
        """The parsed document at `source` (from `location`), fetched at most once per request."""
        cached = self._cache.get(source)
        if cached is not None:
            return cached
        if self.fetch_count >= self.settings.max_fetches:
            raise FetchLimit(f"more than {self.settings.max_fetches} fetches in one request",
                             "HYDRATION_MAX_FETCHES")
        self.fetch_count += 1
        data = self._read_file(source[5:]) if source.startswith("file:") else self._read_s3(source)
        try:
            document = parse_xml(data, what="fetched document")
        except MalformedXml as exc:
            raise FetchFailed(exc.message) from None
        self._cache[source] = document
        return document

    def _relative(self, href: str) -> Path:
        path = Path(href)
        if path.is_absolute():
            return path
        if self.base_dir is None:
            raise FetchRefused("no file roots are configured, so relative paths cannot be read")
        return self.base_dir / path

    @staticmethod
    def _file_url(href: str) -> Path:
        parts = urlsplit(href)
        if parts.netloc not in ("", "localhost"):
            raise FetchRefused(f"file URL host {parts.netloc!r} is not allowed")
        return Path(unquote(parts.path))

    def _confine(self, path: Path) -> Path:
        if not self._roots:
            raise FetchRefused("no file roots are configured (HYDRATION_FILE_ROOTS)")
        if ".." in path.parts:
            raise FetchRefused("'..' is not allowed in file paths")
        # Resolve symlinks first, then check: a link inside a root may point anywhere.
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(root) for root in self._roots):
            raise FetchRefused("path lies outside the allowed file roots")
        return real

    def _s3_parts(self, href: str) -> tuple[str, str]:
        parts = urlsplit(href)
        bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
        if not bucket or not key:
            raise FetchRefused("S3 URLs need a bucket and a key")
        if self.settings.s3_buckets and bucket not in self.settings.s3_buckets:
            raise FetchRefused(f"bucket {bucket!r} is not allowed")
        return bucket, key

    def _read_file(self, path: str) -> bytes:
        limit = self.settings.max_fetch_bytes
        try:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
        except OSError as exc:
            raise FetchFailed(exc.strerror or type(exc).__name__) from None
        if len(data) > limit:
            raise FetchLimit(f"fetched document is larger than {limit} bytes", "HYDRATION_MAX_FETCH_BYTES")
        return data

    def _read_s3(self, source: str) -> bytes:
        bucket, key = source[5:].split("/", 1)
        limit = self.settings.max_fetch_bytes
        try:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            response = self._s3.get_object(Bucket=bucket, Key=key)
            if int(response.get("ContentLength", 0)) > limit:
                raise FetchLimit(f"fetched document is larger than {limit} bytes", "HYDRATION_MAX_FETCH_BYTES")
            data = response["Body"].read(limit + 1)
        except FetchRefused:
            raise
        except Exception as exc:  # botocore raises many unrelated types; all mean "could not read"
            raise FetchFailed(f"S3 read failed ({type(exc).__name__}: {exc})") from None
        if len(data) > limit:
            raise FetchLimit(f"fetched document is larger than {limit} bytes", "HYDRATION_MAX_FETCH_BYTES")
        return bytes(data)
