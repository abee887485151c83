"""Risk screening and review (contract §4c), end to end on a real worker, in both modes."""

import contextlib
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from core.api import Conflict
from notifications.models import Notification
from orders.models import Order, OrderEvent, Status
from orders.services import order_cancel
from payments.models import Payment
from risk.models import Screening
from risk.services import reviews_expire
from sagas.models import SagaStep
from shop.models import Product
from tests.factories import ProductFactory, StaffMemberFactory, order_body, post_order
from tests.worker import (
    assert_invariants,
    money_moved,
    purge_broker,
    recover_until_terminal,
    wait_for_step,
    wait_for_terminal,
    wait_until,
)

pytestmark = pytest.mark.saga

REJECTED, REVIEW = "66666", "77777"


def reviewer() -> APIClient:
    client = APIClient()
    user: Any = StaffMemberFactory(permissions=["orders.view_order", "risk.review_order"])
    client.force_authenticate(user)
    return client


def held(api: APIClient, product: Product) -> str:
    """An order the screening holds for review, once it waits in ``in_review``."""
    order_id = post_order(api, order_body(product, quantity=2, postal_code=REVIEW))
    wait_for_step(order_id, "screen_order", SagaStep.Status.HELD)
    wait_until(lambda: Order.objects.get(pk=order_id).status == Status.IN_REVIEW, 10, what="in_review")
    return order_id


def review(client: APIClient, order_id: str, decision: str, **extra: Any) -> Any:
    return client.post(f"/api/orders/{order_id}/review/", {"decision": decision, **extra}, format="json")


def test_the_screening_test_values(saga, api):
    # given products in stock
    product = ProductFactory(price=Decimal("10.00"), stock=10)

    # when orders are placed to an ordinary, a rejected and a held postal code
    approved = post_order(api, order_body(product, quantity=1, postal_code="N1 9GU"))
    rejected = post_order(api, order_body(product, quantity=1, postal_code=REJECTED))
    waiting = held(api, product)

    # then the first completes, the second is cancelled for risk with nothing charged
    orders = wait_for_terminal([approved, rejected])
    assert orders[approved].status == Status.COMPLETED
    assert (orders[rejected].status, orders[rejected].cancellation_reason) == (Status.CANCELLED, "risk_rejected")
    assert money_moved(orders[rejected]) == ([], Decimal("0"))
    # and the held one keeps its stock reserved, is not charged, and says why in the journal
    assert Product.objects.get(pk=product.pk).stock == 10 - 1 - 2
    assert not Payment.objects.filter(order_id=waiting).exists()
    journal = OrderEvent.objects.filter(order_id=waiting, service="risk").values_list("name", "message")
    assert any(name == "screen_order" and "held for review" in message for name, message in journal), list(journal)
    # and its customer is told that the order is being checked
    wait_until(Notification.objects.filter(order_id=waiting, kind=Notification.Kind.HELD).exists, 10, what="held email")
    assert_invariants(orders.values(), {})


@pytest.mark.parametrize(
    ("decision", "status", "reason"), [("approve", "completed", None), ("reject", "cancelled", "risk_rejected")]
)
def test_a_reviewer_decides_and_the_saga_goes_on_or_turns_back(saga, api, decision, status, reason):
    # given an order held for review
    product = ProductFactory(price=Decimal("10.00"), stock=10)
    order_id = held(api, product)

    # when a reviewer decides, with a note
    response = review(reviewer(), order_id, decision, note="called the customer")

    # then the decision is accepted and the order ends as it says
    assert response.status_code == 202, response.content
    assert response.json()["decision"] in ("approved", "rejected")
    order = wait_for_terminal([order_id])[order_id]
    assert (order.status, order.cancellation_reason) == (status, reason)
    assert_invariants([order], {product.sku: 10})
    # and the journal names who decided, under the risk service
    line = OrderEvent.objects.get(order_id=order_id, service="risk", kind=OrderEvent.Kind.ACTION)
    assert line.actor.startswith("clerk") and "called the customer" in line.message
    # and a second decision is a conflict that changes nothing
    assert review(reviewer(), order_id, "approve").status_code == 409


