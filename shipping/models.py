from django.db import models


class Shipment(models.Model):
    """Our record of an order's shipment with the carrier."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CREATED = "created"
        REJECTED = "rejected"
        CANCELLED = "cancelled"

    # The order it ships, by id: the shipping service owns this table and knows no order model.
    order_id = models.UUIDField(unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    carrier = models.CharField(max_length=40, blank=True)
    tracking_number = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number} ({self.status})"


class CarrierShipment(models.Model):
    """The simulated carrier's own register of shipments it accepted."""

    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        CANCELLED = "cancelled"

    idempotency_key = models.CharField(max_length=255, unique=True)
    tracking_number = models.CharField(max_length=40, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACCEPTED)
    postal_code = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.tracking_number} ({self.status})"
