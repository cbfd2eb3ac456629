"""Structured JSON logs with the request context (requestId, groupIndex, taskId, traceId) attached.

Passwords in URLs (`redis://user:secret@host`, `redis://:secret@host`) are masked in every line: in the
message, the fields, the context and the traceback.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from vncommon.errors import ConfigError

# scheme://user:password@ with the characters RFC 3986 allows in userinfo (no / ? # @ or whitespace).
# The scheme is bounded so that text like "a.a.a.a…" costs linear time, not quadratic: log lines may
# carry hostile text.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/?#@:]*):[^\s/?#@]*@")
# redis-py also reads the password from the query (`unix:///run/redis.sock?password=...`).
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)[^&#\s]*", re.IGNORECASE)
MASK = "***"


def mask_secrets(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _QUERY_PASSWORD.sub(rf"\g<head>{MASK}", _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text))


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_secrets(str(value))  # what json.dumps(default=str) would write, masked


_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("vn_log_context", default=None)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Attach fields (requestId=..., traceId=...) to every log line written inside the block."""
    current = _CONTEXT.get() or {}
    token = _CONTEXT.set({**current, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(_CONTEXT.get() or {})
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            line.update(extra)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(_masked(line))


class TextFormatter(JsonFormatter):
    """One readable line for a person at a terminal: `HH:MM:SS.mmm LEVEL service message key=value …`."""

    def format(self, record: logging.LogRecord) -> str:
        line = json.loads(super().format(record))  # the same fields, masked the same way
        head = f"{line.pop('ts')[11:23]} {line.pop('level'):<7} {line.pop('service'):<7} {line.pop('msg')}"
        line.pop("logger", None)
        trace = line.pop("exc", None)
        rest = " ".join(f"{key}={value if isinstance(value, str) and ' ' not in value else json.dumps(value)}"
                        for key, value in line.items())
        return head + (f"  {rest}" if rest else "") + (f"\n{trace}" if trace else "")


LOG_FORMATS = ("auto", "json", "text")


def log_format(env: Mapping[str, str], stream: TextIO) -> str:
    """LOG_FORMAT: json, text, or auto (the default): text when `stream` is a terminal, else json."""
    chosen = env.get("LOG_FORMAT", "").strip().lower() or "auto"
    if chosen not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT={chosen!r} must be one of {', '.join(LOG_FORMATS)}")
    if chosen == "auto":
        return "text" if stream.isatty() else "json"
    return chosen


def setup_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    kind = log_format(os.environ, sys.stderr)
    handler.setFormatter(TextFormatter(service) if kind == "text" else JsonFormatter(service))
    logging.Formatter.converter = __import__("time").gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter at INFO is not ours to show.
    for noisy in ("botocore", "boto3", "urllib3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
