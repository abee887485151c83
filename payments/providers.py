"""The payment provider interface, and a simulated provider that behaves like a remote one.

A real provider replaces ``SimulatedPaymentProvider`` behind the same interface:
``PAYMENT_PROVIDER`` names one (``simulated``, the default, or ``stripe``: docs/stripe.md) or
gives another's dotted path.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError
from django.utils.module_loading import import_string

from core.remote import RequestInFlight
from core.simulation import may_conflict, simulated_call, simulated_lookup, simulator_attempt
from payments.models import ProviderTransaction
from telemetry.context import operation

TOKEN_PATTERN = re.compile(r"^tok_[a-z0-9_]+$")
# What the API and the checkout accept: the simulated provider's tokens, or a Stripe
# PaymentMethod id (``pm_card_visa``); each provider declines what is not its own.
PAYMENT_TOKEN_PATTERN = re.compile(r"^(tok_[a-z0-9_]+|pm_[A-Za-z0-9_]+)$")


class PaymentError(Exception):
    """Anything the provider answers that is not a success."""


class PaymentDeclined(PaymentError):
    """The card was declined. Final: trying again gives the same answer."""


class ProviderUnavailable(PaymentError):
    """The provider could not be reached or failed; nothing happened. Worth retrying."""


class ProviderTimeout(PaymentError):
    """No answer in time: the operation may or may not have happened. Ask by idempotency key."""


class KeyInUse(PaymentError, RequestInFlight):
    """A request with this idempotency key is still in flight: ask again later."""


class RefundFailed(PaymentError):
    """The provider did not refund this time. Worth retrying."""


class ProviderRejected(PaymentError):
    """The provider refused the shop's own request (a bad key, a malformed call): a bug or a
    setting to fix, which no retry mends. The order is parked for staff (``needs_attention``).

    Its message, which the step's row and the customer's page show, says only that;
    ``staff_detail`` (free of secrets) says what the provider answered, for the journal's
    staff-only line and the log."""

    reason = "payment_failed"

    def __init__(self, staff_detail: str, *, request_id: str = "") -> None:
        reference = f" (request {request_id})" if request_id else ""
        super().__init__(f"the payment provider refused the shop's request{reference}; our staff are told")
        self.staff_detail = staff_detail


@dataclass(frozen=True)
class Charge:
    reference: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class LedgerEntry:
    kind: str
    amount: Decimal
    status: str
    reference: str
    idempotency_key: str
    created_at: datetime
    charge_reference: str = ""  # a refund's: the charge it gives back


class PaymentProvider(Protocol):
    def charge(self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, order_ref: str) -> Charge: ...

    def find_charge(self, *, idempotency_key: str, order_ref: str = "") -> Charge | None:
        """The charge made under ``idempotency_key`` (for the order ``order_ref``), or ``None``;
        raises ``KeyInUse`` while a request with that key is still in flight (its outcome is
        unknown yet)."""
        ...

    def refund(self, *, charge_reference: str, amount: Decimal, idempotency_key: str) -> str: ...

    def transactions(self, *, order_ref: str) -> list[LedgerEntry]:
        """Every charge and refund the provider holds for the order (the merchant's ``order_ref``
        metadata), whatever the shop recorded: what refunds and the reconciler go by."""
        ...

    def cancel_unconfirmed(self, *, order_ref: str, idempotency_key: str) -> None:
        """The order turned back: cancel whatever the provider holds for it that could still
        be confirmed later (a charge begun but not finished), so nothing can take money once
        compensation has looked. Idempotent; a charge that succeeded meanwhile is left for the
        refund that reads the ledger next."""
        ...


def money(value: object) -> Decimal:
    """An amount as the database answered it (SQLite may give a float), in cents."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


PROVIDERS = {
    "simulated": "payments.providers.SimulatedPaymentProvider",
    "stripe": "payments.stripe_provider.StripePaymentProvider",
}


def payment_provider_path() -> str:
    """``PAYMENT_PROVIDER`` as a dotted path: a known name (``simulated``, ``stripe``) or one."""
    name: str = settings.PAYMENT_PROVIDER
    return PROVIDERS.get(name, name)


@cache
def get_payment_provider() -> PaymentProvider:
    provider: PaymentProvider = import_string(payment_provider_path())()
    return provider


# The test tokens whose behaviour depends on the attempt: only their calls are counted.
ATTEMPT_TOKENS = frozenset({"tok_flaky", "tok_timeout", "tok_down"})


