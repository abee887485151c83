"""Stripe behind the shop's ``PaymentProvider`` interface (``PAYMENT_PROVIDER=stripe``, docs/stripe.md).

One PaymentIntent per order, never two successes: the intent is created (its id written on
the order's ``Payment`` before anything else happens to it) and confirmed as two calls, each
with an idempotency key derived from the order. Whoever comes next (a retry, a copy of the
message, a worker taking over after a lease ran out) reads the recorded id and carries on with
that intent; only the recorded intent is ever confirmed. Two workers that both create one (a
server that ignores idempotency keys, as localstripe does) race to record theirs: the first
id written wins, the loser cancels its own, which was never confirmed. So at most one intent
per order can succeed, whatever the server does with the keys.

The SDK never retries (``max_network_retries=0``): the saga owns retrying, with its fences and
budgets. Errors are mapped by meaning (``_mapped``).

Each intent and refund carries the shop's idempotency key in its metadata
(``metadata.idempotency_key``), so that the ledger read back from Stripe names it, as the
simulated provider's does. When the order turns back, its intent is cancelled while it can
still be confirmed (``cancel_unconfirmed``): nothing is left that a late attempt could confirm.
"""

import contextlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import stripe
from django.conf import settings

from core.remote import remote_call_done
from payments.models import Payment
from payments.providers import (
    Charge,
    KeyInUse,
    LedgerEntry,
    PaymentDeclined,
    PaymentError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RefundFailed,
)
from telemetry.context import annotate, operation

logger = logging.getLogger(__name__)

T = TypeVar("T")

# ISO 4217 currencies Stripe counts in whole units (its "zero-decimal currencies").
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)
SECRET = re.compile(r"\b(sk|rk|whsec)_[A-Za-z0-9_*]+")
DASHBOARD = "https://dashboard.stripe.com/test/payments/"
# What an intent may be while it can still be confirmed (and so take money) later: Stripe lets
# these be cancelled.
CANCELLABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"})


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's smallest unit, as Stripe counts it; refuses a fraction of it."""
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    units = amount.scaleb(exponent)
    if units != units.to_integral_value():
        raise ValueError(f"{amount} {currency} is not a whole number of its smallest unit")
    return int(units)


def major_units(units: int, currency: str) -> Decimal:
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    return Decimal(units).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def dashboard_url(intent_id: str) -> str:
    """The intent in Stripe's dashboard (test mode: the shop never links to live payments)."""
    return f"{DASHBOARD}{intent_id}" if intent_id.startswith("pi_") else ""


def redacted(text: str) -> str:
    """A message fit for the journal and the logs: no key, even a masked one's prefix."""
    return SECRET.sub(lambda m: f"{m.group(1)}_[redacted]", text)


def _mapped(exc: stripe.StripeError, *, call: str, write: bool) -> Exception:
    """What a Stripe error means to the saga.

    A card error is the customer's bank saying no: final. A timeout, a connection error, a 429
    or a 5xx is transient, and on a write it may have happened (``ProviderTimeout``: the next
    attempt finds out by the recorded intent). ``idempotency_key_in_use`` is "unknown yet".
    Anything else Stripe refuses (a bad key, a bad request) is a bug in the shop or its
    settings: retrying cannot help, so the order is parked for staff (``ProviderRejected``).
    """
    request = exc.request_id or ""
    where = f"{call}" + (f", request {request}" if request else "")
    message = redacted(exc.user_message or str(exc))
    # The SDK leaves ``code`` unset on some statuses (a 409 is a plain ``APIError``): the body has it.
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    code = exc.code or (body.get("error") or {}).get("code")
    if code == "idempotency_key_in_use":
        return KeyInUse(f"Stripe is still working on an earlier {call} ({where})")
    if isinstance(exc, stripe.CardError):
        return PaymentDeclined(f"card declined: {exc.code or 'declined'} ({where})")
    if isinstance(exc, stripe.InvalidRequestError) and (
        (exc.code == "resource_missing" and exc.param == "payment_method")
        or (call == "payment_intents.create" and exc.http_status == 404)  # all it names is the token
    ):
        return PaymentDeclined(f"the payment method is not known to Stripe ({where})")
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        isinstance(exc, stripe.APIError) and not isinstance(exc, stripe.IdempotencyError)
    ):
        transient = ProviderTimeout if write and not isinstance(exc, stripe.RateLimitError) else ProviderUnavailable
        return transient(f"Stripe did not answer {call}: {type(exc).__name__} ({where})")
    return ProviderRejected(f"Stripe refused {call}: {type(exc).__name__}: {message} ({where})", request_id=request)


