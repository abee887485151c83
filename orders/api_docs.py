"""What the order API's schema says beyond its serializers: descriptions, headers and examples.

The examples use the demo catalog of ``manage.py seed_demo`` (``MUG-001`` at 12.50, ``TEE-002`` at
24.00), so a request tried from /api/docs/ on ``make run`` works as shown.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter

from orders.models import Reason, Status
from orders.plan import ORDER_SAGA

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "Optional, 1..255 characters, scoped to the caller and remembered 24 hours. A replay with the "
        "same body answers the first answer again (with `Idempotent-Replayed: true`) and creates "
        "nothing; the same key with another body is a `422`; a replay while the first request is "
        "still being processed is a `409`. A refused request (`400`) frees its key. A request still "
        "unanswered after a minute may be taken over by its replay: then the slower of the two creates "
        "nothing and answers with the other's answer (or a `409` while that one runs), so a key never "
        "places two orders."
    ),
    examples=[OpenApiExample("key", value="checkout-2f6c1d0e")],
)
LOCATION = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=[201],
    required=True,
    description="The order's URL: `GET` it to follow the order until its status is terminal.",
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[201],
    enum=["true"],
    description="`true` when this answer is the replay of an earlier request with the same `Idempotency-Key`.",
)

_TERMINAL = ", ".join(f"`{status}`" for status in (Status.COMPLETED, Status.CANCELLED, Status.NEEDS_ATTENTION))

CREATE_DESCRIPTION = f"""Place an order. Prices come from the catalog: `total`, `status`, `user` or a `price`
in the body are ignored. An order whose total is above the shop's maximum (`ORDER_MAX_TOTAL`,
1,000,000.00 unless the shop sets another) is a `400` naming `items`, and nothing is created; so
is a `shipping_address.postal_code` that is not one of its `country`'s (the test values pass in any).

The answer is `201` with the order, still `pending`, and its URL in `Location`: the saga (reserve
stock, charge, ship) runs after the answer. To follow the order, `GET` that URL every second or
so until its `status` is terminal ({_TERMINAL}).

The simulated providers behave by `payment_token` and `shipping_address.postal_code`; see the
test values in this API's introduction (`tok_visa` succeeds, `tok_decline` is declined, postal
code `00000` is rejected by the carrier, …).

Send an `Idempotency-Key` to retry safely after a network error: the retry gets the first
answer and no second order is created.

`coordination` (optional) picks how the saga runs: `orchestration` (a central controller
commands each service in turn) or `choreography` (each service reacts to the others' events);
by default the shop's setting. Statuses, test values and outcomes are the same in both; the
order records its mode, and its journal shows who did what."""

RETRIEVE_DESCRIPTION = f"""One of the caller's orders (staff: any order). Another customer's order is a `404`.

Poll this while the saga runs: `status` moves `pending` → `reserved` → `paid` → `completed`, or to
`compensating` → `cancelled` (with a `cancellation_reason`) or `needs_attention`. It is final once
terminal ({_TERMINAL}); `steps` shows each step's progress, attempts and last error."""

LIST_DESCRIPTION = "The caller's orders (staff: every order), newest first, paginated; `?status=` filters."

CANCEL_DESCRIPTION = f"""Cancel an order: the saga stops and undoes what it did (stock released, payment
refunded, shipment cancelled). The answer is `202` with the order, now `compensating`; poll it until
it is `cancelled` with reason `{Reason.CUSTOMER_REQUEST}`. Cancelling an order already being cancelled
changes nothing. A `completed` order, or one that needs staff (`needs_attention`), is a `409`."""

JOURNAL_DESCRIPTION = """Everything that happened to one of the caller's orders (staff: any order), oldest
first: each status change, each command the orchestrator sent (`payments.charge_payment`), each event a
service announced (`payment.charged`), each retry, compensation, staff action and sweeper re-drive,
numbered by `seq` from 1. `service` says who acted: `orders`, `inventory`, `payments`, `shipping`,
`notifications`, `staff` or `sweeper`. In an orchestrated order (`coordination`) the `orders`
service sends `command`s; in a choreographed one each service announces `event`s to the others.

The whole journal in one answer: an order's journal is short, so this list is not paginated.
Staff notes are for staff: a customer's journal leaves them out. Another customer's order is a `404`."""

EXAMPLE_ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "line2": "",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}

CREATE_EXAMPLES = [
    OpenApiExample(
        "Two mugs and a tee, paid with a test card",
        value={
            "items": [{"sku": "MUG-001", "quantity": 2}, {"sku": "TEE-002", "quantity": 1}],
            "shipping_address": EXAMPLE_ADDRESS,
            "payment_token": "tok_visa",
        },
        request_only=True,
    ),
    OpenApiExample(
        "A declined card (ends cancelled / payment_declined)",
        value={
            "items": [{"sku": "NTB-005", "quantity": 1}],
            "shipping_address": EXAMPLE_ADDRESS,
            "payment_token": "tok_decline",
        },
        request_only=True,
    ),
]


def _step(name: str, status: str, finished: bool) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "attempts": 1 if finished else 0,
        "started_at": "2026-11-26T09:30:00.120000Z" if finished else None,
        "finished_at": "2026-11-26T09:30:00.180000Z" if finished else None,
        "error": "",
    }


def _order(status: str, *, done: bool) -> dict[str, Any]:
    step_status = "succeeded" if done else "pending"
    return {
        "id": "0b9c6a9e-5f0e-4c43-9a1e-3f1f6f8f2d11",
        "status": status,
        "cancellation_reason": None,
        "items": [
            {"sku": "MUG-001", "name": "Enamel camp mug", "quantity": 2, "unit_price": "12.50", "line_total": "25.00"},
            {
                "sku": "TEE-002",
                "name": "Organic cotton tee",
                "quantity": 1,
                "unit_price": "24.00",
                "line_total": "24.00",
            },
        ],
        "total": "49.00",
        "currency": "USD",
        "shipping_address": EXAMPLE_ADDRESS,
        "payment": {"status": "succeeded", "amount": "49.00", "refunded_amount": "0.00"} if done else None,
        "shipment": {"status": "created", "carrier": "SimPost", "tracking_number": "SP004815162342"} if done else None,
        "steps": [_step(name, step_status, done) for name in ORDER_SAGA.step_names(["MUG-001", "TEE-002"])],
        "created_at": "2026-11-26T09:30:00.100000Z",
        "updated_at": "2026-11-26T09:30:00.200000Z" if done else "2026-11-26T09:30:00.100000Z",
    }


PLACED_EXAMPLE = OpenApiExample("Placed (pending)", value=_order("pending", done=False), response_only=True)
COMPLETED_EXAMPLE = OpenApiExample("Completed", value=_order("completed", done=True), response_only=True)
