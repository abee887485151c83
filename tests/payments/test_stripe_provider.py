"""The Stripe provider against localstripe, without a worker: one PaymentIntent per order
whatever the retries, copies and takeovers (localstripe ignores idempotency keys, so these
show the design holding without them), declines, refunds once, a bad key parked."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connections

from payments import services
from payments.models import Payment
from payments.providers import PaymentDeclined, PaymentError, ProviderRejected, get_payment_provider
from payments.stripe_provider import StripePaymentProvider, intent_recorded, minor_units
from tests.factories import charged
from tests.payments.stripe_server import LocalStripe

pytestmark = pytest.mark.django_db(transaction=True)

VISA, DECLINED = "pm_card_visa", "pm_card_chargeCustomerFail"


def opened(amount: str = "12.34") -> str:
    order_id = str(uuid.uuid4())
    services.payment_open(order_id=order_id, amount=Decimal(amount))
    return order_id


def succeeded(server: LocalStripe, order_id: str) -> list[str]:
    return [i.id for i in server.intents_of(order_id) if i.status == "succeeded"]


def test_a_charge_repeated_is_one_intent(stripe_settings):
    order_id = opened()

    first = charged(order_id, VISA)
    Payment.objects.filter(order_id=order_id).update(status=Payment.Status.PENDING)  # as if the reply was lost
    again = charged(order_id, VISA)

    assert first.provider_reference == again.provider_reference
    assert [i.id for i in stripe_settings.intents_of(order_id)] == [first.provider_reference]
    assert succeeded(stripe_settings, order_id) == [first.provider_reference]
    assert get_payment_provider().find_charge(idempotency_key="", order_ref=order_id) is not None


def test_a_worker_that_died_between_create_and_confirm_is_taken_over(stripe_settings):
    # given an attempt that created (and recorded) the intent, then died before confirming
    order_id = opened()
    provider = StripePaymentProvider()
    key = f"order:{order_id}:charge"
    created = provider._create(
        amount=Decimal("12.34"), currency="USD", token=VISA, idempotency_key=key, order_ref=order_id
    )
    assert get_payment_provider().find_charge(idempotency_key="", order_ref=order_id) is None

    # when the next attempt runs
    payment = charged(order_id, VISA)

    # then it confirmed that intent, and made none of its own
    assert payment.provider_reference == created.id
    assert [i.id for i in stripe_settings.intents_of(order_id)] == [created.id]
    assert succeeded(stripe_settings, order_id) == [created.id]


def test_an_intent_created_but_never_recorded_is_never_confirmed(stripe_settings):
    # given an attempt that died after Stripe created its intent, before the shop recorded it
    # (and a server that ignores idempotency keys, so the next create makes another)
    order_id = opened()
    stripe_settings.client.v1.payment_intents.create(
        {"amount": 1234, "currency": "usd", "payment_method": VISA, "metadata": {"order_id": order_id}}
    )

    payment = charged(order_id, VISA)

    # then one intent succeeded, the recorded one; the orphan never took money
    assert succeeded(stripe_settings, order_id) == [payment.provider_reference]
    assert len(stripe_settings.intents_of(order_id)) == 2


def test_concurrent_attempts_make_one_success(stripe_settings):
    # given four copies of the charge racing (a duplicate message, a takeover after a lease)
    order_id = opened()
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append(StripePaymentProvider().charge(
                amount=Decimal("12.34"), currency="USD", token=VISA,
                idempotency_key=f"order:{order_id}:charge", order_ref=order_id,
            ))  # fmt: skip
        except Exception as exc:  # a copy that lost the race may be told to come back
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then Stripe holds one succeeded intent, the one the shop recorded
    recorded = intent_recorded(order_id)
    assert succeeded(stripe_settings, order_id) == [recorded]
    assert any(getattr(o, "reference", None) == recorded for o in outcomes)
    others = [i for i in stripe_settings.intents_of(order_id) if i.id != recorded]
    assert all(i.status == "canceled" for i in others)  # the losers cancelled their own


def test_a_declined_card_is_final_and_stays_declined(stripe_settings):
    order_id = opened()
    for _ in range(2):  # a copy of the message, or a retry
        with pytest.raises(PaymentDeclined):
            services.payment_charge(order_id=order_id, token=DECLINED, amount=Decimal("12.34"))
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.DECLINED
    assert len(stripe_settings.intents_of(order_id)) == 1
    assert [e.status for e in get_payment_provider().transactions(order_ref=order_id)] == ["failed"]
    assert services.payment_refund(order_id=order_id) is False
    # the compensation cancelled the declined intent: no other payment method can be put on it
    assert [i.status for i in stripe_settings.intents_of(order_id)] == ["canceled"]
    assert [e.status for e in get_payment_provider().transactions(order_ref=order_id)] == ["failed"]


def test_a_payment_method_stripe_does_not_know_is_declined(stripe_settings):
    order_id = opened()
    with pytest.raises(PaymentDeclined):
        services.payment_charge(order_id=order_id, token="pm_nothing_like_it", amount=Decimal("12.34"))


def test_a_refund_happens_once_however_often_compensation_runs(stripe_settings):
    order_id = opened()
    charged(order_id, VISA)

    assert services.payment_refund(order_id=order_id) is True
    Payment.objects.filter(order_id=order_id).update(status=Payment.Status.SUCCEEDED)  # as if it died before saying so
    assert services.payment_refund(order_id=order_id) is True

    ledger = get_payment_provider().transactions(order_ref=order_id)
    assert [(e.kind, e.amount, e.status) for e in ledger] == [
        ("charge", Decimal("12.34"), "succeeded"),
        ("refund", Decimal("12.34"), "succeeded"),
    ]
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.REFUNDED


def test_a_key_stripe_refuses_parks_the_payment_without_showing_the_key(stripe_settings, settings):
    settings.STRIPE_API_KEY = "pk_test_not_a_secret_key_0123"
    get_payment_provider.cache_clear()
    order_id = opened()

    with pytest.raises(ProviderRejected) as refused:
        services.payment_charge(order_id=order_id, token=VISA, amount=Decimal("12.34"))

    assert "AuthenticationError" in refused.value.staff_detail  # for staff
    assert "AuthenticationError" not in str(refused.value)  # what the customer may see
    assert "pk_test_not_a_secret_key_0123" not in f"{refused.value} {refused.value.staff_detail}"
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.REJECTED
    with pytest.raises(ProviderRejected):  # the compensation cannot look either: staff must
        services.payment_refund(order_id=order_id)


def test_a_refused_charge_parks_the_order_once_then_staff_can_settle_it(stripe_settings):
    order_id = opened()
    Payment.objects.filter(order_id=order_id).update(status=Payment.Status.REJECTED)
    with pytest.raises(ProviderRejected):
        services.payment_refund(order_id=order_id)
    assert services.payment_refund(order_id=order_id) is False  # staff's retry: nothing was charged


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("12.34", "USD", 1234), ("0.01", "EUR", 1), ("500", "JPY", 500), ("1000000.00", "usd", 100000000)],
)
def test_amounts_in_minor_units(amount, currency, units):
    assert minor_units(Decimal(amount), currency) == units


def test_a_fraction_of_the_smallest_unit_is_refused():
    with pytest.raises(ValueError, match="smallest unit"):
        minor_units(Decimal("1.005"), "USD")


def test_the_admin_shows_the_intent_linked_to_stripe_and_what_stripe_holds(stripe_settings, staff):
    from django.test import Client

    # given a payment charged and refunded through Stripe
    order_id = opened()
    payment = charged(order_id, VISA)
    services.payment_refund(order_id=order_id)
    browser = Client()
    browser.force_login(staff)

    # when staff open it in the admin
    page = browser.get(f"/admin/payments/payment/{payment.pk}/change/").content.decode()

    # then the intent links to Stripe's dashboard, and the charge and its refund are listed
    assert f'href="https://dashboard.stripe.com/test/payments/{payment.provider_reference}"' in page
    assert f"charge 12.34 succeeded ({payment.provider_reference})" in page
    assert "refund 12.34 succeeded (re_" in page


def test_the_ledger_names_the_idempotency_key_of_each_charge_and_refund(stripe_settings):
    # given an order charged and refunded through Stripe
    order_id = opened()
    payment = charged(order_id, VISA)
    services.payment_refund(order_id=order_id)

    # then the ledger read back from Stripe names the keys the shop used, as the simulated one does
    ledger = get_payment_provider().transactions(order_ref=order_id)
    assert [(e.kind, e.idempotency_key) for e in ledger] == [
        ("charge", services.charge_key(order_id)),
        ("refund", services.refund_key(order_id, payment.provider_reference)),
    ]


def test_an_intent_never_confirmed_is_cancelled_when_the_order_turns_back(stripe_settings, customer):
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import Order, OrderEvent, Status
    from orders.transitions import order_transition
    from payments import steps
    from sagas.models import SagaStep
    from tests.sagas.test_step_rows import Hops, order_in

    # given an order whose charge created (and recorded) its intent, then its worker died
    # before confirming it, and the step was given up
    order_id = order_in(Status.RESERVED, customer)
    order = Order.objects.get(pk=order_id)
    services.payment_open(order_id=order_id, amount=order.total)
    created = StripePaymentProvider()._create(
        amount=order.total, currency="USD", token=VISA, idempotency_key=f"order:{order_id}:charge", order_ref=order_id
    )
    long_ago = timezone.now() - timedelta(hours=1)
    SagaStep.objects.filter(saga_id=order_id, name="charge_payment").update(
        status=SagaStep.Status.FAILED, attempts=1, started_at=long_ago, finished_at=long_ago
    )

    # when the order is cancelled and its payment compensated (twice: a copy of the message)
    order_transition(order=Order.objects.get(pk=order_id), to=Status.COMPENSATING, reason="customer_request")
    steps.refund(order_id=order_id, hops=Hops())
    steps.refund(order_id=order_id, hops=Hops())
    assert services.payment_refund(order_id=order_id) is False  # and once more: still idempotent

    # then Stripe holds the intent cancelled, the journal says so, and nothing was charged
    assert [(i.id, i.status) for i in stripe_settings.intents_of(order_id)] == [(created.id, "canceled")]
    cancelled = OrderEvent.objects.get(order_id=order_id, name="stripe.payment_intents.cancel")
    assert cancelled.message.startswith(f"{created.id} canceled, request")
    assert SagaStep.objects.get(saga_id=order_id, name="refund_payment").status == SagaStep.Status.SKIPPED
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.FAILED

    # and the worker, alive after all, cannot confirm it: no money moves, the payment stays failed
    with pytest.raises(PaymentError, match="cancelled"):
        services.payment_charge(order_id=order_id, token=VISA, amount=order.total)
    assert succeeded(stripe_settings, order_id) == []
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.FAILED


def test_the_journal_names_each_stripe_write_against_localstripe(stripe_settings, customer):
    from orders.models import Order, OrderEvent, Status
    from payments import steps
    from tests.sagas.test_step_rows import Hops, order_in

    order_id = order_in(Status.RESERVED, customer)
    total = str(Order.objects.get(pk=order_id).total)
    steps.charge(order_id=order_id, context={"total": total, "currency": "USD", "payment_token": VISA}, hops=Hops())

    intent = Payment.objects.get(order_id=order_id).provider_reference
    lines = OrderEvent.objects.filter(order_id=order_id, name__startswith="stripe.").order_by("created_at", "pk")
    # localstripe sends no Request-Id: the line says none was given (the HTTP fake shows one)
    assert [(e.name, e.message) for e in lines] == [
        ("stripe.payment_intents.create", f"{intent} requires_confirmation, request (none given)"),
        ("stripe.payment_intents.confirm", f"{intent} succeeded, request (none given)"),
    ]
