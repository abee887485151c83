"""How an order's saga reads on the order page: each step as done, running, failed, compensated…"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import template

from orders import presentation
from orders.models import Coordination
from orders.plan import COMPENSATIONS
from sagas.models import SagaStep

register = template.Library()

_UNDOES = {c.name: c.undoes.name for c in COMPENSATIONS}
_LABELS = {
    "reserve_stock": "Reserve stock",
    "charge_payment": "Charge payment",
    "create_shipment": "Hand to the carrier",
    "cancel_shipment": "Cancel shipment",
    "refund_payment": "Refund payment",
    "release_stock": "Release stock",
}


@dataclass(frozen=True)
class StepRow:
    label: str
    state: str  # waiting | running | retrying | done | failed | compensated | skipped
    compensation: bool
    attempts: int
    started_at: datetime | None
    duration: timedelta | None
    error: str


@register.simple_tag
def saga_rows(steps: Iterable[SagaStep]) -> list[StepRow]:
    steps = list(steps)
    undone = {
        _UNDOES[step.name]
        for step in steps
        if step.kind == SagaStep.Kind.COMPENSATION and step.status == SagaStep.Status.SUCCEEDED
    }
    # Once compensation has begun, forward steps that never started will not run.
    stopped = any(step.kind == SagaStep.Kind.COMPENSATION for step in steps)
    return [_row(step, undone, stopped) for step in steps]


def _row(step: SagaStep, undone: set[str], stopped: bool) -> StepRow:
    base, _, detail = step.name.partition(":")
    label = _LABELS.get(base, base.replace("_", " ").capitalize()) + (f" · {detail}" if detail else "")
    compensation = step.kind == SagaStep.Kind.COMPENSATION
    state = {
        SagaStep.Status.PENDING: "waiting",
        SagaStep.Status.RUNNING: "running",
        SagaStep.Status.WAITING: "waiting",  # between attempts; with an error it reads "retrying"
        SagaStep.Status.SUCCEEDED: "done",
        SagaStep.Status.FAILED: "failed",
        SagaStep.Status.SKIPPED: "skipped",
    }[SagaStep.Status(step.status)]
    if state == "done" and not compensation and base in undone:
        state = "compensated"
    elif state in ("running", "waiting") and step.error:
        state = "retrying"  # an attempt failed and another is scheduled
    elif state == "waiting" and stopped and not compensation:
        state = "skipped"
    duration = step.finished_at - step.started_at if step.started_at and step.finished_at else None
    return StepRow(label, state, compensation, step.attempts, step.started_at, duration, step.error)


# The same, on the customer's page: how the services worked together, without the jargon.
_COORDINATION_FOR_CUSTOMER = {
    Coordination.ORCHESTRATION.value: "The orders service directed each step of this order",
    Coordination.CHOREOGRAPHY.value: "Each service acted on the others' news for this order, with no one directing",
}
# A step's state in the folded timeline, in a customer's words (``data-state`` keeps the code).
_STEP_STATE_WORDS = {
    "waiting": "waiting",
    "running": "in progress",
    "retrying": "trying again",
    "done": "done",
    "failed": "did not work",
    "compensated": "undone",
    "skipped": "not needed",
}


@register.filter
def coordination_for_customer(value: str) -> str:
    """How the order's services worked together, for the customer's folded timeline (contract §7)."""
    return _COORDINATION_FOR_CUSTOMER.get(value, "")


@register.filter
def step_state_words(state: str) -> str:
    return _STEP_STATE_WORDS.get(state, state)


# The order in the customer's words (orders/presentation.py), for the storefront's templates.
register.filter("status_label", presentation.order_status_label)
register.filter("status_tone", presentation.order_status_tone)
register.filter("payment_words", presentation.payment_label)
register.filter("shipment_words", presentation.shipment_label)
register.filter("lines_summary", presentation.order_lines_summary)
register.filter("units", presentation.order_units)
register.filter("cancellation_words", presentation.order_cancellation_words)
register.filter("journal_line", presentation.order_journal_line)


@register.filter
def seconds(value: timedelta | None) -> str:
    if value is None:
        return ""
    total = value.total_seconds()
    return f"{total * 1000:.0f} ms" if total < 1 else f"{total:.1f} s"
