import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections, models
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from django.utils.functional import cached_property

from sagas.models import SagaStep

if TYPE_CHECKING:
    from payments.models import Payment
    from shipping.models import Shipment


class Status(models.TextChoices):
    PENDING = "pending"
    RESERVED = "reserved"
    IN_REVIEW = "in_review"  # held by the risk screening until a person decides
    PAID = "paid"
    COMPLETED = "completed"
    COMPENSATING = "compensating"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


class Reason(models.TextChoices):
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_FAILED = "payment_failed"
    SHIPPING_FAILED = "shipping_failed"
    CUSTOMER_REQUEST = "customer_request"
    STAFF_REQUEST = "staff_request"
    EXPIRED = "expired"
    RISK_REJECTED = "risk_rejected"


FORWARD_STATUSES = frozenset({Status.PENDING, Status.RESERVED, Status.IN_REVIEW, Status.PAID})
TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.CANCELLED, Status.NEEDS_ATTENTION})


class Coordination(models.TextChoices):
    """How the order's saga is coordinated (contract §7)."""

    ORCHESTRATION = "orchestration"  # the canvas of ``orders/saga.py`` decides each step
    CHOREOGRAPHY = "choreography"  # each service reacts to the others' events (``*/handlers.py``)


class OrderQuerySet(models.QuerySet["Order"]):
    """Orders that can bring along what other services keep about them: the saga's steps (the
    step runtime's rows), the payment and the shipment. Each service names the order by id
    only, so Django has no relation to prefetch: three queries for a page of orders."""

    _with_saga_steps = False

    def lock(self, pk: Any) -> "Order":
        """The order ``pk`` (``DoesNotExist`` if none), its row locked until the caller's
        transaction ends, as ``select_for_update(no_key=True).get(pk=pk)`` would.

        ``FOR NO KEY UPDATE``, the lock PostgreSQL's own ``UPDATE`` of the row takes: the saga's
        steps, staff and the sweeper still take turns, but a row that only points at the order
        (a journal line written beside the saga, an email's) is not held up by them (its foreign
        key's check locks ``FOR KEY SHARE``, which ``FOR UPDATE`` would block).

        In SQL of its own: each step of a saga locks its order twice (seven times an orchestrated
        order), and ``select_for_update().get()`` cost 0.36 to 0.39 ms of CPU a call against this
        statement's 0.2 ms (bench/improvements.md, seventh round). SQLite has no row locks: its
        writing transactions hold the whole database.
        """
        connection = connections[self.db]
        if not connection.in_atomic_block:
            raise TransactionManagementError("Order.objects.lock() belongs inside a transaction")
        pk_field = self.model._meta.pk
        assert pk_field is not None
        sql = f"SELECT * FROM {self.model._meta.db_table} WHERE {pk_field.column} = %s"
        if connection.features.has_select_for_no_key_update:
            sql += " FOR NO KEY UPDATE"
        elif connection.features.has_select_for_update:
            sql += " FOR UPDATE"
        for order in self.raw(sql, [pk_field.get_db_prep_value(pk, connection)]):
            return order
        raise self.model.DoesNotExist(f"No order {pk}")

    def with_saga_steps(self) -> "OrderQuerySet":
        clone: OrderQuerySet = self._chain()  # type: ignore[attr-defined]
        clone._with_saga_steps = True
        return clone

    def _clone(self) -> "OrderQuerySet":
        clone: OrderQuerySet = super()._clone()  # type: ignore[misc]
        clone._with_saga_steps = self._with_saga_steps
        return clone

    def _fetch_all(self) -> None:
        fetched = self._result_cache is not None
        super()._fetch_all()
        if fetched or not self._with_saga_steps or not self._result_cache:
            return
        from payments.selectors import payments_of
        from shipping.selectors import shipments_of

        orders = [o for o in self._result_cache if isinstance(o, Order)]
        steps: dict[Any, list[SagaStep]] = {o.pk: [] for o in orders}
        for step in SagaStep.objects.filter(saga_id__in=steps).order_by("position", "id"):
            steps[step.saga_id].append(step)
        payments, shipments = payments_of(list(steps)), shipments_of(list(steps))
        for order in orders:
            order.__dict__["saga_steps"] = steps[order.pk]
            order.__dict__["payment"] = payments.get(order.pk)
            order.__dict__["shipment"] = shipments.get(order.pk)


