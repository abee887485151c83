"""The order saga charging through Stripe (localstripe, its own process), on a real worker, in
both coordination modes: what Stripe holds adds up with every order's end (contract §4b)."""

import time
from collections.abc import Iterator

import pytest

from orders.models import Order, OrderEvent, Status
from payments.models import Payment
from sagas.models import SagaStep
from shop.models import Product
from tests.factories import ProductFactory, order_body, post_order
from tests.payments.stripe_server import LocalStripe
from tests.worker import (
    SagaWorker,
    recover_until_terminal,
    running,
    wait_for_step,
    wait_for_terminal,
    wait_until,
    wait_until_quiet,
    wait_until_settled,
)

pytestmark = pytest.mark.saga

VISA, DECLINED = "pm_card_visa", "pm_card_chargeCustomerFail"


@pytest.fixture(scope="module")
def stripe_module_worker(saga_worker, localstripe: LocalStripe, tmp_path_factory) -> Iterator[SagaWorker]:
    """One worker charging through localstripe for this module's tests (a worker per test
    would cost seconds of start and stop each)."""
    worker = SagaWorker(tmp_path_factory.mktemp("stripe-saga") / "worker.log", env=localstripe.worker_env())
    yield worker
    worker.stop()


@pytest.fixture
def stripe_saga(transactional_db, saga_worker, stripe_module_worker, coordination, stripe_settings):
    """As ``tests.worker.saga``, with the Stripe worker in place of the session's."""
    saga_worker.stop()
    with running(stripe_module_worker):
        yield stripe_module_worker


def charging(api, settings, server, count=3):
    """Orders placed with Stripe frozen, once the first one's charge hangs on it (frozen before
    they are placed, so that the fault lands inside a call, however fast the steps run)."""
    settings.SAGA_STALL_SECONDS = 2
    product = ProductFactory(stock=10)
    server.freeze()
    ids = [post_order(api, order_body(product, token=VISA)) for _ in range(count)]
    wait_for_step(ids[0], "charge_payment", "running")
    return ids


def test_charge_once_decline_and_a_later_failure_refunds(stripe_saga, stripe_settings, api):
    # given a worker charging through Stripe
    product = ProductFactory(stock=10)

    # when three orders run: a good card, a card declined when charged, a good card whose
    # address the carrier rejects after the charge
    paid = post_order(api, order_body(product, token=VISA))
    declined = post_order(api, order_body(product, token=DECLINED))
    shipped_nowhere = post_order(api, order_body(product, token=VISA, postal_code="00000"))
    orders = wait_for_terminal([paid, declined, shipped_nowhere], timeout=60)

    # then each ends as the contract says, and Stripe holds exactly that
    assert orders[paid].status == Status.COMPLETED
    assert (orders[declined].status, orders[declined].cancellation_reason) == (Status.CANCELLED, "payment_declined")
    assert (orders[shipped_nowhere].status, orders[shipped_nowhere].cancellation_reason) == (
        Status.CANCELLED,
        "shipping_failed",
    )
    stripe_settings.assert_adds_up(orders.values())
    assert len(stripe_settings.intents_of(paid)) == 1
    assert [i.status for i in stripe_settings.intents_of(shipped_nowhere)] == ["succeeded"]
    assert [i.status for i in stripe_settings.intents_of(declined)] == ["canceled"]  # by its compensation
    assert Product.objects.get(pk=product.pk).stock == 9  # the declined and the undelivered put back
    payment = Payment.objects.get(order_id=paid)
    assert payment.provider_reference == stripe_settings.intents_of(paid)[0].id
    assert Payment.objects.get(order_id=shipped_nowhere).status == Payment.Status.REFUNDED


def test_stripe_frozen_past_every_timeout_then_resumed(stripe_saga, stripe_settings, api, settings):
    # given orders whose charge is in flight when Stripe stops answering
    ids = charging(api, settings, stripe_settings)
    try:
        # when it stays frozen past the calls' timeouts and the steps' lease
        time.sleep(4)
    finally:
        stripe_settings.thaw()

    # then every order ends, and Stripe holds one success per completed order
    orders = recover_until_terminal(ids, timeout=90)
    stripe_settings.assert_adds_up(orders.values())
    assert all(o.status in (Status.COMPLETED, Status.CANCELLED) for o in orders.values())
    journal = OrderEvent.objects.filter(order_id__in=ids, kind="retry", name="charge_payment")
    assert journal.exists()  # the saga retried what Stripe did not answer


def test_stripe_killed_and_restarted_mid_saga(stripe_saga, stripe_settings, api, settings):
    # given orders whose charge is in flight when the Stripe server dies
    ids = charging(api, settings, stripe_settings)
    stripe_settings.kill()

    # when it comes back a moment later with what it had written down
    time.sleep(1.5)
    stripe_settings.start(from_scratch=False)

    # then every order ends, and what Stripe holds adds up with each
    orders = recover_until_terminal(ids, timeout=90)
    stripe_settings.assert_adds_up(orders.values())
    assert OrderEvent.objects.filter(order_id__in=ids, kind="retry", name="charge_payment").exists()


