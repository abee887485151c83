"""The simulators answer "did it happen?" from one statement (issue 34, finding 2).

Read one after the other, a ledger row and an in-flight key can both be missed: a call that
records its row and lets go of its key between the two reads. One statement sees one snapshot.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.models import SimulatorInFlight
from payments.providers import KeyInUse, SimulatedPaymentProvider
from shipping.carriers import KeyInUse as CarrierKeyInUse
from shipping.carriers import SimulatedCarrier

pytestmark = pytest.mark.django_db


def in_flight(service: str, key: str) -> None:
    SimulatorInFlight.objects.create(service=service, key=key, until=timezone.now() + timedelta(seconds=30))


def test_find_charge_is_one_statement_whatever_the_answer():
    provider = SimulatedPaymentProvider()
    with CaptureQueriesContext(connection) as nothing:
        assert provider.find_charge(idempotency_key="k") is None
    in_flight("payments.charge", "k")
    with CaptureQueriesContext(connection) as flying, pytest.raises(KeyInUse):
        provider.find_charge(idempotency_key="k")
    assert (len(nothing), len(flying)) == (1, 1)


def test_a_recorded_charge_is_found_even_while_its_key_is_still_held():
    # given a charge recorded while its request still holds the key (it lets go just after)
    provider = SimulatedPaymentProvider()
    charge = provider.charge(amount=1, currency="USD", token="tok_visa", idempotency_key="k", order_ref="o")
    in_flight("payments.charge", "k")

    # then the charge is the answer, in one statement
    with CaptureQueriesContext(connection) as queries:
        found = provider.find_charge(idempotency_key="k")
    assert found == charge
    assert len(queries) == 1


def test_find_shipment_says_whether_the_parcel_is_live_in_one_statement():
    carrier = SimulatedCarrier()
    receipt = carrier.create_shipment(address={"postal_code": "12345"}, idempotency_key="s")
    carrier.cancel_shipment(tracking_number=receipt.tracking_number)
    with CaptureQueriesContext(connection) as queries:
        found = carrier.find_shipment(idempotency_key="s")
    assert (found.tracking_number, found.live, len(queries)) == (receipt.tracking_number, False, 1)
    in_flight("shipping.create", "t")
    with pytest.raises(CarrierKeyInUse):
        carrier.find_shipment(idempotency_key="t")
