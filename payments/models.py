from django.db import models


class Payment(models.Model):
    """Our record of an order's payment. Holds the provider's token and reference, never card data."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        DECLINED = "declined"
        FAILED = "failed"
        REFUNDED = "refunded"
        REFUND_FAILED = "refund_failed"
        # The provider refused the shop's own request (a bug or a setting): staff must look.
        REJECTED = "rejected"

    # The order it pays for, by id: the payment service owns this table and knows no order model.
    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.PENDING)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3)
    # The provider's reference for the order's charge; with Stripe, the order's one PaymentIntent,
    # written before it is confirmed (payments/stripe_provider.py).
    provider_reference = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.status})"


class ProviderTransaction(models.Model):
    """The simulated payment provider's own ledger: what a real provider keeps on its side."""

    class Kind(models.TextChoices):
        CHARGE = "charge"
        REFUND = "refund"

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    kind = models.CharField(max_length=6, choices=Kind.choices)
    status = models.CharField(max_length=9, choices=Status.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=40, unique=True)
    idempotency_key = models.CharField(max_length=255)
    token = models.CharField(max_length=100)
    order_ref = models.CharField(max_length=64, db_index=True)  # metadata the merchant attached
    charge = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # The provider's idempotency: one successful charge (or refund) per key, whatever happens.
            models.UniqueConstraint(
                fields=["kind", "idempotency_key"],
                condition=models.Q(status="succeeded"),
                name="provider_one_success_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.status}"


class StripeEvent(models.Model):
    """The inbox of Stripe's webhook events: one row per event id, however often Stripe delivers
    it, so that each is recorded (and acted on) once."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    order_id = models.UUIDField(null=True, blank=True, db_index=True)
    object_id = models.CharField(max_length=255, blank=True)  # the PaymentIntent's (or refund's) id
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
