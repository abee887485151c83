"""The fields of the operation in progress, on its span and on every log line written meanwhile."""

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from django.conf import settings
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

Field = str | int

_NONE: Mapping[str, Field] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, Field]] = contextvars.ContextVar("telemetry_fields", default=_NONE)
_tracer = trace.get_tracer("shop")


def current_fields() -> Mapping[str, Field]:
    """What the log lines written now are about (``saga_id``, ``step``, ``attempt``, ...)."""
    return _fields.get()


@contextmanager
def operation(name: str, *, keep: bool = False, **fields: Field) -> Iterator[trace.Span]:
    """Run the block in a span named ``name`` carrying ``fields``, which the log lines written
    inside it carry too; with ``keep``, so do the lines written after it until the task ends
    (Celery's "Task ... succeeded" names the step the task ran; see ``fields_clear``).

    Without a tracing SDK the span is the API's no-op one: nothing is recorded and nothing is
    exported. An exception escaping the block marks the span failed; a business outcome should
    not escape (the saga runtime records it instead)."""
    with _tracer.start_as_current_span(name) as span:
        token = _fields.set({**_fields.get(), **fields})
        _set_attributes(span, fields)
        try:
            yield span
        finally:
            inner = _fields.get()
            _fields.reset(token)
            if keep:
                _fields.set(inner)


def fields_clear() -> None:
    """A task begins or ends: what the last one bound is not about the next."""
    _fields.set(_NONE)


@contextmanager
def log_context(**fields: Field) -> Iterator[None]:
    """Add ``fields`` to the log lines written inside the block (nested blocks add theirs)."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def annotate(**fields: Field) -> None:
    """Fields learnt along the way (the attempt's number, once claimed): on the current span
    and on the rest of the current ``operation``'s log lines."""
    _fields.set({**_fields.get(), **fields})
    _set_attributes(trace.get_current_span(), fields)


def _set_attributes(span: trace.Span, fields: Mapping[str, Field]) -> None:
    if span.is_recording():
        span.set_attributes({f"shop.{field_name(key)}": value for key, value in fields.items()})


def field_name(key: str) -> str:
    """What logs and spans call a bound field: a saga's id is named after what the saga is
    about (``TELEMETRY_SAGA_ID``, ``order_id`` here); other fields keep their names."""
    if key == "saga_id":
        return str(getattr(settings, "TELEMETRY_SAGA_ID", "saga_id"))
    return key


def current_trace_id() -> str:
    """The id of the trace in progress (32 hex digits), or ``""`` when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


def trace_carrier() -> dict[str, str]:
    """The trace in progress as W3C headers (``traceparent``...), for a message that is sent
    later by another process; empty when nothing is traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continuing(carrier: Mapping[str, Any] | None) -> Iterator[None]:
    """Run the block in the trace ``carrier`` names (what ``trace_carrier`` stored), so what it
    sends continues that trace. Nothing to continue: the block runs as it is."""
    if not carrier:
        yield
        return
    token = otel_context.attach(propagate.extract(carrier, context=otel_context.Context()))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def untraced() -> Iterator[None]:
    """No span for what the block does (a relay's sweep of the table, many times a second),
    except inside a ``continuing`` block, which starts from the trace it is given."""
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with suppress_instrumentation():
        yield


def record_error(exc: BaseException) -> None:
    """The current span failed with ``exc`` (which the code handles: it does not escape)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
