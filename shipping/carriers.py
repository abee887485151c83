"""The carrier interface, and a simulated carrier that behaves like a remote one.

A real carrier API replaces ``SimulatedCarrier`` behind the same interface: set
``SHIPPING_CARRIER`` to its dotted path.
"""

import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string

from core.simulation import simulator_attempt
from shipping.models import CarrierShipment


class CarrierError(Exception):
    """Anything the carrier answers that is not a success."""


class AddressRejected(CarrierError):
    """The carrier will not ship to this address. Final."""


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached or failed; nothing happened. Worth retrying."""


@dataclass(frozen=True)
class CarrierReceipt:
    carrier: str
    tracking_number: str


class Carrier(Protocol):
    name: str

    def create_shipment(self, *, address: dict[str, Any], idempotency_key: str) -> CarrierReceipt: ...

    def find_shipment(self, *, idempotency_key: str) -> CarrierReceipt | None: ...

    def cancel_shipment(self, *, tracking_number: str) -> None: ...


@cache
def get_carrier() -> Carrier:
    carrier: Carrier = import_string(settings.SHIPPING_CARRIER)()
    return carrier


class SimulatedCarrier:
    """Test postal codes (see README): ``00000`` rejected; ``99999`` unavailable twice, then accepted."""

    name = "SimPost"

    def create_shipment(self, *, address: dict[str, Any], idempotency_key: str) -> CarrierReceipt:
        postal_code = str(address.get("postal_code", ""))
        # Only the test value whose behaviour depends on the attempt has its calls counted.
        attempt = simulator_attempt(service="shipping.create", key=idempotency_key) if postal_code == "99999" else 1
        if postal_code == "00000":
            raise AddressRejected(f"the carrier does not deliver to postal code {postal_code}")
        if postal_code == "99999" and attempt <= 2:
            raise CarrierUnavailable(f"carrier unavailable (attempt {attempt})")
        try:
            with transaction.atomic():
                shipment = CarrierShipment.objects.create(
                    idempotency_key=idempotency_key,
                    tracking_number=f"SP{secrets.randbelow(10**12):012d}",
                    postal_code=postal_code,
                )
        except IntegrityError:  # created under this key already: same key, same answer
            found = self.find_shipment(idempotency_key=idempotency_key)
            assert found is not None
            return found
        return CarrierReceipt(carrier=self.name, tracking_number=shipment.tracking_number)

    def find_shipment(self, *, idempotency_key: str) -> CarrierReceipt | None:
        shipment = CarrierShipment.objects.filter(idempotency_key=idempotency_key).first()
        return CarrierReceipt(carrier=self.name, tracking_number=shipment.tracking_number) if shipment else None

    def cancel_shipment(self, *, tracking_number: str) -> None:
        CarrierShipment.objects.filter(tracking_number=tracking_number).update(status=CarrierShipment.Status.CANCELLED)
