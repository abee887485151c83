"""The order as the step runtime sees a saga: ``sagas.ledger.Saga``, backed by the order's row.

The runtime locks the order through this ledger, asks whether a step may run in the order's
status, and tells it what happened; every move goes through the status machine
(``orders.transitions``) and every line into the order's journal.
"""

from typing import Any

from django.utils import timezone

from orders import coordination
from orders.journal import order_record_action
from orders.models import FORWARD_STATUSES, ActorKind, Coordination, Order, OrderEvent, Reason, Status
from orders.plan import FORWARD_RANK
from orders.transitions import order_transition
from sagas.plan import ForwardStep


class OrderSaga:
    owner = "orders"

    def __init__(self, order: Order) -> None:
        self.order = order
        self.id = str(order.pk)

    @property
    def forward(self) -> bool:
        return self.order.status in FORWARD_STATUSES

    @property
    def compensating(self) -> bool:
        return self.order.status == Status.COMPENSATING

    @property
    def orchestrated(self) -> bool:
        return self.order.coordination == Coordination.ORCHESTRATION

    def advance(self, step: ForwardStep, *, message: str) -> None:
        """Orchestrated, the step moves the order on to the status customers see after it (if
        it has one) in the transaction of its outcome; choreographed, the orders service moves
        it when the step's event arrives, and the step only records its progress."""
        to = step.advances_to
        if self.orchestrated and to is not None and _further(to, self.order.status):
            order_transition(order=self.order, to=Status(to), message=message)
        else:
            self.touch()

    def hold(self, step: ForwardStep, *, message: str) -> None:
        """In both modes: the customer sees at once that a person is looking at the order."""
        if step.held_as is not None and _further(step.held_as, self.order.status):
            order_transition(order=self.order, to=Status(step.held_as), message=message)
        else:
            self.touch()

    def resume(self) -> None:
        coordination.saga_resume(self.order)

    def turn_back(self, *, reason: str, message: str) -> None:
        order_transition(order=self.order, to=Status.COMPENSATING, reason=Reason(reason), message=message)

    def reopen(self, *, message: str) -> None:
        """A cancelled order (or one waiting for staff) is compensating again while what landed
        late is taken back: its status says so, and ``cancelled`` comes only once it is undone."""
        if self.order.status != Status.COMPENSATING:
            order_transition(order=self.order, to=Status.COMPENSATING, message=message)
        coordination.compensation_start(self.order)

    def record(self, *, service: str, kind: str, name: str, detail: str = "", staff: str = "") -> None:
        order_record_action(
            order=self.order,
            actor=staff or "system",
            actor_kind=ActorKind.STAFF if staff else ActorKind.SYSTEM,
            service=service,
            kind=OrderEvent.Kind(kind),
            name=name,
            message=detail,
        )

    def touch(self) -> None:
        self.order.progressed_at = timezone.now()
        Order.objects.filter(pk=self.order.pk).update(progressed_at=self.order.progressed_at, saga_moved=True)


def _further(status: str, than: str) -> bool:
    return FORWARD_RANK.get(status, -1) > FORWARD_RANK.get(than, -1)


class OrderLedger:
    def lock(self, saga_id: Any) -> OrderSaga:
        return OrderSaga(Order.objects.lock(saga_id))

    def note(self, saga_id: Any, *, service: str, kind: str, name: str, detail: str = "") -> bool:
        """The line names the order's status as last committed (a step may be moving it on)."""
        order = Order.objects.only("status").filter(pk=saga_id).first()
        if order is None:
            return False
        OrderSaga(order).record(service=service, kind=kind, name=name, detail=detail)
        return True
