"""The order saga, declared once: the one place that knows the order of the steps.

    reserve every line ─► screen (a person may review) ─► charge ─► ship (completed)
    release stock     ◄───────────────────────────────── refund ◄─ cancel shipment (in reverse)

Both coordination modes follow from this list (``sagas/plan.py`` says what is derived):
orchestrated, it is the canvas of commands (``orders/saga.py``); choreographed, each
participant hears the event of the step before it. A step's ``advances_to`` is the status
customers see once it is done (a step may have none); which step's turn it is, the step
rows say, in both modes.
"""

from orders.models import Reason, Status
from sagas.plan import SagaPlan, Step, Undo, declare

ORDER_SAGA = declare(
    SagaPlan(
        owner="orders",
        starts_with="order.placed",
        resumed_by="order.redriven",
        turned_back_by="order.compensating",
        finish_task="orders.finish_compensation",
        steps=(
            # Run once per line (``reserve_stock:<sku>``); the last line reserved moves the order on.
            Step(
                "reserve_stock",
                service="inventory",
                succeeded="stock.reserved",
                refused="stock.refused",
                failed="stock.refused",
                undo=Undo("release_stock", announces="stock.released"),
                advances_to=Status.RESERVED,
                refused_as=Reason.OUT_OF_STOCK,
                gives_up_as=Reason.OUT_OF_STOCK,
                local=True,
                per_line=True,
            ),
            # The seed's "the order is validated": screened, and held for a person when in doubt.
            Step(
                "screen_order",
                service="risk",
                succeeded="risk.approved",
                refused="risk.rejected",
                held_as=Status.IN_REVIEW,
                refused_as=Reason.RISK_REJECTED,
                gives_up_as=Reason.RISK_REJECTED,
            ),
            Step(
                "charge_payment",
                service="payments",
                succeeded="payment.charged",
                refused="payment.declined",
                failed="payment.failed",
                undo=Undo("refund_payment", announces="payment.refunded"),
                advances_to=Status.PAID,
                refused_as=Reason.PAYMENT_DECLINED,
                gives_up_as=Reason.PAYMENT_FAILED,
            ),
            # A shipment handed to the carrier completes the order (contract: ``completed``).
            Step(
                "create_shipment",
                service="shipping",
                succeeded="shipment.created",
                refused="shipment.rejected",
                failed="shipment.rejected",
                undo=Undo("cancel_shipment", announces="shipment.cancelled"),
                advances_to=Status.COMPLETED,
                refused_as=Reason.SHIPPING_FAILED,
                gives_up_as=Reason.SHIPPING_FAILED,
            ),
        ),
    )
)

STEPS = {step.name: step for step in ORDER_SAGA.steps}
# The compensations in the order the orchestrator runs them: the reverse of the steps.
COMPENSATIONS = ORDER_SAGA.compensations


def _ranks() -> dict[str, float]:
    """How far along the forward path each status is: a step's ``advances_to`` one further
    than the step before's, a status held for a person's decision half a step before its own."""
    ranks: dict[str, float] = {Status.PENDING: 0}
    reached = 0.0
    for step in ORDER_SAGA.steps:
        if step.held_as:
            ranks[step.held_as] = reached + 0.5
        if step.advances_to:
            reached += 1
            ranks[step.advances_to] = reached
    return ranks


# Every status an order goes through forward, ranked; the last one is where the saga ends.
FORWARD_RANK = _ranks()
FORWARD_PATH = tuple(s for s in sorted(FORWARD_RANK, key=FORWARD_RANK.__getitem__))
HELD_STATUSES = frozenset(step.held_as for step in ORDER_SAGA.steps if step.held_as)
