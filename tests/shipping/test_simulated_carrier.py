import pytest

from shipping.carriers import AddressRejected, CarrierUnavailable, SimulatedCarrier
from shipping.models import CarrierShipment


@pytest.fixture
def carrier(db):
    return SimulatedCarrier()


def test_a_shipment_with_the_same_key_is_created_once(carrier):
    first = carrier.create_shipment(address={"postal_code": "12345"}, idempotency_key="s1")
    assert carrier.create_shipment(address={"postal_code": "12345"}, idempotency_key="s1") == first
    assert first.tracking_number.startswith("SP")
    assert CarrierShipment.objects.count() == 1


def test_00000_is_rejected_and_99999_fails_twice(carrier):
    with pytest.raises(AddressRejected):
        carrier.create_shipment(address={"postal_code": "00000"}, idempotency_key="s2")
    for _ in range(2):
        with pytest.raises(CarrierUnavailable):
            carrier.create_shipment(address={"postal_code": "99999"}, idempotency_key="s3")
    assert carrier.create_shipment(address={"postal_code": "99999"}, idempotency_key="s3").tracking_number


def test_cancel_is_idempotent(carrier):
    receipt = carrier.create_shipment(address={"postal_code": "12345"}, idempotency_key="s4")
    carrier.cancel_shipment(tracking_number=receipt.tracking_number)
    carrier.cancel_shipment(tracking_number=receipt.tracking_number)
    assert CarrierShipment.objects.get().status == "cancelled"
