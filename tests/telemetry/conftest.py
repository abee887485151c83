from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.web.conftest import place_order, shopper  # noqa: F401  (the storefront's fixtures)


@pytest.fixture
def web_spans() -> Iterator[InMemorySpanExporter]:
    """This process (the web) traced as ``OTEL_*`` would trace it, into memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    DjangoInstrumentor().instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        DjangoInstrumentor().uninstrument()
        provider.shutdown()
