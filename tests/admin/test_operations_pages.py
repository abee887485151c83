"""The operators' admin pages without a worker: where they are linked, what the stuck view says
of a compensating order, and what re-queueing leaves alone."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from events.models import InboxEntry
from orders.models import Order, OrderEvent, Status
from orders.staff import parked_events_requeue, parked_messages_requeue
from orders.transitions import order_transition
from outbox.models import OutboxMessage
from sagas.models import SagaStep
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def test_the_admin_index_and_the_order_list_link_to_the_operators_pages(operator):
    index = operator.get("/admin/").content.decode()
    assert 'href="/admin/orders/order/stuck/"' in index
    assert 'href="/admin/outbox/outboxmessage/?state=parked"' in index
    assert 'href="/admin/events/inboxentry/?parked__exact=1"' in index
    assert 'href="/admin/orders/order/stuck/"' in operator.get("/admin/orders/order/").content.decode()


def test_a_compensating_order_waits_on_the_compensation_in_progress(operator, customer, place_order):
    # given an old order turning back, whose refund failed once and waits for its next attempt
    order = place_order(customer, ProductFactory())
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=2))
    order = Order.objects.get(pk=order.pk)
    order_transition(order=order, to=Status.COMPENSATING, reason="customer_request")
    SagaStep.objects.filter(saga_id=order.pk, name="cancel_shipment").update(status="skipped")
    SagaStep.objects.filter(saga_id=order.pk, name="refund_payment").update(
        status="waiting", attempts=1, error="ProviderUnavailable: try later"
    )
    newer = place_order(customer, ProductFactory())

    # when staff open the stuck view
    html = operator.get("/admin/orders/order/stuck/").content.decode()

    # then the order is listed first (oldest), waiting on its refund, with the error
    rows = html.split('class="stuck-order"')[1:]
    assert [str(order.pk) in rows[0], str(newer.pk) in rows[1]] == [True, True]
    assert "refund_payment (compensation)" in rows[0] and "ProviderUnavailable: try later" in rows[0]
    assert "2 h" in rows[0]
    # a newer pending order waits on its first reservation
    assert "reserve_stock:" in rows[1]
    # filtered to one status
    only = operator.get("/admin/orders/order/stuck/?status=compensating").content.decode()
    assert str(order.pk) in only and str(newer.pk) not in only


def test_requeueing_leaves_what_is_not_parked_alone(customer, place_order):
    order = place_order(customer, ProductFactory())
    unsent = OutboxMessage.objects.filter(shard=str(order.pk)).first()
    assert unsent is not None
    handled = InboxEntry.objects.create(
        consumer="notifications.email_customer", event_id="6f1d5c3e-0000-4000-8000-000000000002",
        event_name="order.placed", saga_id=str(order.pk),
    )  # fmt: skip

    assert parked_messages_requeue(ids=[unsent.pk], actor="alice") == []
    assert parked_events_requeue(ids=[handled.pk], actor="alice") == []
    assert InboxEntry.objects.filter(pk=handled.pk).exists()
    assert not OrderEvent.objects.filter(order=order, name="requeue").exists()


def test_a_parked_event_whose_subscription_is_gone_is_refused_with_a_message(operator, customer, place_order):
    order = place_order(customer, ProductFactory())
    entry = InboxEntry.objects.create(
        consumer="notifications.gone", event_id="6f1d5c3e-0000-4000-8000-000000000003", event_name="order.placed",
        saga_id=str(order.pk), parked=True, error="boom",
        event={"id": "6f1d5c3e-0000-4000-8000-000000000003", "name": "order.placed", "saga_id": str(order.pk),
               "mode": "orchestration", "publisher": "orders"},
    )  # fmt: skip

    response = operator.post(
        "/admin/events/inboxentry/", {"action": "requeue", "_selected_action": [str(entry.pk)]}, follow=True
    )

    assert "Nothing was re-queued" in response.content.decode()
    assert InboxEntry.objects.get(pk=entry.pk).parked
