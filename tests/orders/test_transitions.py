from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent, Reason, Status
from orders.services import OrderItem, order_cancel, order_place, order_retry_compensation, saga_recover_stalled
from orders.transitions import ALLOWED_TRANSITIONS, IllegalTransition, order_transition
from outbox import relay
from outbox.models import OutboxMessage
from sagas.models import SagaStep
from tests.factories import ProductFactory, UserFactory


@pytest.fixture
def order(customer):
    product = ProductFactory()
    return order_place(user=customer, items=[OrderItem(product.sku, 1)], shipping_address={}, payment_token="tok_visa")


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_only_allowed_transitions_happen_and_each_is_in_the_timeline(order, start, target):
    order.status = start
    order.save()
    before = OrderEvent.objects.filter(order=order).count()
    if target in ALLOWED_TRANSITIONS[start]:
        order_transition(order=order, to=target, actor="tester")
        order.refresh_from_db()
        assert order.status == target
        event = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS).latest("id")
        assert (event.from_status, event.to_status, event.actor) == (start, target, "tester")
    else:
        with pytest.raises(IllegalTransition):
            order_transition(order=order, to=target)
        order.refresh_from_db()
        assert order.status == start
        assert OrderEvent.objects.filter(order=order).count() == before


def test_terminal_statuses_have_no_way_out_but_a_late_success_or_staff_retry():
    assert ALLOWED_TRANSITIONS[Status.COMPLETED] == frozenset()
    # a charge or parcel that lands after the order was cancelled is taken back (compensating
    # again), or, when nothing can undo it, waits for staff
    assert ALLOWED_TRANSITIONS[Status.CANCELLED] == {Status.COMPENSATING, Status.NEEDS_ATTENTION}
    assert ALLOWED_TRANSITIONS[Status.NEEDS_ATTENTION] == {Status.COMPENSATING}


def test_entering_compensation_plans_the_undo_steps_in_reverse(order):
    order_transition(order=order, to=Status.COMPENSATING, reason="customer_request")
    compensations = SagaStep.objects.filter(saga_id=order.pk).filter(kind="compensation").values_list("name", flat=True)
    assert list(compensations) == ["cancel_shipment", "refund_payment", "release_stock"]


def test_placing_an_order_sends_its_saga_only_after_commit(customer, django_capture_on_commit_callbacks):
    product = ProductFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        order = order_place(
            user=customer, items=[OrderItem(product.sku, 1)], shipping_address={}, payment_token="tok_visa"
        )
    # the saga's first message and the customer's "order placed" email wait in the outbox until
    # the commit; only the relay, after it, sends them
    assert len(callbacks) == 1 and isinstance(callbacks[0], relay.Written)
    waiting = OutboxMessage.objects.filter(shard=str(order.pk), sent_at__isnull=True).values_list("name", flat=True)
    assert sorted(waiting) == [
        "inventory.reserve_stock → risk.screen_order → payments.charge_payment → shipping.create_shipment",
        "notifications.handle_event",
    ]


def test_two_sweepers_redrive_a_stalled_order_once(order, settings):
    settings.SAGA_STALL_SECONDS = 0
    messages = OutboxMessage.objects.count()
    first = saga_recover_stalled()
    settings.SAGA_STALL_SECONDS = 30
    second = saga_recover_stalled()
    assert first.redriven == [str(order.pk)]
    assert second.redriven == []
    assert OutboxMessage.objects.count() == messages + 1  # one re-drive, one message


def test_the_timeline_says_who_acted_as_a_kind_as_well_as_a_name(db, settings):
    # given an order placed by a customer who happens to be called "system"
    impostor = UserFactory(username="system")
    order = order_place(
        user=impostor, items=[OrderItem(ProductFactory().sku, 1)], shipping_address={}, payment_token="tok_visa"
    )

    # when the customer cancels, staff retry the compensation once it gave up, and the sweeper re-drives
    order_cancel(order_id=order.pk, actor=impostor.username)
    Order.objects.filter(pk=order.pk).update(status=Status.NEEDS_ATTENTION)
    order_retry_compensation(order_id=order.pk, actor="alice")
    settings.SAGA_STALL_SECONDS = 0
    Order.objects.filter(pk=order.pk).update(progressed_at=timezone.now() - timedelta(hours=1))
    saga_recover_stalled()

    # then each line names its kind: the customer's cannot pass for the system's
    journal = OrderEvent.objects.filter(order=order, kind__in=["status", "action"]).order_by("id")
    timeline = [event.acted_by for event in journal]
    assert timeline == ["customer system", "customer system", "staff alice", "system sweeper"]


def test_a_staff_cancel_is_recorded_as_staff_with_its_own_reason(order):
    order_cancel(order_id=order.pk, actor="alice", reason=Reason.STAFF_REQUEST)

    order.refresh_from_db()
    event = OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.STATUS).latest("id")
    assert (order.cancellation_reason, event.acted_by) == ("staff_request", "staff alice")
