"""What localstripe cannot show (it ignores idempotency keys and knows few errors), shown by a
fake Stripe at the HTTP level with the SDK pointed at it: the keys the shop sends and a server
that honours them, ``idempotency_key_in_use``, 429, 5xx, a write whose reply never comes, a
refused key. Each error must mean to the saga what the contract says (§4b)."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

from core.remote import RequestInFlight
from payments import services
from payments.models import Payment
from payments.providers import (
    KeyInUse,
    PaymentDeclined,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    get_payment_provider,
)
from tests.factories import charged

pytestmark = pytest.mark.django_db


@dataclass
class Fault:
    method: str
    path: str  # a prefix
    status: int
    error: dict[str, Any] = field(default_factory=dict)
    delay: float = 0.0
    after_effect: bool = False  # the request takes effect, only its reply is lost or wrong
    meanwhile: Callable[["FakeStripe"], None] | None = None  # what happens at Stripe just before


class FakeStripe(ThreadingHTTPServer):
    """Enough of Stripe's PaymentIntents and Refunds, honouring idempotency keys as Stripe does
    (a repeated key gets the first answer), with faults injected one request each."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.replies: dict[str, tuple[int, dict[str, Any]]] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, Idempotency-Key
        self.request_ids: list[tuple[str, str]] = []  # path, the Request-Id answered
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, method: str, path: str, form: dict[str, str], key: str) -> tuple[int, dict[str, Any], float]:
        with self.lock:
            self.requests.append((method, path, key))
            fault = next((f for f in self.faults if f.method == method and path.startswith(f.path)), None)
            if fault is not None:
                self.faults.remove(fault)
                if fault.meanwhile is not None:
                    fault.meanwhile(self)
                if not fault.after_effect:
                    return fault.status, {"error": fault.error}, fault.delay
            if key and key in self.replies:
                status, body = self.replies[key]
            else:
                status, body = self.handle(method, path, form)
                if key and method == "POST":
                    self.replies[key] = (status, body)
            if fault is not None:
                return fault.status, {"error": fault.error}, fault.delay
            return status, body, 0.0

    def handle(self, method: str, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"] and method == "POST" and len(parts) == 2:
            intent: dict[str, Any] = {
                "id": f"pi_{uuid.uuid4().hex[:14]}", "object": "payment_intent", "amount": int(form["amount"]),
                "currency": form["currency"], "status": "requires_confirmation", "created": int(time.time()),
                "metadata": metadata(form), "last_payment_error": None,
                "payment_method": form.get("payment_method"),
            }  # fmt: skip
            self.intents[intent["id"]] = intent
            return 200, intent
        if parts[:2] == ["v1", "payment_intents"] and len(parts) >= 3:
            intent = self.intents[parts[2]]
            if len(parts) == 4 and parts[3] == "cancel":
                if intent["status"] not in ("requires_confirmation", "requires_payment_method"):
                    return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}}
                intent["status"] = "canceled"
            if len(parts) == 4 and parts[3] == "confirm":
                if intent["status"] != "requires_confirmation":
                    return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}}
                intent["status"] = "succeeded"
                intent["amount_received"] = intent["amount"]
            return 200, intent
        if parts[:2] == ["v1", "refunds"] and method == "POST":
            refund: dict[str, Any] = {
                "id": f"re_{uuid.uuid4().hex[:14]}", "object": "refund", "amount": int(form["amount"]),
                "currency": "usd", "status": "succeeded", "payment_intent": form["payment_intent"],
                "created": int(time.time()), "metadata": metadata(form),
            }  # fmt: skip
            self.refunds[refund["id"]] = refund
            return 200, refund
        if parts[:2] == ["v1", "refunds"] and method == "GET":
            query = dict(parse_qsl(path.partition("?")[2]))
            data = [r for r in self.refunds.values() if r["payment_intent"] == query.get("payment_intent")]
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"}
        return 404, {"error": {"type": "invalid_request_error", "message": "Not Found"}}

    def confirm(self, intent_id: str) -> None:
        """As if an attempt the shop gave up on confirmed the intent after all."""
        self.intents[intent_id] |= {"status": "succeeded", "amount_received": self.intents[intent_id]["amount"]}

    def writes(self, path: str) -> list[str]:
        """The idempotency keys of the POSTs to ``path`` (a prefix), in order."""
        return [key for method, p, key in self.requests if method == "POST" and p.startswith(path)]


def metadata(form: dict[str, str]) -> dict[str, str]:
    return {key[len("metadata[") : -1]: value for key, value in form.items() if key.startswith("metadata[")}


