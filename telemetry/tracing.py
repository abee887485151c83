"""Installing the OpenTelemetry SDK, once per process, when the ``OTEL_*`` variables ask for it.

Off by default: with no exporter configured nothing is installed, the API's no-op tracer
stays in place and nothing is recorded, sent or kept. On when ``OTEL_EXPORTER_OTLP_ENDPOINT``
(or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER`` is set: spans are
batched (``OTEL_BSP_*``) and exported over OTLP/HTTP with protobuf (``otlp``, the default
exporter) or printed (``console``); the exporter reads the rest of its ``OTEL_EXPORTER_OTLP_*``
variables itself, and the resource its ``OTEL_SERVICE_NAME``/``OTEL_RESOURCE_ATTRIBUTES``.
``OTEL_SDK_DISABLED=true`` turns it off whatever else is set.

Instrumented: Django's requests (their URLs' secrets redacted, ``telemetry.scrub``), Celery's
publishes and task runs (the trace context travels in the message headers), and the database
driver's queries (psycopg, or sqlite3).

Who calls it: ``config/wsgi.py`` and ``manage.py`` for the web; the worker's main process on
``worker_init`` (its relay thread publishes the outbox) and beat on ``beat_init``
(``config/celery.py``). The worker's pool processes are forked from its main process and
inherit the SDK, whose export thread restarts in each child (it registers ``at_fork``).
"""

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from telemetry.scrub import SECRET_HEADERS, secrets_scrubbed

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

EXPORTERS = ("otlp", "console", "none")
_installed = False


def tracing_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(environ)
    if exporters is not None:
        return exporters != ["none"]
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def _exporters(environ: Mapping[str, str]) -> list[str] | None:
    value = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not value:
        return None
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ImproperlyConfigured(f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not one of {', '.join(EXPORTERS)}")
    return names


def tracing_setup(*, service_name: str) -> bool:
    """Install the SDK and the instrumentations if the environment asks for traces (once per
    process); ``service_name`` unless ``OTEL_SERVICE_NAME`` names the process. Returns whether
    traces are exported."""
    global _installed
    if _installed:
        return True
    if not tracing_wanted():
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create()
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    for name in _exporters(os.environ) or ["otlp"]:
        exporter: SpanExporter
        if name == "otlp":
            exporter = _otlp_exporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument()
    _installed = True
    return True


def _otlp_exporter() -> "SpanExporter":
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol not in (None, "", "http/protobuf"):
        raise ImproperlyConfigured(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: this shop exports http/protobuf only")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _instrument() -> None:
    from django.conf import settings
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    django_instrument()
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        SQLite3Instrumentor().instrument()
    else:
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

        PsycopgInstrumentor().instrument()


def django_instrument(tracer_provider: "TracerProvider | None" = None) -> None:
    """Trace Django's requests, with the secrets of their URLs redacted (``telemetry.scrub``):
    a reset or verification link's token and token-like query parameters never reach
    ``http.target``, ``http.url`` (``url.path``, ``url.query``) or any other attribute."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    # Headers are captured only if OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST names
    # them; should it name these, their values are redacted unless the operator chose a list.
    os.environ.setdefault("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", ",".join(sorted(SECRET_HEADERS)))
    DjangoInstrumentor().instrument(tracer_provider=tracer_provider, request_hook=_request_span_scrub)


def _request_span_scrub(span: "Span", request: object) -> None:
    """The instrumentation's ``request_hook``: runs once the request's attributes are set."""
    attributes = getattr(span, "attributes", None) or {}
    for key, value in list(attributes.items()):
        if isinstance(value, str) and (scrubbed := secrets_scrubbed(value)) != value:
            span.set_attribute(key, scrubbed)


def tracing_flush() -> None:
    """Export what is batched now (a pool process about to exit would lose it)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush()