def test_every_message_delivered_twice(stripe_saga, stripe_settings, api, settings, tmp_path):
    from celery.signals import after_task_publish

    from tests.chaos.apps import duplicate

    # given a worker that receives every task message twice (copies racing for each step)
    settings.SAGA_STALL_SECONDS = 2
    stripe_saga.stop()
    twice = SagaWorker(tmp_path / "worker.log", app="tests.chaos.apps.duplicate", env=stripe_settings.worker_env())
    twice.start()
    try:
        product = ProductFactory(stock=10)
        ids = [post_order(api, order_body(product, token=token)) for token in (VISA, VISA, DECLINED)]
        ids.append(post_order(api, order_body(product, token=VISA, postal_code="00000")))

        # then each order is charged (and refunded) once
        orders = recover_until_terminal(ids, timeout=90)
    finally:
        after_task_publish.disconnect(duplicate.publish_again)
        wait_until_settled()
        wait_until_quiet()
        twice.stop()
    stripe_settings.assert_adds_up(orders.values())
    assert [o.status for o in orders.values()].count(Status.COMPLETED) == 2
    for order_id in ids:
        assert len(stripe_settings.intents_of(order_id)) == 1  # a second intent was never made


def test_a_success_stripe_reports_after_the_order_was_cancelled_is_refunded(stripe_saga, stripe_settings, api, client):
    from tests.payments.test_stripe_webhooks import signed

    # given an order cancelled by its customer while it waited for a review, before any charge
    product = ProductFactory(stock=5)
    order_id = post_order(api, order_body(product, token=VISA, postal_code="77777"))
    wait_until(lambda: Order.objects.get(pk=order_id).status == Status.IN_REVIEW, what="the review")
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 202
    order = wait_for_terminal([order_id])[order_id]
    assert stripe_settings.ledger().get(order_id) is None

    # when a charge attempt nobody saw through lands at Stripe after all (its intent recorded
    # and confirmed by a worker that died before it could say so)
    params = {"amount": int(order.total * 100), "currency": "usd", "payment_method": VISA}
    intent = stripe_settings.client.v1.payment_intents.create(params | {"metadata": {"order_id": order_id}})
    Payment.objects.create(order_id=order_id, amount=order.total, currency="USD", provider_reference=intent.id)
    intent = stripe_settings.client.v1.payment_intents.confirm(intent.id)
    assert intent.status == "succeeded"
    # and Stripe says so through the webhook, twice
    event = {"id": "evt_late_success", "type": "payment_intent.succeeded", "data": {"object": intent.to_dict()}}
    for _ in range(2):
        body, header = signed(event)
        response = client.post("/webhooks/stripe/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
        assert response.status_code == 200

    # then the order compensates again and Stripe ends holding nothing for it
    order = recover_until_terminal([order_id], timeout=60)[order_id]
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "customer_request")
    stripe_settings.assert_adds_up([order])
    assert stripe_settings.ledger()[order_id] == ([order.total], order.total)
    assert OrderEvent.objects.filter(order_id=order_id, name="stripe.payment_intent.succeeded").count() == 1
    assert SagaStep.objects.get(saga_id=order_id, name="refund_payment").status == "succeeded"


def test_a_key_stripe_refuses_parks_the_order_for_staff_who_settle_it_once_fixed(
    stripe_saga, stripe_settings, api, customer, client, staff, tmp_path
):
    from orders.services import order_retry_compensation

    # given a worker whose key Stripe refuses (a setting gone wrong: not worth any retry)
    stripe_saga.stop()
    wrong = SagaWorker(tmp_path / "worker.log", env=stripe_settings.worker_env(STRIPE_API_KEY="pk_test_wrong_key"))
    wrong.start()
    try:
        product = ProductFactory(stock=5)
        order_id = post_order(api, order_body(product, token=VISA))

        # then the order waits for staff at once, its stock back, the reason theirs to read
        order = wait_for_terminal([order_id], timeout=30)[order_id]
        assert order.status == Status.NEEDS_ATTENTION
        assert Product.objects.get(pk=product.pk).stock == 5
        charge = SagaStep.objects.get(saga_id=order_id, name="charge_payment")
        assert (charge.status, charge.attempts) == ("failed", 1)  # refused, never retried
        staff_line = OrderEvent.objects.get(order_id=order_id, kind="step", name="charge_payment").message
        assert "AuthenticationError" in staff_line
        assert "pk_test_wrong_key" not in staff_line + charge.error
        client.force_login(customer)
        for answer in (api.get(f"/api/orders/{order_id}/"), client.get(f"/orders/{order_id}/")):
            assert answer.status_code == 200  # what the customer sees
            assert "AuthenticationError" not in answer.content.decode()
    finally:
        wrong.stop()

    # when the key is fixed and staff retry the compensation
    stripe_saga.start()
    order_retry_compensation(order_id=order_id, actor=staff.username)

    # then it ends cancelled, nothing charged
    order = wait_for_terminal([order_id], timeout=30)[order_id]
    assert (order.status, order.cancellation_reason) == (Status.CANCELLED, "payment_failed")
    stripe_settings.assert_adds_up([order])