class SimulatedPaymentProvider:
    """Test tokens, like a provider's test cards (see README):

    ``tok_decline`` declined; ``tok_flaky`` unavailable on the first 2 attempts; ``tok_timeout``
    charges on the first attempt but the reply is lost; ``tok_down`` always unavailable;
    ``tok_refund_fails`` charges but never refunds; ``tok_slow`` takes ``SIMULATED_SLOW_SECONDS``
    to answer; any other ``tok_…`` succeeds. A request whose key is in flight gets ``KeyInUse``.
    """

    service = "payments.charge"

    def charge(self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, order_ref: str) -> Charge:
        with simulated_call(service=self.service, key=idempotency_key, slow=token == "tok_slow", in_use=KeyInUse):
            return self._charge(
                amount=amount, currency=currency, token=token, idempotency_key=idempotency_key, order_ref=order_ref
            )

    def _charge(self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, order_ref: str) -> Charge:
        attempt = simulator_attempt(service="payments.charge", key=idempotency_key) if token in ATTEMPT_TOKENS else 1
        if token == "tok_down" or (token == "tok_flaky" and attempt <= 2):
            raise ProviderUnavailable(f"provider unavailable (attempt {attempt})")
        if token == "tok_decline" or not TOKEN_PATTERN.match(token):
            self._record(ProviderTransaction.Kind.CHARGE, "failed", amount, currency, token, idempotency_key, order_ref)
            raise PaymentDeclined("card declined")
        try:
            entry = self._record(
                ProviderTransaction.Kind.CHARGE, "succeeded", amount, currency, token, idempotency_key, order_ref
            )
        except IntegrityError:  # charged under this key already: same key, same answer
            existing = ProviderTransaction.objects.get(
                kind=ProviderTransaction.Kind.CHARGE, status="succeeded", idempotency_key=idempotency_key
            )
            return Charge(reference=existing.reference, amount=existing.amount, currency=existing.currency)
        if token == "tok_timeout" and attempt == 1:
            raise ProviderTimeout("the charge went through but the reply was lost")
        return Charge(reference=entry.reference, amount=entry.amount, currency=entry.currency)

    def find_charge(self, *, idempotency_key: str, order_ref: str = "") -> Charge | None:
        with operation("call payments.find_charge", provider="payments.find_charge", idempotency_key=idempotency_key):
            succeeded = ProviderTransaction.objects.filter(
                kind=ProviderTransaction.Kind.CHARGE, status="succeeded", idempotency_key=idempotency_key
            )
            found = simulated_lookup(
                succeeded.values_list("reference", "amount", "currency"),
                service=self.service,
                key=idempotency_key,
                in_use=KeyInUse,
            )
            if found is None:
                return None
            reference, amount, currency = found
            return Charge(reference=reference, amount=money(amount), currency=currency)

    def refund(self, *, charge_reference: str, amount: Decimal, idempotency_key: str) -> str:
        with simulated_call(service="payments.refund", key=idempotency_key, slow=False, in_use=KeyInUse):
            return self._refund(charge_reference=charge_reference, amount=amount, idempotency_key=idempotency_key)

    def _refund(self, *, charge_reference: str, amount: Decimal, idempotency_key: str) -> str:
        done = ProviderTransaction.objects.filter(
            kind=ProviderTransaction.Kind.REFUND, status="succeeded", idempotency_key=idempotency_key
        ).first()
        if done is not None:
            return done.reference
        charge = ProviderTransaction.objects.get(reference=charge_reference, kind=ProviderTransaction.Kind.CHARGE)
        if amount > charge.amount:
            raise PaymentDeclined("refund larger than the charge")
        status = "failed" if charge.token == "tok_refund_fails" else "succeeded"
        try:
            entry = self._record(
                ProviderTransaction.Kind.REFUND, status, amount, charge.currency, charge.token, idempotency_key,
                charge.order_ref, charge=charge,
            )  # fmt: skip
        except IntegrityError:
            return ProviderTransaction.objects.get(
                kind=ProviderTransaction.Kind.REFUND, status="succeeded", idempotency_key=idempotency_key
            ).reference
        if status == "failed":
            raise RefundFailed("the provider could not refund this charge")
        return entry.reference

    def cancel_unconfirmed(self, *, order_ref: str, idempotency_key: str) -> None:
        """Nothing to cancel: a simulated charge is one call, done or not."""

    def transactions(self, *, order_ref: str) -> list[LedgerEntry]:
        return [
            LedgerEntry(
                kind=t.kind,
                amount=t.amount,
                status=t.status,
                reference=t.reference,
                idempotency_key=t.idempotency_key,
                created_at=t.created_at,
                charge_reference=t.charge.reference if t.charge is not None else "",
            )
            for t in ProviderTransaction.objects.filter(order_ref=order_ref).select_related("charge")
        ]

    @staticmethod
    def _record(
        kind: str,
        status: str,
        amount: Decimal,
        currency: str,
        token: str,
        idempotency_key: str,
        order_ref: str,
        charge: ProviderTransaction | None = None,
    ) -> ProviderTransaction:
        with may_conflict():
            return ProviderTransaction.objects.create(
                kind=kind,
                status=status,
                amount=amount,
                currency=currency,
                token=token,
                idempotency_key=idempotency_key,
                order_ref=order_ref,
                charge=charge,
                reference=f"{'ch' if kind == 'charge' else 're'}_{secrets.token_hex(12)}",
            )
