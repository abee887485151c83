"""The screening provider: a remote service that scores an order's risk (Stripe Radar, Signifyd,
Riskified...). Simulated here, behind the interface a real one implements.

Test values (contract §4c), by the shipping address's postal code: ``66666`` is rejected,
``77777`` is held for a person's review; any other is approved at once.
"""

import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from telemetry.context import operation


@dataclass(frozen=True)
class Verdict:
    outcome: str  # approved | rejected | review
    reasons: str = ""


class ScreeningProvider(Protocol):
    def screen(self, *, order_id: str, total: str, address: dict[str, Any]) -> Verdict:
        """Score the order. Idempotent per order: asking again answers the same."""
        ...


REJECTED_POSTAL_CODE = "66666"
REVIEW_POSTAL_CODE = "77777"
TEST_POSTAL_CODES = (REJECTED_POSTAL_CODE, REVIEW_POSTAL_CODE)  # valid in every country (orders.addresses)


class SimulatedScreener:
    def screen(self, *, order_id: str, total: str, address: dict[str, Any]) -> Verdict:
        with operation("call risk", provider="risk"):  # as a real provider's HTTP client would trace it
            time.sleep(settings.SIMULATED_LATENCY_SECONDS)
        postal_code = str(address.get("postal_code", ""))
        if postal_code == REJECTED_POSTAL_CODE:
            return Verdict("rejected", "the address is on the provider's block list")
        if postal_code == REVIEW_POSTAL_CODE:
            return Verdict("review", "the address does not match the payment's country")
        return Verdict("approved")


def get_screening_provider() -> ScreeningProvider:
    provider: ScreeningProvider = import_string(settings.RISK_PROVIDER)()
    return provider
