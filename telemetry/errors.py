"""Error reporting to Sentry (or a Sentry-compatible server), once per process, when
``SENTRY_DSN`` asks for it.

Off by default: without a DSN sentry-sdk is not even imported. On, it reports the web's
unhandled exceptions (Django integration) and the tasks' (Celery integration), with
``send_default_pii=False`` and every event passed through ``event_scrubbed`` first: a
report is read by more people, and kept longer, than the database it came from.

Who calls it: the settings (``config/settings/base.py``), which every process of the shop
loads first (web, worker, beat, ``manage.py``), as Sentry's Django guide does.
"""

import re
from typing import Any

FILTERED = "[Filtered]"

# Keys whose values are secrets or personal data wherever they appear in an event: request
# bodies, headers, cookies, a frame's local variables, extra data. Matched as substrings of the
# lowercased key, so ``HTTP_AUTHORIZATION``, ``csrftoken`` and ``new_password1`` are caught too.
SENSITIVE_KEYS = (
    "password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "cookie", "csrf",
    "session", "signature", "email", "shipping_address", "address", "line1", "line2", "postal_code",
    "phone", "card",
)  # fmt: skip

# Secrets and personal data inside free text (an exception's message, a log line, a URL).
_SENSITIVE_TEXT = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[email]"),
    (re.compile(r"\b(Token|Bearer|Basic)\s+[\w.+/=-]+", re.IGNORECASE), r"\1 [Filtered]"),
    (re.compile(r"\b(tok|pm|sk|rk|whsec)_[A-Za-z0-9_]+"), r"\1_[Filtered]"),
    (re.compile(r"\b(?:\d[ -]?){13,19}\b"), "[digits]"),  # a card number, with or without separators
)


def _sensitive(key: object) -> bool:
    lowered = str(key).lower()
    return any(word in lowered for word in SENSITIVE_KEYS)


def text_scrubbed(text: str) -> str:
    for pattern, replacement in _SENSITIVE_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: FILTERED if _sensitive(key) else _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # headers and cookies may come as [name, value] pairs
        if len(value) == 2 and isinstance(value[0], str) and _sensitive(value[0]):
            return [value[0], FILTERED]
        return [_scrubbed(item) for item in value]
    if isinstance(value, str):
        return text_scrubbed(value)
    return value


def event_scrubbed(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """sentry-sdk's ``before_send``: the event with every sensitive key's value replaced and
    every email address, token, payment token and card-like number in its text masked."""
    scrubbed: dict[str, Any] = _scrubbed(event)
    return scrubbed


def error_reporting_setup(*, dsn: str, environment: str, traces_sample_rate: float = 0.0) -> bool:
    """Start reporting errors to ``dsn`` (nothing when it is empty). Returns whether it did."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        before_send=event_scrubbed,  # type: ignore[arg-type]
        before_send_transaction=event_scrubbed,  # type: ignore[arg-type]
        # Traces go through OpenTelemetry (telemetry/tracing.py); Sentry's own are opt-in.
        traces_sample_rate=traces_sample_rate,
    )
    return True
