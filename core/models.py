from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """A request made with an ``Idempotency-Key``, and the answer it got once it finished."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    scope = models.CharField(max_length=50)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    # Raised each time a replay takes over a claim whose request seems dead: the request holding
    # an older generation has lost the claim and may not store its answer (core/idempotency.py).
    generation = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}"


class SimulatorCall(models.Model):
    """How often a simulated remote service was asked to do one thing (by idempotency key).

    The simulators script their failures per attempt ("fail twice, then succeed"), the way a
    payment provider's test cards do.
    """

    service = models.CharField(max_length=30)
    key = models.CharField(max_length=255)
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "key"], name="simulator_call_unique")]

    def __str__(self) -> str:
        return f"{self.service} {self.key}: {self.attempts}"


class SimulatorInFlight(models.Model):
    """A call to a simulated remote service that is being processed, by idempotency key.

    Like Stripe, the simulators answer a second request with a key in flight with "key in use".
    ``until`` is when the service itself gives up on the call (its own request timeout), so a
    call whose caller died does not hold its key forever.
    """

    service = models.CharField(max_length=30)
    key = models.CharField(max_length=255)
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["service", "key"], name="simulator_in_flight_unique")]

    def __str__(self) -> str:
        return f"{self.service} {self.key} until {self.until}"


class Metrics(models.Model):
    """The shop's figures at ``/metrics`` (``core.metrics``), read from the other tables when
    scraped. Its own table stays empty: the model is where the permission to read them lives,
    ``core.view_metrics`` (``is_staff`` alone grants nothing). A table, not ``managed = False``,
    so that ``dumpdata`` and the like find one."""

    class Meta:
        default_permissions = ()
        permissions = [("view_metrics", "Can read the shop's figures at /metrics")]

    def __str__(self) -> str:
        return "/metrics"


class MetricTotal(models.Model):
    """A running total of ``/metrics``: one sample (its name, its label values as a JSON list),
    which scrapes move on by what changed since the last one (``core.metrics.totals_fold``)."""

    metric = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, blank=True)
    value = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["metric", "labels"], name="metric_total_unique")]

    def __str__(self) -> str:
        return f"{self.metric}{self.labels} {self.value}"


class Heartbeat(models.Model):
    """When a part of the shop that answers no request was last seen at work: a queue's
    worker (``queue:<name>``) or beat (``beat``). ``/readyz`` and ``/metrics`` read it
    (``core.selectors``); being in the database, it is true whichever machine each runs on."""

    name = models.CharField(max_length=100, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.seen_at}"
