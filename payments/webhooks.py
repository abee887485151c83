"""``POST /webhooks/stripe/``: Stripe's events, verified, recorded once, never obeyed blindly.

Only a body whose ``Stripe-Signature`` verifies with ``STRIPE_WEBHOOK_SECRET`` within Stripe's
tolerance is taken (``200``); anything else is ``400`` and changes nothing. A verified event
whose object names an order (``metadata.order_id``) is recorded once per event id (the
``StripeEvent`` inbox) in that order's journal. An event moves no money and no status by
itself: a ``payment_intent.succeeded`` the shop did not expect (the order turned back, another
intent, another amount) is checked against Stripe itself, and what Stripe holds is taken back
by the saga's own rule (``sagas.runtime.step_landed``, as the reconciler does).
"""

import logging
import uuid
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.ratelimits import rate_limited
from payments.models import Payment, StripeEvent
from payments.providers import PaymentError
from payments.selectors import money_held
from payments.stripe_provider import minor_units
from sagas.ledger import get_ledger
from sagas.runtime import step_landed

logger = logging.getLogger(__name__)

SERVICE = "payments"
CHARGE_PAYMENT = "charge_payment"


def _refused(why: str) -> HttpResponse:
    return JsonResponse({"error": why}, status=400)


@csrf_exempt
@require_POST
@rate_limited("stripe_webhook")
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > settings.STRIPE_WEBHOOK_MAX_BYTES:
        return _refused("body too large")
    if not settings.STRIPE_WEBHOOK_SECRET:
        return _refused("webhooks are not configured")
    try:
        event = stripe.Webhook.construct_event(
            request.body,
            request.headers.get("Stripe-Signature"),
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
        )
    except (ValueError, stripe.SignatureVerificationError):
        return _refused("signature not verified")
    payload = event.to_dict()
    outcome = stripe_event_receive(
        event_id=str(payload.get("id", "")), event_type=str(payload.get("type", "")), payload=payload
    )
    return JsonResponse({"received": outcome})


def stripe_event_receive(*, event_id: str, event_type: str, payload: dict[str, Any]) -> str:
    """Record a verified event once; act on one the shop did not expect. Returns what became
    of it: ``recorded``, ``duplicate`` (recorded before), or ``ignored`` (names no order of
    the shop)."""
    obj = (payload.get("data") or {}).get("object") or {}
    order_id = _order_id(obj)
    if not event_id or order_id is None:
        return "ignored"
    object_id = str(obj.get("id", ""))
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event_id, type=event_type, order_id=order_id, object_id=object_id)
            saga = get_ledger().lock(str(order_id))
            saga.record(service=SERVICE, kind="event", name=f"stripe.{event_type}", detail=f"{event_id} ({object_id})")
    except IntegrityError:
        return "duplicate"
    except ObjectDoesNotExist:  # names no order of this shop: nothing recorded
        return "ignored"
    if event_type == "payment_intent.succeeded":
        _check_success(str(order_id), object_id, obj)
    return "recorded"


def _order_id(obj: dict[str, Any]) -> uuid.UUID | None:
    metadata = obj.get("metadata") or {}
    try:
        return uuid.UUID(str(metadata.get("order_id", "")))
    except ValueError:
        return None


def _check_success(order_id: str, intent_id: str, obj: dict[str, Any]) -> None:
    """A success the saga did not record is a fact to reconcile, asked of Stripe (never taken
    from the event): money held for an order that turned back is taken back by its compensation
    (``step_landed``, as the reconciler does; an order still going forward carries on as it
    would); an amount that differs, or an intent that is not the order's, is written in the
    journal for staff (and the reconciler flags the order on its next pass)."""
    payment = Payment.objects.filter(order_id=order_id).first()
    amount = obj.get("amount_received") or obj.get("amount")
    recorded = payment is not None and payment.provider_reference == intent_id
    if recorded and payment is not None and payment.status == Payment.Status.SUCCEEDED:
        if amount != minor_units(payment.amount, payment.currency):
            _for_staff(order_id, f"{intent_id} succeeded for {amount} (minor units), the payment is {payment.amount}")
        return  # the success the saga recorded
    try:
        held = money_held(order_id=order_id)
    except PaymentError as exc:
        logger.warning("Stripe's success for order %s could not be checked: %s", order_id, exc)
        return
    if held.net > 0 and step_landed(
        saga_id=order_id,
        step_name=CHARGE_PAYMENT,
        detail=f"Stripe reported {intent_id} succeeded (payment_intent.succeeded); the refund takes it back",
    ):
        logger.warning("Order %s: an unexpected Stripe success is being refunded", order_id)
    elif not recorded:
        _for_staff(order_id, f"{intent_id} succeeded but is not the order's recorded PaymentIntent")


def _for_staff(order_id: str, detail: str) -> None:
    with transaction.atomic():
        get_ledger().lock(order_id).record(service=SERVICE, kind="event", name="stripe.unexpected", detail=detail)
    logger.warning("Order %s: %s", order_id, detail)
