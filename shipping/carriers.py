"""The carrier interface, and a simulated carrier that behaves like a remote one.

A real carrier API replaces ``SimulatedCarrier`` behind the same interface: set
``SHIPPING_CARRIER`` to its dotted path.
"""

import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import IntegrityError
from django.utils.module_loading import import_string

from core.remote import RequestInFlight
from core.simulation import may_conflict, simulated_call, simulated_lookup, simulator_attempt
from shipping.models import CarrierShipment
from telemetry.context import operation


class CarrierError(Exception):
    """Anything the carrier answers that is not a success."""


class AddressRejected(CarrierError):
    """The carrier will not ship to this address. Final."""


class CarrierUnavailable(CarrierError):
    """The carrier could not be reached or failed; nothing happened. Worth retrying."""


class KeyInUse(CarrierError, RequestInFlight):
    """A request with this idempotency key is still in flight: ask again later."""


@dataclass(frozen=True)
class CarrierReceipt:
    carrier: str
    tracking_number: str
    live: bool = True  # False once cancelled at the carrier


class Carrier(Protocol):
    name: str

    def create_shipment(self, *, address: dict[str, Any], idempotency_key: str) -> CarrierReceipt: ...

    def find_shipment(self, *, idempotency_key: str) -> CarrierReceipt | None:
        """The shipment made under ``idempotency_key`` (``live`` until it is cancelled), or
        ``None``; raises ``KeyInUse`` while a request with that key is still in flight."""
        ...

    def cancel_shipment(self, *, tracking_number: str) -> None: ...


@cache
def get_carrier() -> Carrier:
    carrier: Carrier = import_string(settings.SHIPPING_CARRIER)()
    return carrier


# The simulated carrier's test postal codes (contract §4), valid in every country (orders.addresses).
REJECTED_POSTAL_CODE = "00000"
FLAKY_POSTAL_CODE = "99999"
SLOW_POSTAL_CODE = "88888"
TEST_POSTAL_CODES = (REJECTED_POSTAL_CODE, FLAKY_POSTAL_CODE, SLOW_POSTAL_CODE)


class SimulatedCarrier:
    """Test postal codes (see docs/providers.md): ``00000`` rejected; ``99999`` unavailable twice, then
    accepted; ``88888`` takes ``SIMULATED_SLOW_SECONDS`` to answer. A request whose key is in
    flight gets ``KeyInUse``."""

    name = "SimPost"
    service = "shipping.create"

    def create_shipment(self, *, address: dict[str, Any], idempotency_key: str) -> CarrierReceipt:
        postal_code = str(address.get("postal_code", ""))
        with simulated_call(
            service=self.service, key=idempotency_key, slow=postal_code == SLOW_POSTAL_CODE, in_use=KeyInUse
        ):
            return self._create_shipment(postal_code=postal_code, idempotency_key=idempotency_key)

    def _create_shipment(self, *, postal_code: str, idempotency_key: str) -> CarrierReceipt:
        # Only the test value whose behaviour depends on the attempt has its calls counted.
        attempt = (
            simulator_attempt(service="shipping.create", key=idempotency_key) if postal_code == FLAKY_POSTAL_CODE else 1
        )
        if postal_code == REJECTED_POSTAL_CODE:
            raise AddressRejected(f"the carrier does not deliver to postal code {postal_code}")
        if postal_code == FLAKY_POSTAL_CODE and attempt <= 2:
            raise CarrierUnavailable(f"carrier unavailable (attempt {attempt})")
        try:
            with may_conflict():
                shipment = CarrierShipment.objects.create(
                    idempotency_key=idempotency_key,
                    tracking_number=f"SP{secrets.randbelow(10**12):012d}",
                    postal_code=postal_code,
                )
        except IntegrityError:  # created under this key already: same key, same answer
            shipment = CarrierShipment.objects.get(idempotency_key=idempotency_key)
        return CarrierReceipt(carrier=self.name, tracking_number=shipment.tracking_number)

    def find_shipment(self, *, idempotency_key: str) -> CarrierReceipt | None:
        with operation("call shipping.find", provider="shipping.find", idempotency_key=idempotency_key):
            shipments = CarrierShipment.objects.filter(idempotency_key=idempotency_key)
            found = simulated_lookup(
                shipments.values_list("tracking_number", "status"),
                service=self.service,
                key=idempotency_key,
                in_use=KeyInUse,
            )
            if found is None:
                return None
            tracking_number, status = found
            return CarrierReceipt(
                carrier=self.name, tracking_number=tracking_number, live=status != CarrierShipment.Status.CANCELLED
            )

    def cancel_shipment(self, *, tracking_number: str) -> None:
        with operation("call shipping.cancel", provider="shipping.cancel", tracking_number=tracking_number):
            CarrierShipment.objects.filter(tracking_number=tracking_number).update(
                status=CarrierShipment.Status.CANCELLED
            )
