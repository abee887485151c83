from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """A Celery message written in the transaction of the state change that sends it.

    The relay publishes it after commit; until then (or while the broker is down) it waits
    here, so a message can never be lost between a commit and the broker. ``shard`` keeps one
    aggregate's messages in order (an order's id); ``available_at`` holds a retry until due.
    """

    shard = models.CharField(max_length=64)
    name = models.CharField(max_length=200)  # the task, for people reading the table
    message = models.JSONField(encoder=DjangoJSONEncoder)  # a Celery signature, as a dict
    options = models.JSONField(default=dict, encoder=DjangoJSONEncoder)  # publish options (the rest of a chain)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)
    # Written to be run by the worker that wrote it (outbox/nearby.py): held back for a lease,
    # and relayed through the broker only if that worker did not mark it sent by then.
    in_process = models.BooleanField(default=False)
    # The trace of the change that wrote the row (W3C ``traceparent``), which the relay publishes
    # the message under: the trace goes on across the outbox, whichever process relays it.
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # The relay's reads touch unsent rows only, however large the table of sent ones.
            models.Index(
                fields=["available_at", "id"],
                name="outbox_due",
                condition=Q(sent_at__isnull=True, parked_at__isnull=True),
            ),
            models.Index(
                fields=["shard", "available_at", "id"],
                name="outbox_shard_head",
                condition=Q(sent_at__isnull=True, parked_at__isnull=True),
            ),
            models.Index(fields=["sent_at"], name="outbox_sent"),
            # ``/metrics`` counts the parked rows at every scrape: a few, among a day of sent ones.
            models.Index(fields=["parked_at"], name="outbox_parked", condition=Q(parked_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.shard}]"


def mark_sent(ids: list[int]) -> None:
    """Mark the rows sent, in one statement, in the caller's transaction (or in autocommit); a
    row marked already keeps its time (a hop run in process that outlived its lease, which the
    relay sent as well). The relay's and ``outbox.nearby``'s."""
    if ids:
        connection = transaction.get_connection()
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        marks = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {OutboxMessage._meta.db_table} SET sent_at = %s WHERE id IN ({marks}) AND sent_at IS NULL",
                [now, *ids],
            )
