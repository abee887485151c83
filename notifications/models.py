from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """An email the notifications service sent (or chose not to send) for one order event.

    The service's own table: the order is a plain id, not a key into the orders app. One row
    per event (``event_id`` is unique), written in the transaction that records the event in
    the inbox, so staff see exactly what each customer was told.
    """

    class Kind(models.TextChoices):
        PLACED = "order_placed", "order placed"
        COMPLETED = "order_completed", "order completed"
        CANCELLED = "order_cancelled", "order cancelled"
        NEEDS_ATTENTION = "order_needs_attention", "order needs attention"
        HELD = "order_held", "order held for a check"

    class Status(models.TextChoices):
        SENT = "sent"  # the mail server accepted it
        SKIPPED = "skipped"  # nobody to send it to (no such customer, or no email address)
        UNVERIFIED = "unverified", "not sent: address not verified"  # the customer never proved it theirs

    event_id = models.UUIDField(unique=True)
    order_id = models.UUIDField(db_index=True)
    user_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    recipient = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["created_at"], name="notification_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.recipient or '(nobody)'}"
