from django.db import models


class SagaStep(models.Model):
    """One step of a saga (or one compensation), as the database last saw it.

    ``saga_id`` names the saga's aggregate (an order's id); the runtime knows nothing else
    of it. The rows are planned by the saga's owner and moved by ``sagas.runtime``.
    """

    class Kind(models.TextChoices):
        FORWARD = "forward"
        COMPENSATION = "compensation"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"  # an attempt owns the step and may be calling out
        WAITING = "waiting"  # between attempts (a retry or a wait is scheduled); no call in flight
        HELD = "held"  # waits for a person's decision (``step_decide``); nothing is scheduled
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    # The column keeps its first name: the table began as the orders app's.
    saga_id = models.UUIDField(db_column="order_id")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.FORWARD)
    position = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The row as ``/metrics`` last counted it (the saga owner's collector): a row that differs is
    # what the next scrape folds into the running totals. A planned row is counted as it is (it
    # counts nowhere); every change the runtime makes to a step moves its status or its attempts,
    # the timings with them, so those two tell a changed row. The scrape finds the changed rows
    # through their owner (the runtime records progress on the owner, ``Saga.touch``, whenever
    # it writes a step): no index here names a column the runtime moves, so a step's update
    # stays HOT in PostgreSQL (no index entry written), as on the saga's hottest path it must.
    counted_status = models.CharField(max_length=10, db_default=Status.PENDING, editable=False)
    counted_attempts = models.PositiveIntegerField(db_default=0, editable=False)
    counted_started_at = models.DateTimeField(null=True, editable=False)
    counted_finished_at = models.DateTimeField(null=True, editable=False)

    class Meta:
        db_table = "orders_sagastep"
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["saga_id", "name"], name="saga_step_unique_per_order")]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"
