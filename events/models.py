from django.db import models
from django.utils import timezone


class InboxEntry(models.Model):
    """An event a consumer has handled: written in the transaction of the handler's effect.

    The unique (consumer, event) pair is what makes a redelivered event change nothing; it is
    written only when the handler succeeded, so a handler that failed is tried again.
    A handler that keeps failing for reasons that are not business decisions is recorded
    here as ``parked`` with its error, instead of being retried forever.
    """

    consumer = models.CharField(max_length=120)
    event_id = models.UUIDField()
    event_name = models.CharField(max_length=80)
    saga_id = models.CharField(max_length=64, db_index=True)
    handled_at = models.DateTimeField(default=timezone.now)
    parked = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    event = models.JSONField(default=dict)  # the whole envelope of a parked event, to re-queue it

    class Meta:
        verbose_name_plural = "inbox entries"
        constraints = [models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_once_per_consumer")]
        indexes = [
            models.Index(fields=["handled_at"], name="inbox_handled"),
            # The admin's list of parked events and /metrics read the few parked rows only.
            models.Index(fields=["consumer"], name="inbox_parked", condition=models.Q(parked=True)),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} → {self.consumer}"