def test_who_may_review(saga, api, customer):
    product = ProductFactory(stock=5)
    order_id = held(api, product)
    # a customer (even the order's own) is not told that reviews exist
    assert review(api, order_id, "approve").status_code == 404
    # staff without the permission are told what they lack
    clerk, user = APIClient(), StaffMemberFactory(permissions=["orders.view_order"])
    clerk.force_authenticate(user)
    assert review(clerk, order_id, "approve").status_code == 403
    # bad input is a 400 and changes nothing; an unknown order is a 404
    assert review(reviewer(), order_id, "maybe").status_code == 400
    assert review(reviewer(), order_id, "approve", note="x" * 1001).status_code == 400
    assert review(reviewer(), "00000000-0000-4000-8000-000000000000", "approve").status_code == 404
    assert Screening.objects.get(order_id=order_id).decision == ""
    assert Order.objects.get(pk=order_id).status == Status.IN_REVIEW
    # an order that is not in review is a conflict
    other = post_order(api, order_body(product, quantity=1))
    wait_for_terminal([other])
    assert review(reviewer(), other, "approve").status_code == 409


def decide(decision: str, order_id: str, start: threading.Barrier, answers: dict[str, int]) -> None:
    try:
        client = reviewer()
        start.wait()
        answers[decision] = review(client, order_id, decision).status_code
    finally:
        connections.close_all()


def test_approve_and_reject_racing_exactly_one_wins(saga, api):
    # given orders held for review
    product = ProductFactory(stock=20)
    order_ids = [held(api, product) for _ in range(3)]

    for order_id in order_ids:
        # when two reviewers decide at the same moment, one approving and one rejecting
        answers: dict[str, int] = {}
        start = threading.Barrier(2)

        threads = [threading.Thread(target=decide, args=(d, order_id, start, answers)) for d in ("approve", "reject")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        # then exactly one wins and the other is told it conflicts
        assert sorted(answers.values()) == [202, 409], answers
    orders = wait_for_terminal(order_ids)
    for order_id, order in orders.items():
        decision = Screening.objects.get(order_id=order_id).decision
        assert order.status == (Status.COMPLETED if decision == "approved" else Status.CANCELLED)
    assert_invariants(orders.values(), {product.sku: 20})


def test_a_cancel_before_the_decision_makes_it_a_conflict(saga, api, customer):
    product = ProductFactory(stock=5)
    order_id = held(api, product)
    # when the customer cancels first
    order_cancel(order_id=order_id, actor=customer.username)
    # then the decision is refused and the order ends cancelled at the customer's request
    assert review(reviewer(), order_id, "approve").status_code == 409
    order = wait_for_terminal([order_id])[order_id]
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    assert_invariants([order], {product.sku: 5})


def test_a_cancel_after_the_approval_cancels_as_any_cancel_does(saga, api, customer):
    product = ProductFactory(stock=5)
    order_id = held(api, product)
    assert review(reviewer(), order_id, "approve").status_code == 202
    # when the customer cancels right after the approval (before, during or after the charge)
    with contextlib.suppress(Conflict):  # completed before the cancel arrived: a 409 for the customer
        order_cancel(order_id=order_id, actor=customer.username)
    # then whatever was charged is refunded
    order = wait_for_terminal([order_id])[order_id]
    assert order.status in (Status.CANCELLED, Status.COMPLETED)
    assert_invariants([order], {product.sku: 5})


def test_nobody_deciding_in_time_cancels_it_as_expired(saga, api, settings):
    product = ProductFactory(stock=5)
    order_id = held(api, product)
    fresh = held(api, product)
    # given one review older than RISK_REVIEW_HOURS
    settings.RISK_REVIEW_HOURS = 1
    Screening.objects.filter(order_id=order_id).update(screened_at=timezone.now() - timedelta(hours=2))
    # when the risk service's clock runs
    assert reviews_expire() == [order_id]
    # then that order is cancelled as expired, and the fresh one still waits
    order = wait_for_terminal([order_id])[order_id]
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "expired")
    assert Order.objects.get(pk=fresh).status == Status.IN_REVIEW
    assert_invariants([order], {})


def test_a_review_survives_a_worker_restart_and_a_lost_message(saga, api):
    product = ProductFactory(stock=5)
    order_id = held(api, product)
    # given a worker that stops while the order waits, and an approval made meanwhile
    saga.stop()
    assert review(reviewer(), order_id, "approve").status_code == 202
    # whose message is lost on the way (the broker emptied once the relay sent it)
    from outbox.relay import relay_due

    relay_due()
    purge_broker()
    saga.start()
    # then the sweeper sends what is left, the step reads the decision, and the order completes once
    order = recover_until_terminal([order_id])[order_id]
    assert order.status == Status.COMPLETED
    assert_invariants([order], {product.sku: 5})
