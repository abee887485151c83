"""How an order's saga reads on the order page: each step as done, running, failed, compensated…"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django import template

from orders import journal
from orders.models import Coordination, OrderEvent
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


@register.filter
def service_label(service: str) -> str:
    """Which service acted, as the customer reads it: ``payments`` → ``Payments``."""
    return journal.service_label(service)


_EVENT_WORDS = {
    "order.placed": "announced the order",
    "order.completed": "announced the order completed",
    "order.cancelled": "announced the order cancelled",
    "order.needs_attention": "asked staff to step in",
    "order.compensating": "asked every service to undo its part",
    "order.redriven": "woke the order's services again",
}


@register.filter
def journal_what(event: OrderEvent) -> str:
    """What a journal line says happened, after the name of the service that acted."""
    detail = f" · {event.message}" if event.message else ""
    if event.kind == OrderEvent.Kind.STATUS:
        before = f"{humanize_status(event.from_status)} → " if event.from_status else ""
        return f"{before}{humanize_status(event.to_status)}{detail}"
    if event.kind == OrderEvent.Kind.EVENT:
        return _EVENT_WORDS.get(event.name, f"announced {event.name}") + detail
    if event.kind == OrderEvent.Kind.COMPENSATION:
        label = _LABELS.get(event.name, humanize_status(event.name))
        return f"{label.lower()}: {event.message}" if event.message else label.lower()
    if event.kind == OrderEvent.Kind.COMMAND:
        return f"sent {event.name}{detail}"
    return event.message or humanize_status(event.name)


_COORDINATION = {
    Coordination.ORCHESTRATION.value: "Orchestrated: the orders service directs each step",
    Coordination.CHOREOGRAPHY.value: "Choreographed: each service reacts to the others' events",
}


@register.filter
def coordination_label(value: str) -> str:
    """How the order's saga is coordinated, in a sentence (contract §7)."""
    return _COORDINATION.get(value, value)


@register.filter
def humanize_status(value: str | None) -> str:
    return (value or "").replace("_", " ")


@register.filter
def seconds(value: timedelta | None) -> str:
    if value is None:
        return ""
    total = value.total_seconds()
    return f"{total * 1000:.0f} ms" if total < 1 else f"{total:.1f} s"
