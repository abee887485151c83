"""``POST /webhooks/stripe/`` (contract §4b): only what Stripe signed, within five minutes, is
taken; each event is recorded once in its order's journal; nothing else changes anything."""

import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from orders.models import OrderEvent
from payments.models import StripeEvent
from tests import factories
from tests.factories import ProductFactory, charged
from tests.payments.stripe_server import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

URL = "/webhooks/stripe/"


def signed(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> tuple[str, str]:
    """The body and the ``Stripe-Signature`` Stripe would send (scheme v1: HMAC-SHA256 of
    ``<timestamp>.<body>``)."""
    body = json.dumps(event)
    timestamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return body, f"t={timestamp},v1={signature}"


def event_for(order_id: Any, *, event_id: str = "evt_1", type: str = "payment_intent.processing") -> dict[str, Any]:
    intent = {"id": "pi_test", "object": "payment_intent", "amount": 1000, "metadata": {"order_id": str(order_id)}}
    return {"id": event_id, "object": "event", "type": type, "data": {"object": intent}}


@pytest.fixture
def webhooks(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture
def order(customer):
    return factories.place(customer, ProductFactory(stock=5))


def post(client, body: str, header: str | None):
    extra = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    return client.post(URL, body, content_type="application/json", **extra)


def journal(order) -> list[tuple[str, str, str]]:
    rows = OrderEvent.objects.filter(order=order, service="payments", kind="event", name__startswith="stripe.")
    return list(rows.values_list("name", "message", "kind"))


def test_a_signed_event_is_recorded_once_however_often_it_comes(client, webhooks, order):
    # given an event Stripe signed, naming an order
    body, header = signed(event_for(order.pk))

    # when it is delivered, then delivered again (Stripe retries; an attacker replays)
    first = post(client, body, header)
    again = post(client, body, header)
    resent = post(client, *signed(event_for(order.pk)))

    # then each is accepted, and the order's journal names it once, with its id
    assert [first.status_code, again.status_code, resent.status_code] == [200, 200, 200]
    assert [first.json()["received"], again.json()["received"], resent.json()["received"]] == [
        "recorded",
        "duplicate",
        "duplicate",
    ]
    assert journal(order) == [("stripe.payment_intent.processing", "evt_1 (pi_test)", "event")]
    assert StripeEvent.objects.count() == 1


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="unsigned"),
        pytest.param("t=1,v1=deadbeef", id="garbage"),
        pytest.param("wrong-secret", id="wrong-secret"),
        pytest.param("stale", id="older-than-five-minutes"),
        pytest.param("tampered", id="body-changed-after-signing"),
    ],
)
def test_anything_not_signed_by_stripe_now_is_refused_and_changes_nothing(client, webhooks, order, header):
    event = event_for(order.pk)
    body, good = signed(event)
    if header == "wrong-secret":
        body, header = signed(event, secret="whsec_someone_else")
    elif header == "stale":
        body, header = signed(event, at=int(time.time()) - 301)
    elif header == "tampered":
        header = good
        body = body.replace("1000", "1")

    response = post(client, body, header)

    assert response.status_code == 400
    assert journal(order) == []
    assert not StripeEvent.objects.exists()


def test_without_a_signing_secret_every_event_is_refused(client, settings, order):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body, header = signed(event_for(order.pk), secret="")
    assert post(client, body, header).status_code == 400
    assert journal(order) == []


def test_a_body_larger_than_stripe_sends_is_refused_unread(client, webhooks, order, settings):
    event = event_for(order.pk) | {"padding": "x" * settings.STRIPE_WEBHOOK_MAX_BYTES}
    assert post(client, *signed(event)).status_code == 400
    assert journal(order) == []


def test_an_event_naming_no_order_of_the_shop_is_accepted_and_ignored(client, webhooks, order):
    import uuid

    for metadata in ({}, {"order_id": "not-a-uuid"}, {"order_id": str(uuid.uuid4())}):
        event = event_for(order.pk, event_id=f"evt_{len(metadata)}")
        event["data"]["object"]["metadata"] = metadata
        response = post(client, *signed(event))
        assert (response.status_code, response.json()["received"]) == (200, "ignored")
    assert not StripeEvent.objects.exists()


def test_only_post_and_no_csrf_token_needed(webhooks, order):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert client.get(URL).status_code == 405
    assert post(client, *signed(event_for(order.pk))).status_code == 200


def test_webhooks_are_rate_limited(client, webhooks, order, rate_limits, monkeypatch):
    from core.api import ShopRateThrottle

    monkeypatch.setitem(ShopRateThrottle.THROTTLE_RATES, "stripe_webhook", "2/min")
    codes = [post(client, *signed(event_for(order.pk, event_id=f"evt_{i}"))).status_code for i in range(3)]
    assert codes == [200, 200, 429]


@pytest.mark.django_db(transaction=True)
def test_localstripes_own_deliveries_are_verified_and_recorded_once(live_server, stripe_settings, customer):
    import requests

    from payments import services
    from tests.worker import wait_until

    def deliver_to(url: str) -> None:
        config = {"url": url, "secret": WEBHOOK_SECRET, "events[]": ["payment_intent.succeeded"]}
        requests.post(f"{stripe_settings.url}/_config/webhooks/shop", data=config, timeout=5).raise_for_status()

    # given localstripe delivering its events to the shop, signed with the endpoint's secret
    deliver_to(f"{live_server.url}/webhooks/stripe/")
    try:
        order = factories.place(customer, ProductFactory(stock=5))

        # when the order is charged through it
        services.payment_open(order_id=order.pk, amount=order.total)
        payment = charged(order.pk, "pm_card_visa", order.total)

        # then Stripe's payment_intent.succeeded reaches the order's journal, once
        wait_until(
            lambda: OrderEvent.objects.filter(order=order, name="stripe.payment_intent.succeeded").exists(),
            timeout=15,
            what="localstripe's delivery",
        )
    finally:
        deliver_to("http://127.0.0.1:9/")  # nowhere: the live server ends with this test
    assert StripeEvent.objects.get(type="payment_intent.succeeded").object_id == payment.provider_reference
    assert OrderEvent.objects.filter(order=order, name__startswith="stripe.").count() == StripeEvent.objects.count()
