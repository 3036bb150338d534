"""Log output of the service: text or one JSON object per line, with secrets redacted.

    configure_logging(settings)        # REVIEWBOT_LOG_FORMAT=json for JSON lines

A JSON line holds ``ts``, ``level``, ``logger`` and ``message``, and ``delivery``, ``repo``,
``pr``, ``job`` and ``head`` when known: from ``extra=`` on the call, or from the context the
webhook handler sets per delivery and the worker per job, so every line logged while a job
runs carries its repository and pull request without being told:

    {"ts": "2025-05-01T12:00:00.123Z", "level": "INFO", "logger": "reviewbot.worker",
     "message": "job 7 octo/widgets#12 @ 1a2b3c4: done", "repo": "octo/widgets", "pr": 12,
     "job": 7, "head": "1a2b3c4d…"}

(on one line). Whatever the format, the configured secrets (API key, webhook secret, GitHub
token, the App's private key) are replaced by ``[REDACTED]`` in every message, field and
traceback before anything is written. A value a stranger chose (an unsigned header) goes into a
line through :func:`printable`, so it can neither flood the log nor end or colour a line.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, Final

from reviewbot.settings import Settings

#: The fields a line may carry besides the four every line has, in the order they are written.
FIELDS: Final = ("delivery", "repo", "pr", "job", "head")
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED: Final = "[REDACTED]"
# One line per HTTP call to GitHub or the model drowns the lines that matter.
NOISY_LOGGERS: Final = ("httpx", "httpx2", "openai", "githubkit")
# Lines of a PEM key shorter than this (the padded last one) could match ordinary text.
_MIN_SECRET_PART = 16
#: How much of a value a stranger chose :func:`printable` shows.
SHOWN_CHARS: Final = 64

_context: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar(
    "reviewbot_log_context", default=None
)
# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES: Final = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def current_context() -> Mapping[str, object]:
    """The fields set for the code running now (a delivery, a job)."""
    return _context.get() or {}


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values are left out) to every line logged inside the block."""
    token = _context.set({**current_context(), **_present(fields)})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: object) -> None:
    """Add ``fields`` to the current context: until the enclosing :func:`log_context` ends, or,
    in a task of its own (each job runs in one), until the task ends."""
    _context.set({**current_context(), **_present(fields)})


def printable(value: str, limit: int = SHOWN_CHARS) -> str:
    """``value`` in double quotes for a log line, when a stranger chose it: its first ``limit``
    characters in printable ASCII (a quote, a backslash and anything else escaped as Python
    writes it: ``\\t``, ``\\x9b``, ``\\u202e``), then its length if there was more."""
    shown = value[:limit].encode("unicode_escape").decode("ascii").replace('"', '\\"')
    more = f"... ({len(value)} characters)" if len(value) > limit else ""
    return f'"{shown}"{more}'


def _present(fields: Mapping[str, object]) -> dict[str, object]:
    return {key: value for key, value in fields.items() if value is not None}


class ContextFilter(logging.Filter):
    """Copies the context's fields onto each record (a field given with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_context().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's message, arguments, traceback and extra fields."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        parts: set[str] = set()
        for secret in secrets:
            if secret.strip():
                parts.add(secret)
                parts.add(secret.strip())
                # A key printed line by line, or one line of it quoted, is still the key.
                parts.update(line.strip() for line in secret.splitlines() if len(line.strip()) >= _MIN_SECRET_PART)
        self._secrets = sorted(parts, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, still redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key in vars(record).keys() - _STANDARD_ATTRIBUTES:  # the fields from `extra=` and the context
            value = getattr(record, key)
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


_PLAIN: Final = logging.Formatter()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
    known fields that are set, and ``exc`` / ``stack`` when there is a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:  # from `extra=`, or put there by ContextFilter (then redacted)
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, the private key read from its file included."""
    values = [
        secret.get_secret_value()
        for secret in (settings.api_key, settings.webhook_secret, settings.github_token, settings.github_private_key)
        if secret is not None
    ]
    if settings.github_private_key_path is not None:
        # The service refuses to start without a readable key anyway.
        with contextlib.suppress(OSError, UnicodeDecodeError):
            values.append(settings.github_private_key_path.read_text("utf-8"))
    return [value for value in values if value.strip()]


def build_handler(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (stderr) in the configured format, context added, secrets redacted."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactSecrets(secret_values(settings)))
    return handler


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Log everything at ``level`` and up to stderr through :func:`build_handler`, for a service
    command (``reviewbot serve``); does nothing to a root logger that already has handlers."""
    logging.basicConfig(level=level, handlers=[build_handler(settings)])
    # Neither format writes where a call came from, nor thread or process; not collecting them
    # halves the cost of a line (the logging HOWTO's "Optimization"), one per webhook delivery.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
