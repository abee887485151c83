"""The orchestrated order saga: the canvas of ``orders/plan.py``, from where the saga stands.

Each step is a command to its participant's queue, carrying the order as placed (the same
context a choreographed saga carries along its events); a per-line step is a group (a chord
that joins in the database: the last line done sends the next step). A step that fails for
good sends the chain of compensations itself, in the transaction that records the failure
(``sagas.hops.CanvasHops``). The outbox carries every hop; the step rows say where the saga
stands, so sending it again (recovery, a staff retry, a decision) only runs what is left.

Commands are named, not imported: the orchestrator depends on no participant's code.
"""

from collections.abc import Sequence
from typing import Any

from celery import chain, group, signature
from celery.canvas import Signature

from orders.events import order_context
from orders.journal import order_record_action
from orders.models import Order, OrderEvent, OrderLine
from orders.plan import ORDER_SAGA
from outbox.services import outbox_send
from sagas.hops import compensation_canvas
from sagas.models import SagaStep
from sagas.plan import Step


def order_saga(order: Order, lines: Sequence[OrderLine], *, fresh: bool = False) -> Signature[Any] | None:
    """What is left of the order's saga (``None``: nothing): every step not yet done, in order.
    A ``fresh`` saga has done nothing yet (its rows are being written)."""
    return _canvas(order, lines, _steps_left(order, fresh))


def _steps_left(order: Order, fresh: bool) -> list[Step]:
    done = set() if fresh else _steps_done(order)
    return [step for step in ORDER_SAGA.steps if step.name not in done]


def _canvas(order: Order, lines: Sequence[OrderLine], steps: list[Step]) -> Signature[Any] | None:
    context = order_context(order, lines)
    commands: list[Signature[Any]] = []
    for step in steps:
        if step.per_line:
            commands.append(
                group([signature(step.task, args=(str(order.pk), _one_line(context, line))) for line in lines])
            )
        else:
            commands.append(signature(step.task, args=(str(order.pk), context)))
    return chain(*commands) if commands else None


def saga_send(order: Order, lines: Sequence[OrderLine], *, fresh: bool = False) -> None:
    """Send what is left of the order's saga (in the caller's transaction)."""
    steps = _steps_left(order, fresh)
    canvas = _canvas(order, lines, steps)
    if canvas is None:
        return
    outbox_send(message=canvas, shard=str(order.pk), next_hop=True)
    first = steps[0]
    _journal(order, first.task, detail=f"{len(lines)} line(s), in parallel" if first.per_line else "")


def compensation_send(order: Order) -> None:
    """Send the order's compensations (in the transaction that made it ``compensating``)."""
    outbox_send(message=compensation_canvas(ORDER_SAGA, str(order.pk)), shard=str(order.pk), next_hop=True)
    _journal(order, ORDER_SAGA.compensations[0].task, detail="the undo chain begins")


def _steps_done(order: Order) -> set[str]:
    """The steps whose every row succeeded."""
    rows = SagaStep.objects.filter(saga_id=order.pk, kind=SagaStep.Kind.FORWARD).values_list("name", "status")
    status: dict[str, bool] = {}
    for name, row_status in rows:
        base = name.partition(":")[0]
        status[base] = status.get(base, True) and row_status == SagaStep.Status.SUCCEEDED
    return {name for name, done in status.items() if done}


def _one_line(context: dict[str, Any], line: OrderLine) -> dict[str, Any]:
    return context | {"lines": [{"line_id": line.pk, "sku": line.sku, "quantity": line.quantity}]}


def _journal(order: Order, command: str, detail: str = "") -> None:
    """The orchestrator's first command, in the journal (each step journals the next one)."""
    order_record_action(
        order=order, actor="system", service="orders", kind=OrderEvent.Kind.COMMAND, name=command, message=detail
    )
