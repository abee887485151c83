"""Tracing is configured by the standard OTEL_* variables alone, and off without them; the admin
links the journal's trace ids to the tracing UI that ``OTEL_TRACES_URL`` names."""

import subprocess
import sys
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from opentelemetry import trace
from opentelemetry.trace import format_trace_id

from orders.models import Order, OrderEvent
from outbox.models import OutboxMessage
from telemetry.context import current_trace_id, operation, trace_carrier
from telemetry.tracing import tracing_wanted
from tests.factories import ProductFactory
from tests.web.test_checkout import checkout_form
from tests.worker import ROOT


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "shop-web"}, False),  # naming the service exports nothing
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ],
)
def test_traces_are_exported_only_when_the_standard_variables_ask(environ, wanted):
    assert tracing_wanted(environ) is wanted


def test_an_exporter_this_shop_does_not_have_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="jaeger is not one of otlp, console, none"):
        tracing_wanted({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_without_an_sdk_spans_cost_nothing_and_carry_no_trace():
    # this test process installed no SDK (no OTEL_* variable): the API's no-op tracer
    assert not isinstance(trace.get_tracer_provider(), _sdk_provider())
    with operation("charge_payment", saga_id="0b0e", step="charge_payment") as span:
        assert not span.is_recording()
        assert current_trace_id() == ""
        assert trace_carrier() == {}


def _sdk_provider() -> type:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("", "<p>4bf92f3577b34da6a3ce929d0e0e4736</p>"),
        (
            "http://jaeger:16686/trace/{trace_id}",
            '<a href="http://jaeger:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736" target="_blank" rel="noopener">'
            "4bf92f3577b34da6a3ce929d0e0e4736</a>",
        ),
    ],
)
def test_the_admin_shows_each_journal_lines_trace_linked_when_a_tracing_ui_is_set(
    staff_client, customer, place_order, settings, template, shown
):
    # given an order whose journal line was written in a trace
    order = place_order(customer, ProductFactory(price=Decimal("12.50")))
    OrderEvent.objects.filter(order=order).update(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    settings.OTEL_TRACES_URL = template

    # when staff open the order
    html = staff_client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    # then the journal shows the trace id, a link to the tracing UI when one is configured
    assert shown in html


WEB_PROCESS = """
import io, sys, wsgiref.util
from opentelemetry import trace
from opentelemetry.trace import format_trace_id
from config.wsgi import application
environ = {"PATH_INFO": "/api/schema/", "REQUEST_METHOD": "GET"}
wsgiref.util.setup_testing_defaults(environ)
body = b"".join(application(environ, lambda status, headers: None))
getattr(trace.get_tracer_provider(), "force_flush", lambda: None)()
"""


@pytest.mark.parametrize(("environ", "traced"), [({"OTEL_TRACES_EXPORTER": "console"}, True), ({}, False)])
def test_the_web_process_traces_its_requests_when_asked(environ, traced):
    # given a web process as gunicorn starts it (config/wsgi.py), with or without OTEL_*
    run = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings.test", **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then its request is a span (printed by the console exporter), or nothing at all
    assert run.returncode == 0, run.stderr
    assert ('"name": "GET api/schema/"' in run.stdout) is traced, run.stdout[-2000:]


@pytest.mark.django_db
def test_the_storefront_checkout_begins_the_orders_trace_and_hands_it_to_the_outbox(web_spans, shopper):
    # given a customer with a mug in the cart
    mug = ProductFactory(price=Decimal("12.50"))
    shopper.post(f"/products/{mug.sku}/", {"quantity": 1})

    # when they check out
    response = shopper.post("/checkout/", checkout_form())
    assert response.status_code == 302

    # then the request is a trace, and what it wrote carries it: every outbox row (to be sent
    # by a worker later) and every line of the order's journal
    (request_span,) = [s for s in web_spans.get_finished_spans() if s.name.startswith("POST checkout")]
    trace_id = format_trace_id(request_span.context.trace_id)
    order = Order.objects.get()
    rows = OutboxMessage.objects.filter(shard=str(order.pk))
    assert rows.exists()
    for row in rows:
        version, row_trace_id, _span_id, _flags = row.trace_context["traceparent"].split("-")
        assert (version, row_trace_id) == ("00", trace_id)
    assert set(OrderEvent.objects.filter(order=order).values_list("trace_id", flat=True)) == {trace_id}
