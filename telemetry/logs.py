"""Log lines an operator can grep: the fields of the operation in progress on every line.

``ContextFilter`` copies the fields bound by ``telemetry.context`` (the saga, its step, the
attempt, the service) and the trace id onto each record; ``TextFormatter`` appends them as
``key=value`` to a human-readable line, ``JsonFormatter`` writes one JSON object per line
(``LOG_FORMAT=json``) with the same fields at its top level.
"""

import logging
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from telemetry.context import current_fields, field_name
from telemetry.scrub import secrets_scrubbed

_KEYS = "telemetry_keys"  # the record's attribute listing the fields the filter added
TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields: dict[str, Any] = {field_name(key): value for key, value in current_fields().items()}
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            fields["trace_id"] = trace.format_trace_id(span.trace_id)
            fields["span_id"] = trace.format_span_id(span.span_id)
        for key, value in fields.items():
            if key not in record.__dict__:  # what the call passed in ``extra`` wins
                setattr(record, key, value)
        setattr(record, _KEYS, list(fields))
        return True


class SecretsFilter(logging.Filter):
    """Redacts what a URL may carry (``telemetry.scrub``): a reset link's token in a request
    line of runserver's ``django.server`` or in a warning of ``django.request``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = secrets_scrubbed(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class TextFormatter(logging.Formatter):
    """``... charge_payment of <id> refused: ... [order_id=<id> step=charge_payment attempt=1 ...]``"""

    def __init__(self, fmt: str = TEXT_FORMAT, **kwargs: Any) -> None:
        super().__init__(fmt, **kwargs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        keys = getattr(record, _KEYS, [])
        if not keys:
            return line
        return f"{line} [{' '.join(f'{key}={getattr(record, key)}' for key in keys)}]"


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``process``, ``message``, the
    bound fields, and ``exc_info`` when there is one."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s")
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        # Celery's task lines pass their arguments as ``data``: an order's shipping address
        # has no place in a log; the task's name and id are in the message.
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, _KEYS, "data"])
        super().__init__(**kwargs)


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` for every process (the worker and beat apply it too, in place of
    Celery's own set-up: ``config/celery.py``)."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "telemetry.logs.ContextFilter"},
            "secrets": {"()": "telemetry.logs.SecretsFilter"},
        },
        "formatters": {
            "text": {"()": "telemetry.logs.TextFormatter"},
            "json": {"()": "telemetry.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["context", "secrets"], "formatter": formatter}
        },
        "root": {"handlers": ["console"], "level": level},
        # django-axes reports every failed login at INFO; lockouts come at WARNING.
        "loggers": {
            "axes": {"level": "WARNING"},
            # The Stripe SDK logs every request and response at INFO; payments.stripe_provider
            # logs each call once, with Stripe's request id.
            "stripe": {"level": "WARNING"},
            # runserver's request lines, through the console handler (Django's own has no filter).
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
