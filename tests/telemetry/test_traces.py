"""One trace per order: from the HTTP request, across the outbox, through every task, event
handler, provider call and compensation of its saga, in both coordination modes.

The web side runs in this process with an in-memory exporter; the worker is a real process
that exports OTLP/HTTP to a collector this test runs (``tests/telemetry/collector.py``).
"""

from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.trace import SpanKind, format_trace_id

from orders.models import OrderEvent, Status
from orders.plan import ORDER_SAGA
from outbox.models import OutboxMessage
from tests.factories import ProductFactory, order_body, post_order
from tests.telemetry import collector as otlp
from tests.worker import wait_for_terminal, wait_until_settled

pytestmark = pytest.mark.saga


@pytest.fixture
def collector() -> Iterator[otlp.Collector]:
    yield from otlp.serve()


@pytest.fixture
def traced_worker(special_worker, collector):
    """A worker that exports its spans, configured by the standard variables alone."""
    return special_worker(
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_SERVICE_NAME": "shop-worker",
            "OTEL_BSP_SCHEDULE_DELAY": "50",  # export every 50 ms, so that the test waits little
        }
    )


@pytest.mark.parametrize(
    ("token", "status", "steps"),
    [
        ("tok_visa", Status.COMPLETED, {"reserve_stock", "charge_payment", "create_shipment"}),
        ("tok_decline", Status.CANCELLED, {"reserve_stock", "charge_payment", "release_stock"}),
    ],
)
def test_one_order_is_one_trace_from_the_request_to_its_last_step(
    traced_worker, collector, web_spans, api, coordination, token, status, steps
):
    # given two products, the web and the worker traced
    mug, tee = ProductFactory(price=Decimal("12.50"), stock=10), ProductFactory(price=Decimal("7.25"), stock=10)

    # when a customer orders them and the saga runs to its end
    order_id = post_order(api, order_body(mug, tee, token=token))
    assert wait_for_terminal([order_id])[order_id].status == status

    # then the request's span is where the trace begins
    (request_span,) = [s for s in web_spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request_span.parent is None
    trace_id = format_trace_id(request_span.context.trace_id)

    # and the worker's spans of every step of the saga (compensations too) are in that trace
    def order_spans(spans: list[otlp.ExportedSpan]) -> list[otlp.ExportedSpan]:
        return [s for s in spans if s.attributes.get("shop.order_id") == order_id]

    def every_step_exported(spans: list[otlp.ExportedSpan]) -> bool:
        return bool(steps <= {s.name for s in order_spans(spans)})

    exported = collector.wait_for(every_step_exported)
    mine = order_spans(exported)
    assert {s.trace_id for s in mine} == {trace_id}
    in_trace = [s for s in exported if s.trace_id == trace_id]
    step_spans = [s for s in mine if s.attributes.get("shop.kind") in ("step", "compensation")]
    for span in step_spans:
        assert span.attributes["shop.mode"] == coordination
        assert span.attributes["shop.service"] in (ORDER_SAGA.owner, *ORDER_SAGA.participants)
        if span.attributes["shop.kind"] == "step":
            assert span.attributes["shop.attempt"] >= 1
        assert span.service == "shop-worker"
    # a task run for each hop (Celery's instrumentation continued the trace from the message)
    runs = {s.name for s in in_trace if s.name.startswith("run/")}
    assert runs, f"no task run in the trace: {sorted(s.name for s in in_trace)}"
    if coordination == "orchestration":
        assert {"run/inventory.reserve_stock", "run/payments.charge_payment"} <= runs
    else:
        assert {"run/inventory.handle_event", "run/payments.handle_event"} <= runs
    # the provider's calls, with the card's decline as the failed call
    (charge_call,) = [s for s in in_trace if s.name == "call payments.charge"]
    assert charge_call.error == (token == "tok_decline")
    # a declined card is the saga's decision, not an error of its step
    (charge_step,) = [s for s in step_spans if s.name == "charge_payment"]
    assert not charge_step.error
    if token == "tok_decline":
        assert charge_step.attributes["shop.outcome"] == "refused"

    # and every line of the order's journal carries that trace id, in the API as in the database
    journal = api.get(f"/api/orders/{order_id}/journal/").json()
    assert journal and {line["trace_id"] for line in journal} == {trace_id}
    assert set(OrderEvent.objects.filter(order_id=order_id).values_list("trace_id", flat=True)) == {trace_id}


def test_without_otel_variables_nothing_is_traced_and_the_outbox_still_works(saga, api, coordination):
    # given the session's worker, started with no OTEL_* variable (tests/worker.py drops them)
    mug = ProductFactory(price=Decimal("12.50"), stock=10)

    # when an order runs its saga
    order_id = post_order(api, order_body(mug))
    order = wait_for_terminal([order_id])[order_id]

    # then it completes through the outbox, and no process recorded a span: no row carries a
    # trace context (the worker writes most of them, inside its tasks), no journal line a trace
    # (choreography completes the order on an event whose own messages, the customer's email
    # among them, the relay may still be sending: wait until nothing is due)
    assert order.status == Status.COMPLETED
    wait_until_settled()
    rows = OutboxMessage.objects.filter(shard=order_id)
    assert rows.count() >= 3 and not rows.filter(sent_at__isnull=True).exists()
    assert list(rows.exclude(trace_context={}).values_list("name", "trace_context")) == []
    assert set(OrderEvent.objects.filter(order_id=order_id).values_list("trace_id", flat=True)) == {""}