# An order whose status or repairs changed, or whose saga moved (``saga_moved``: a step of it
# was written), since ``/metrics`` last counted it: the partial index's condition, and the
# scrape's, which must read alike for the index to serve it. Status has an index of its own, so
# a status change was never a HOT update; the flag changes once per scrape, and a saga's steps
# move it from false to true once, the other moves find it true already (``orders.metrics``).
ORDER_UNCOUNTED = (
    ~models.Q(status=models.F("counted_status"))
    | ~models.Q(reconcile_repairs=models.F("counted_repairs"))
    | models.Q(saga_moved=True)
)


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    cancellation_reason = models.CharField(max_length=20, choices=Reason.choices, null=True, blank=True)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    shipping_address = models.JSONField()
    # A token issued by the payment provider; card data never reaches us.
    payment_token = models.CharField(max_length=100)
    coordination = models.CharField(max_length=13, choices=Coordination.choices, default=Coordination.ORCHESTRATION)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When a step last started or finished: the sweeper re-drives sagas that stop moving. In no
    # index: a step's transaction moves it, and updates the row in place (HOT) when nothing
    # indexed changes; the sweeper finds the sagas in flight by their status.
    progressed_at = models.DateTimeField(default=timezone.now)
    # How often the sweeper re-drove this saga; each time it waits twice as long before the next.
    recoveries = models.PositiveSmallIntegerField(default=0)
    # When the reconciler last compared the providers' ledgers with this order, and what did not
    # add up that it could not repair by the saga's own rules (staff look at it; empty: nothing).
    reconciled_at = models.DateTimeField(null=True, blank=True)
    ledger_mismatch = models.CharField(max_length=500, blank=True)
    reconcile_repairs = models.PositiveSmallIntegerField(default=0)  # how often it repaired this order
    # The order as ``/metrics`` last counted it (``orders.metrics``; empty: not yet): an order that
    # differs is what the next scrape folds into the running totals.
    counted_status = models.CharField(max_length=20, db_default="", editable=False)
    counted_repairs = models.PositiveSmallIntegerField(db_default=0, editable=False)
    # Set whenever the saga moves (``progressed_at``: a step of it was written, under this row's
    # lock), cleared when a scrape has counted its steps.
    saga_moved = models.BooleanField(db_default=False, editable=False)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "reconciled_at"], name="order_status_reconciled"),
            models.Index(fields=["id"], condition=ORDER_UNCOUNTED, name="order_to_count"),
            models.Index(
                fields=["coordination"], condition=~models.Q(ledger_mismatch=""), name="order_ledger_mismatch"
            ),
        ]
        # The staff actions of the admin; each is granted on its own (superusers have them all).
        permissions = [
            ("cancel_order", "Can cancel an order and compensate it"),
            ("retry_saga", "Can retry an order's saga"),
            ("retry_compensation", "Can retry an order's compensation"),
        ]

    def __str__(self) -> str:
        return f"Order {self.id} ({self.status})"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @cached_property
    def payment(self) -> "Payment | None":
        """The payment service's record of this order's payment; ``None`` until it acts."""
        from payments.selectors import payment_of

        return payment_of(self.pk)

    @cached_property
    def shipment(self) -> "Shipment | None":
        """The shipping service's record of this order's shipment; ``None`` until it acts."""
        from shipping.selectors import shipment_of

        return shipment_of(self.pk)

    @cached_property
    def saga_steps(self) -> list[SagaStep]:
        """The steps of the order's saga, in plan order (the runtime's rows for this order)."""
        return list(SagaStep.objects.filter(saga_id=self.pk).order_by("position", "id"))


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey("shop.Product", on_delete=models.PROTECT, related_name="+")
    sku = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "sku"], name="order_line_sku_unique")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"

    @property
    def line_total(self) -> object:
        return self.unit_price * self.quantity


class ActorKind(models.TextChoices):
    """Who acted, as a kind: a customer named ``system`` still reads as a customer."""

    CUSTOMER = "customer"
    STAFF = "staff"
    SYSTEM = "system"


# A journal line of the sweeper driving a stalled saga on (``orders.services.saga_recover_stalled``).
REDRIVE = models.Q(actor="sweeper", actor_kind=ActorKind.SYSTEM, kind="action")
REDRIVE_UNCOUNTED = REDRIVE & models.Q(counted=False)


class OrderEvent(models.Model):
    """The order's journal: every command, event, retry, compensation, status change, staff
    and sweeper action, with the service that acted (contract §3, ``/api/orders/<id>/journal/``).
    """

    class Kind(models.TextChoices):
        STATUS = "status"  # the order's status changed
        COMMAND = "command"  # the orchestrator sent a step to a service
        EVENT = "event"  # a service announced what happened
        STEP = "step"  # a step's outcome by its participant (succeeded, failed, landed late)
        RETRY = "retry"  # a step or compensation will run again
        COMPENSATION = "compensation"
        ACTION = "action"  # a person or the sweeper acted

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.CharField(max_length=150, default="system")
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    message = models.TextField(blank=True)  # the journal's ``detail``
    service = models.CharField(max_length=20, default="orders")  # who acted: a service, staff or sweeper
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.STATUS)
    name = models.CharField(max_length=200, blank=True)  # the event, command or step
    # The OpenTelemetry trace the line was written in (empty while tracing is off): the line's
    # way into the trace of the request, task or handler that wrote it.
    trace_id = models.CharField(max_length=32, blank=True)
    # Whether ``/metrics`` counted this line yet: only the sweeper's re-drives are ever counted
    # (``REDRIVE``), so the partial index holds only those still to count.
    counted = models.BooleanField(db_default=False, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["id"], condition=REDRIVE_UNCOUNTED, name="order_event_redrive_uncounted")]

    def __str__(self) -> str:
        return f"{self.from_status}→{self.to_status} by {self.acted_by}"

    @property
    def acted_by(self) -> str:
        """``staff alice``, ``customer bob``, or ``system`` (``system sweeper``)."""
        if self.actor_kind == ActorKind.SYSTEM and self.actor == "system":
            return "system"
        return f"{self.actor_kind} {self.actor}"
