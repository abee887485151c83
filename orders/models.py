import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    PENDING = "pending"
    RESERVED = "reserved"
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


FORWARD_STATUSES = frozenset({Status.PENDING, Status.RESERVED, Status.PAID})
TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.CANCELLED, Status.NEEDS_ATTENTION})


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
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When a step last started or finished: the sweeper re-drives sagas that stop moving.
    progressed_at = models.DateTimeField(default=timezone.now)
    # How often the sweeper re-drove this saga; each time it waits twice as long before the next.
    recoveries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "progressed_at"], name="order_status_progress")]
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


class SagaStep(models.Model):
    """One step of an order's saga (or one compensation), as the database last saw it."""

    class Kind(models.TextChoices):
        FORWARD = "forward"
        COMPENSATION = "compensation"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"  # an attempt owns the step and may be calling out
        WAITING = "waiting"  # between attempts (a retry or a wait is scheduled); no call in flight
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FORWARD)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "name"], name="saga_step_unique_per_order")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class ActorKind(models.TextChoices):
    """Who acted, as a kind: a customer named ``system`` still reads as a customer."""

    CUSTOMER = "customer"
    STAFF = "staff"
    SYSTEM = "system"


class OrderEvent(models.Model):
    """The order's timeline: every status change and every staff action, with who did it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    actor = models.CharField(max_length=150, default="system")
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status}→{self.to_status} by {self.acted_by}"

    @property
    def acted_by(self) -> str:
        """``staff alice``, ``customer bob``, or ``system`` (``system sweeper``)."""
        if self.actor_kind == ActorKind.SYSTEM and self.actor == "system":
            return "system"
        return f"{self.actor_kind} {self.actor}"
