from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import SimulatorInFlight
from payments.models import ProviderTransaction
from payments.providers import (
    KeyInUse,
    PaymentDeclined,
    ProviderTimeout,
    ProviderUnavailable,
    RefundFailed,
    SimulatedPaymentProvider,
)

AMOUNT = Decimal("39.50")


@pytest.fixture
def provider(db):
    return SimulatedPaymentProvider()


def charge(provider, token: str, key: str = "k1"):
    return provider.charge(amount=AMOUNT, currency="USD", token=token, idempotency_key=key, order_ref="o1")


def test_a_charge_with_the_same_key_happens_once(provider):
    first = charge(provider, "tok_visa")
    again = charge(provider, "tok_visa")
    assert first == again
    assert ProviderTransaction.objects.filter(kind="charge", status="succeeded").count() == 1


def test_decline_is_final_and_recorded(provider):
    with pytest.raises(PaymentDeclined):
        charge(provider, "tok_decline")
    assert list(ProviderTransaction.objects.values_list("kind", "status")) == [("charge", "failed")]


def test_flaky_fails_twice_then_succeeds(provider):
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            charge(provider, "tok_flaky")
    assert charge(provider, "tok_flaky").amount == AMOUNT


def test_timeout_charges_but_loses_the_reply_and_the_key_finds_it(provider):
    with pytest.raises(ProviderTimeout):
        charge(provider, "tok_timeout")
    found = provider.find_charge(idempotency_key="k1")
    assert found is not None
    assert found.amount == AMOUNT
    assert charge(provider, "tok_timeout") == found
    assert ProviderTransaction.objects.filter(kind="charge", status="succeeded").count() == 1


def test_down_never_answers(provider):
    for _ in range(6):
        with pytest.raises(ProviderUnavailable):
            charge(provider, "tok_down")
    assert provider.find_charge(idempotency_key="k1") is None


def test_refunds_are_idempotent_and_refund_fails_never_refunds(provider):
    ok = charge(provider, "tok_visa", key="a")
    first = provider.refund(charge_reference=ok.reference, amount=AMOUNT, idempotency_key="ra")
    assert provider.refund(charge_reference=ok.reference, amount=AMOUNT, idempotency_key="ra") == first
    stuck = charge(provider, "tok_refund_fails", key="b")
    for _ in range(3):
        with pytest.raises(RefundFailed):
            provider.refund(charge_reference=stuck.reference, amount=AMOUNT, idempotency_key="rb")
    refunds = ProviderTransaction.objects.filter(kind="refund")
    assert refunds.filter(status="succeeded").count() == 1
    assert refunds.filter(status="failed").count() == 3


def test_the_provider_refuses_what_is_not_a_token(provider):
    with pytest.raises(PaymentDeclined):
        charge(provider, "4242 4242 4242 4242")


def test_a_call_whose_key_is_in_flight_is_answered_key_in_use_until_the_provider_gives_up_on_it(provider):
    # given a charge under key k1 still being processed (another attempt, mid-call)
    SimulatorInFlight.objects.create(service="payments.charge", key="k1", until=timezone.now() + timedelta(minutes=1))

    # then a second call with that key is "key in use", and charges nothing
    with pytest.raises(KeyInUse):
        charge(provider, "tok_visa")
    assert not ProviderTransaction.objects.exists()
    # and another key is not held up by it
    assert charge(provider, "tok_visa", key="k2").amount == AMOUNT

    # when the provider has given up on the first call (its own timeout passed)
    SimulatorInFlight.objects.filter(key="k1").update(until=timezone.now() - timedelta(seconds=1))

    # then the key is free again: the call charges once, and lets go of the key when it answers
    assert charge(provider, "tok_visa").amount == AMOUNT
    assert ProviderTransaction.objects.filter(idempotency_key="k1", status="succeeded").count() == 1
    assert not SimulatorInFlight.objects.exists()