class StripePaymentProvider:
    """The shop's payment provider on Stripe's PaymentIntents (module docstring)."""

    service = "payments.stripe"

    def __init__(self) -> None:
        if not settings.STRIPE_API_KEY:
            raise ProviderRejected("PAYMENT_PROVIDER is stripe but STRIPE_API_KEY is not set")
        timeout = (settings.STRIPE_CONNECT_TIMEOUT_SECONDS, settings.STRIPE_TIMEOUT_SECONDS)
        self.client = stripe.StripeClient(
            settings.STRIPE_API_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # --- the interface ---------------------------------------------------------------------

    def charge(self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, order_ref: str) -> Charge:
        intent = self._intent(order_ref)
        if intent is None:
            intent = self._create(
                amount=amount, currency=currency, token=token, idempotency_key=idempotency_key, order_ref=order_ref
            )
        if intent.status == "requires_confirmation":
            intent = self._confirm(intent.id, idempotency_key=idempotency_key)
        return self._outcome(intent, amount=amount, currency=currency)

    def find_charge(self, *, idempotency_key: str, order_ref: str = "") -> Charge | None:
        intent = self._intent(order_ref)
        if intent is None:
            return None
        if intent.status == "processing":
            raise KeyInUse(f"Stripe is still processing {intent.id}")
        return self._charge_of(intent) if intent.status == "succeeded" else None

    def refund(self, *, charge_reference: str, amount: Decimal, idempotency_key: str) -> str:
        done = [r for r in self._refunds(charge_reference) if r.status in ("succeeded", "pending")]
        if done:
            return str(done[0].id)  # compensation runs again: the refund exists, once
        intent = self._retrieve(charge_reference)
        params: dict[str, Any] = {
            "payment_intent": charge_reference,
            "amount": minor_units(amount, intent.currency),
            "metadata": {"order_id": _metadata(intent, "order_id"), "idempotency_key": idempotency_key},
        }
        try:
            refund = self._call(
                "refunds.create",
                lambda: self.client.v1.refunds.create(params, {"idempotency_key": idempotency_key}),  # type: ignore[arg-type]
                write=True,
            )
        except ProviderRejected:
            # Refunded meanwhile by another run (a server without idempotency keys refuses the
            # second refund as more than the charge): the ledger decides.
            again = [r for r in self._refunds(charge_reference) if r.status in ("succeeded", "pending")]
            if again:
                return str(again[0].id)
            raise
        if refund.status == "failed":
            raise RefundFailed(f"Stripe could not refund {charge_reference} ({refund.id})")
        return str(refund.id)

    def transactions(self, *, order_ref: str) -> list[LedgerEntry]:
        """The order's intent as Stripe holds it (a charge, ``succeeded`` or ``failed``) and
        its refunds. Raises ``KeyInUse`` while Stripe is still processing the intent."""
        intent = self._intent(order_ref)
        if intent is None:
            return []
        if intent.status == "processing":
            raise KeyInUse(f"Stripe is still processing {intent.id}")
        if intent.status != "succeeded" and intent.last_payment_error is None:
            return []  # never confirmed, or confirmed by nobody yet: no money moved
        succeeded = intent.status == "succeeded"
        entries = [
            LedgerEntry(
                kind="charge",
                amount=major_units(_received(intent) if succeeded else intent.amount, intent.currency),
                status="succeeded" if succeeded else "failed",
                reference=intent.id,
                idempotency_key=_metadata(intent, "idempotency_key"),
                created_at=_moment(intent.created),
            )
        ]
        if succeeded:
            entries += [
                LedgerEntry(
                    kind="refund",
                    amount=major_units(refund.amount, refund.currency),
                    status="succeeded" if refund.status in ("succeeded", "pending") else "failed",
                    reference=refund.id,
                    idempotency_key=_metadata(refund, "idempotency_key"),
                    created_at=_moment(refund.created),
                    charge_reference=intent.id,
                )
                for refund in self._refunds(intent.id)
            ]
        return entries

    def cancel_unconfirmed(self, *, order_ref: str, idempotency_key: str) -> None:
        """Cancel the order's intent while it can still be confirmed (created but never
        confirmed, or declined and waiting for another payment method), so that no attempt
        outliving its lease confirms it later. Idempotent: a cancelled intent stays so. One
        that succeeded meanwhile (a late confirm got there first; Stripe refuses to cancel it)
        or is processing is left to the ledger, which the refund reads next."""
        intent = self._intent(order_ref)
        if intent is None or intent.status not in CANCELLABLE:
            return
        try:
            self._call(
                "payment_intents.cancel",
                lambda: self.client.v1.payment_intents.cancel(
                    intent.id, {}, {"idempotency_key": f"{idempotency_key}:cancel"}
                ),
                write=True,
            )
        except ProviderRejected:
            if self._retrieve(intent.id).status in CANCELLABLE:
                raise

    # --- the steps of a charge --------------------------------------------------------------

    def _intent(self, order_ref: str) -> stripe.PaymentIntent | None:
        """The intent recorded for the order, as Stripe holds it now; ``None`` if none was."""
        recorded = intent_recorded(order_ref)
        if not recorded:
            return None
        return self._retrieve(recorded)

    def _retrieve(self, intent_id: str) -> stripe.PaymentIntent:
        return self._call("payment_intents.retrieve", lambda: self.client.v1.payment_intents.retrieve(intent_id))

    def _create(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str, order_ref: str
    ) -> stripe.PaymentIntent:
        params: dict[str, Any] = {
            "amount": minor_units(amount, currency),
            "currency": currency.lower(),
            "payment_method": token,
            "metadata": {"order_id": order_ref, "idempotency_key": idempotency_key},
        }
        created = self._call(
            "payment_intents.create",
            lambda: self.client.v1.payment_intents.create(params, {"idempotency_key": f"{idempotency_key}:create"}),  # type: ignore[arg-type]
            write=True,
        )
        recorded = intent_record(order_ref, created.id)
        if recorded == created.id:
            return created
        # Another attempt recorded its intent first: carry on with that one, and cancel ours,
        # which nobody will confirm (best effort: unconfirmed, it can never take money anyway).
        logger.info("Order %s: intent %s lost to %s, cancelling it", order_ref, created.id, recorded)
        with contextlib.suppress(ProviderUnavailable, ProviderRejected):
            self._call("payment_intents.cancel", lambda: self.client.v1.payment_intents.cancel(created.id), write=True)
        intent = self._intent(order_ref)
        assert intent is not None
        return intent

    def _confirm(self, intent_id: str, *, idempotency_key: str) -> stripe.PaymentIntent:
        try:
            return self._call(
                "payment_intents.confirm",
                lambda: self.client.v1.payment_intents.confirm(
                    intent_id,
                    {},
                    {"idempotency_key": f"{idempotency_key}:confirm"},
                ),
                write=True,
            )
        except ProviderRejected:
            # Confirmed meanwhile by another attempt (Stripe refuses a second confirmation as an
            # unexpected state): what the intent is now says what happened.
            intent = self._retrieve(intent_id)
            if intent.status == "requires_confirmation":
                raise
            return intent

    def _outcome(self, intent: stripe.PaymentIntent, *, amount: Decimal, currency: str) -> Charge:
        if intent.status == "succeeded":
            charge = self._charge_of(intent)
            if charge.amount != amount or charge.currency.upper() != currency.upper():
                raise ProviderRejected(
                    f"Stripe holds {charge.amount} {charge.currency} on {intent.id} "
                    f"for a payment of {amount} {currency}"
                )
            return charge
        if intent.status == "processing":
            raise KeyInUse(f"Stripe is still processing {intent.id}")
        if intent.status in ("requires_payment_method", "requires_action"):
            error = intent.last_payment_error
            code = (error.code if error is not None else None) or intent.status
            raise PaymentDeclined(f"card declined: {code} ({intent.id})")
        if intent.status == "canceled":
            # Only the order's compensation cancels its intent: this attempt outlived the saga
            # going forward, and its failure is nobody's to record (no refusal: no status).
            raise PaymentError(f"the order's PaymentIntent {intent.id} was cancelled: the order turned back")
        raise ProviderRejected(f"the order's PaymentIntent {intent.id} is {intent.status}")

    @staticmethod
    def _charge_of(intent: stripe.PaymentIntent) -> Charge:
        return Charge(
            reference=intent.id,
            amount=major_units(_received(intent), intent.currency),
            currency=intent.currency.upper(),
        )

    def _refunds(self, intent_id: str) -> list[stripe.Refund]:
        page = self._call(
            "refunds.list", lambda: self.client.v1.refunds.list({"payment_intent": intent_id, "limit": 100})
        )
        return list(page.data)

    def _call(self, call: str, request: Callable[[], T], *, write: bool = False) -> T:
        """One call to Stripe in its own span, logged with Stripe's request id, errors mapped."""
        with operation(f"call stripe.{call}", provider="payments.stripe"):
            try:
                answer = request()
            except stripe.StripeError as exc:
                mapped = _mapped(exc, call=call, write=write)
                annotate(request_id=exc.request_id or "")
                if isinstance(mapped, ProviderRejected):
                    logger.warning("Stripe %s refused: %s", call, mapped.staff_detail)
                else:
                    logger.info("Stripe %s failed: %s", call, mapped)
                raise mapped from None
            request_id = getattr(getattr(answer, "last_response", None), "request_id", None) or ""
            annotate(request_id=request_id)
            logger.info("Stripe %s answered (request %s)", call, request_id or "-")
            if write:
                # For the journal of the step that made the call (ids only: nothing secret).
                what = f"{getattr(answer, 'id', '?')} {getattr(answer, 'status', '')}".strip()
                remote_call_done(f"stripe.{call}", f"{what}, request {request_id or '(none given)'}")
            return answer


def _received(intent: stripe.PaymentIntent) -> int:
    """What a succeeded intent took (localstripe leaves ``amount_received`` out: its amount)."""
    return int(getattr(intent, "amount_received", None) or intent.amount)


def _metadata(obj: Any, key: str) -> str:
    """``obj.metadata[key]``, or ``""`` (an object made without it, or without metadata)."""
    metadata = getattr(obj, "metadata", None)
    return str(metadata[key]) if metadata is not None and key in metadata else ""


def _moment(created: int) -> datetime:
    return datetime.fromtimestamp(created, UTC)


# --- the shop's record of the order's intent (the ``Payment`` row, written before confirming) ---


def intent_recorded(order_ref: str) -> str:
    if not order_ref:
        return ""
    reference = Payment.objects.filter(order_id=order_ref).values_list("provider_reference", flat=True).first()
    # Only an intent's id: a payment made before the shop moved to Stripe has another provider's.
    return reference if reference and reference.startswith("pi_") else ""


def intent_record(order_ref: str, intent_id: str) -> str:
    """Write ``intent_id`` as the order's intent unless one is recorded: the one recorded now."""
    Payment.objects.filter(order_id=order_ref, provider_reference="").update(provider_reference=intent_id)
    return intent_recorded(order_ref)
