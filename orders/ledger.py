"""The order as the step runtime sees a saga: ``sagas.ledger.Saga``, backed by the order's row.

The runtime locks the order through this ledger, asks whether a step may run in the order's
status, and tells it what happened; every move goes through the status machine
(``orders.transitions``) and every line into the order's journal.
"""

from typing import Any

from django.utils import timezone

from orders.models import FORWARD_STATUSES, Order, OrderEvent, Reason, Status
from orders.transitions import order_transition
from sagas.plan import ForwardStep


class OrderSaga:
    def __init__(self, order: Order) -> None:
        self.order = order
        self.id = str(order.pk)

    @property
    def forward(self) -> bool:
        return self.order.status in FORWARD_STATUSES

    @property
    def compensating(self) -> bool:
        return self.order.status == Status.COMPENSATING

    def may_run(self, step: ForwardStep) -> bool:
        return self.order.status == step.runs_in

    def advance(self, step: ForwardStep, *, message: str) -> None:
        if step.advances_to is not None:
            order_transition(order=self.order, to=Status(step.advances_to), message=message)

    def turn_back(self, *, reason: str, message: str) -> None:
        order_transition(order=self.order, to=Status.COMPENSATING, reason=Reason(reason), message=message)

    def escalate(self, *, message: str) -> None:
        """A late charge or shipment that could not be undone: staff must act. Only an order
        that is turning back or has been cancelled needs that; a completed one keeps it."""
        if self.order.status in (Status.COMPENSATING, Status.CANCELLED):
            order_transition(order=self.order, to=Status.NEEDS_ATTENTION, message=message)

    def record(self, *, service: str, kind: str, name: str, detail: str = "") -> None:
        OrderEvent.objects.create(
            order=self.order, to_status=self.order.status, service=service, kind=kind, name=name, message=detail
        )

    def touch(self) -> None:
        self.order.progressed_at = timezone.now()
        Order.objects.filter(pk=self.order.pk).update(progressed_at=self.order.progressed_at)


class OrderLedger:
    def lock(self, saga_id: Any) -> OrderSaga:
        return OrderSaga(Order.objects.select_for_update().get(pk=saga_id))