class Handler(BaseHTTPRequestHandler):
    server: FakeStripe

    def do_GET(self) -> None:
        self._answer({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(dict(parse_qsl(self.rfile.read(length).decode())))

    def _answer(self, form: dict[str, str]) -> None:
        status, body, delay = self.server.answer(self.command, self.path, form, self.headers.get("Idempotency-Key", ""))
        if delay:
            time.sleep(delay)
        payload = json.dumps(body).encode()
        request_id = f"req_{uuid.uuid4().hex[:12]}"
        with self.server.lock:
            self.server.request_ids.append((self.path, request_id))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Request-Id", request_id)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: a lost reply

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake(settings) -> Iterator[FakeStripe]:
    server = FakeStripe()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_KEY = "sk_test_fake"
    settings.STRIPE_API_BASE = server.url
    settings.STRIPE_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    get_payment_provider.cache_clear()
    yield server
    server.shutdown()
    server.server_close()
    get_payment_provider.cache_clear()


def opened() -> str:
    order_id = str(uuid.uuid4())
    services.payment_open(order_id=order_id, amount=Decimal("12.34"))
    return order_id


def charge(order_id: str) -> Payment:
    return charged(order_id, "pm_card_visa")


def test_every_write_carries_a_key_derived_from_the_order(fake):
    order_id = opened()
    charge(order_id)
    services.payment_refund(order_id=order_id)

    intent = Payment.objects.get(order_id=order_id).provider_reference
    assert fake.writes("/v1/payment_intents") == [f"order:{order_id}:charge:create", f"order:{order_id}:charge:confirm"]
    assert fake.writes("/v1/refunds") == [f"order:{order_id}:refund:{intent}"]


def test_a_create_whose_reply_was_lost_is_found_again_by_its_key(fake):
    # given a create that Stripe carried out, but whose reply never came (a 500 after the fact)
    order_id = opened()
    fake.faults.append(Fault("POST", "/v1/payment_intents", 500, {"type": "api_error"}, after_effect=True))
    with pytest.raises(ProviderTimeout):
        charge(order_id)

    # when the saga tries again
    payment = charge(order_id)

    # then the same key brought back the same intent: one intent, one success
    assert payment.status == Payment.Status.SUCCEEDED
    assert list(fake.intents) == [payment.provider_reference]


def test_a_confirm_whose_reply_was_lost_is_not_sent_twice(fake):
    order_id = opened()
    fake.faults.append(Fault("POST", "/v1/payment_intents/", 200, delay=1.0, after_effect=True))  # slower than 0.5 s
    with pytest.raises(ProviderTimeout):
        charge(order_id)

    payment = charge(order_id)  # finds the intent succeeded: nothing to confirm

    assert payment.status == Payment.Status.SUCCEEDED
    assert len(fake.writes("/v1/payment_intents/")) == 1
    assert [i["status"] for i in fake.intents.values()] == ["succeeded"]


def test_a_key_in_use_means_unknown_yet(fake):
    order_id = opened()
    fake.faults.append(
        Fault("POST", "/v1/payment_intents", 409, {"type": "invalid_request_error", "code": "idempotency_key_in_use"})
    )
    with pytest.raises(KeyInUse) as unknown:
        charge(order_id)
    assert isinstance(unknown.value, RequestInFlight)  # the saga waits, at no retry's cost


REJECTED = ProviderRejected  # a bug or a setting: the order is parked for staff


@pytest.mark.parametrize(
    ("status", "error", "meaning"),
    [
        (429, {"type": "rate_limit_error"}, ProviderUnavailable),  # refused before anything happened
        (500, {"type": "api_error"}, ProviderTimeout),  # a write may have happened
        (503, {"type": "api_error"}, ProviderTimeout),
        (402, {"type": "card_error", "code": "card_declined"}, PaymentDeclined),
        (401, {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****fake"}, REJECTED),
        (400, {"type": "invalid_request_error", "code": "parameter_unknown"}, REJECTED),
        (400, {"type": "idempotency_error", "message": "Keys can only be used with the same parameters"}, REJECTED),
    ],
)  # fmt: skip
def test_errors_mean_what_they_say(fake, status, error, meaning):
    order_id = opened()
    fake.faults.append(Fault("POST", "/v1/payment_intents", status, error))

    with pytest.raises(meaning) as raised:
        charge(order_id)

    assert len(fake.requests) == 1  # the SDK never retries: the saga does, with its fences
    said = f"{raised.value} {getattr(raised.value, 'staff_detail', '')}"
    assert "sk_test" not in said
    assert "req_" in str(raised.value)  # Stripe's request id, for whoever looks into it


def test_a_read_that_times_out_is_transient(fake):
    order_id = opened()
    charge(order_id)
    fake.faults.append(Fault("GET", "/v1/payment_intents/", 200, delay=1.0))
    with pytest.raises(ProviderUnavailable):
        get_payment_provider().transactions(order_ref=order_id)


def test_stripe_unreachable_is_transient(fake, settings):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens there
    get_payment_provider.cache_clear()
    with pytest.raises(ProviderTimeout):  # a write that may have happened: the next attempt looks
        charge(opened())


def test_the_reconciler_leaves_an_order_for_next_time_while_stripe_is_out_of_reach(fake, customer):
    from orders.models import Order, Status
    from orders.reconciliation import orders_reconcile
    from tests import factories
    from tests.factories import ProductFactory

    # given a completed order charged through Stripe
    order = factories.place(customer, ProductFactory(stock=5))
    services.payment_open(order_id=order.pk, amount=order.total)
    charged(order.pk, "pm_card_visa", order.total)
    Order.objects.filter(pk=order.pk).update(status=Status.COMPLETED)

    # when the reconciler runs while Stripe answers 503
    fake.faults.append(Fault("GET", "/v1/payment_intents/", 503, {"type": "api_error"}))
    report = orders_reconcile(limit=10)

    # then the order is neither repaired nor flagged: it is compared again next time
    assert (report.unknown, report.mismatched, report.repaired) == ([str(order.pk)], [], [])
    assert orders_reconcile(limit=10).unknown == []  # Stripe is back: it adds up


def test_the_journal_names_each_stripe_write_with_its_request_id(fake, customer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.models import Order, OrderEvent, Status
    from orders.transitions import order_transition
    from payments import steps
    from tests.sagas.test_step_rows import Hops, order_in

    # given an order whose saga is at its charge
    order_id = order_in(Status.RESERVED, customer)
    total = str(Order.objects.get(pk=order_id).total)

    # when the payment service charges it, then the order turns back and it refunds it
    with CaptureQueriesContext(connection) as charging:
        steps.charge(
            order_id=order_id, context={"total": total, "currency": "USD", "payment_token": "pm_card_visa"}, hops=Hops()
        )
    order_transition(order=Order.objects.get(pk=order_id), to=Status.COMPENSATING, reason="customer_request")
    steps.refund(order_id=order_id, hops=Hops())

    # then each write to Stripe has its staff-only line, with the request id Stripe answered it with
    answered = {path.partition("?")[0]: request_id for path, request_id in fake.request_ids}
    intent = Payment.objects.get(order_id=order_id).provider_reference
    lines = OrderEvent.objects.filter(order_id=order_id, name__startswith="stripe.").order_by("created_at", "pk")
    assert [(e.service, e.kind, e.name, e.message) for e in lines] == [
        ("payments", "step", "stripe.payment_intents.create",
         f"{intent} requires_confirmation, request {answered['/v1/payment_intents']}"),
        ("payments", "step", "stripe.payment_intents.confirm",
         f"{intent} succeeded, request {answered[f'/v1/payment_intents/{intent}/confirm']}"),
        ("payments", "step", "stripe.refunds.create",
         f"{next(iter(fake.refunds))} succeeded, request {answered['/v1/refunds']}"),
    ]  # fmt: skip
    # written with the step's outcome, in its one INSERT of journal lines: no statement of their own
    journal = OrderEvent._meta.db_table
    inserts = [q["sql"] for q in charging.captured_queries if q["sql"].startswith(f'INSERT INTO "{journal}"')]
    assert len(inserts) == 1
    assert all("sk_test" not in e.message for e in OrderEvent.objects.filter(order_id=order_id))


def test_a_confirm_that_lands_while_compensation_cancels_is_refunded(fake):
    from payments.stripe_provider import StripePaymentProvider

    # given an intent created and recorded, whose attempt is confirmed late, just as the
    # compensation cancels it (Stripe then refuses to cancel an intent that succeeded)
    order_id = opened()
    intent = StripePaymentProvider()._create(
        amount=Decimal("12.34"), currency="USD", token="pm_card_visa",
        idempotency_key=f"order:{order_id}:charge", order_ref=order_id,
    )  # fmt: skip
    unexpected = {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}
    fake.faults.append(
        Fault("POST", f"/v1/payment_intents/{intent.id}/cancel", 400, unexpected, after_effect=True,
              meanwhile=lambda server: server.confirm(intent.id))
    )  # fmt: skip

    # when the compensation runs
    assert services.payment_refund(order_id=order_id) is True

    # then the late success is refunded, once
    assert fake.intents[intent.id]["status"] == "succeeded"
    assert [(r["payment_intent"], r["amount"]) for r in fake.refunds.values()] == [(intent.id, 1234)]
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.REFUNDED
