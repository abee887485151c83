"""What ``/readyz`` and ``/metrics`` read about the parts of the shop that answer no request."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.models import Heartbeat

BEAT = "beat"
QUEUE_PREFIX = "queue:"


def heartbeat_ages(*, now: datetime) -> dict[str, float]:
    """Seconds since each queue was last served and since beat last ticked, by name (``beat``,
    and each queue of ``SHOP_QUEUES``); infinite for one never seen."""
    seen = dict(Heartbeat.objects.values_list("name", "seen_at"))
    names = [BEAT, *(f"{QUEUE_PREFIX}{queue}" for queue in settings.SHOP_QUEUES)]
    return {
        name.removeprefix(QUEUE_PREFIX): (now - seen[name]).total_seconds() if name in seen else float("inf")
        for name in names
    }


def queues_moved_past(queues: Iterable[str]) -> dict[str, datetime]:
    """For each queue served at least once, a moment before which everything published to it
    has been taken off it by a worker.

    A worker discards a heartbeat older than its expiry (``HEALTH_WORKER_STALE_SECONDS``, as beat
    sends it), so the last one served was published less than that before it was served, behind
    everything published to its queue before it: a queue hands out its messages in order. A queue
    behind by more than that serves no heartbeat until it has caught up; one no worker serves,
    none at all. (Beat's and the workers' clocks are taken to agree within seconds.)"""
    names = {f"{QUEUE_PREFIX}{queue}": queue for queue in queues}
    expiry = timedelta(seconds=settings.HEALTH_WORKER_STALE_SECONDS)
    served = Heartbeat.objects.filter(name__in=names).values_list("name", "seen_at")
    return {names[name]: seen_at - expiry for name, seen_at in served}


# What must drain for the shop to be ready: each registered callable answers when the oldest
# message still due was due (``None``: nothing waits). The outbox registers its own (outbox/apps.py),
# so that core, which every app uses, depends on none of them.
_backlogs: list[Callable[[], datetime | None]] = []


def backlog_register(oldest_due: Callable[[], datetime | None]) -> None:
    if oldest_due not in _backlogs:
        _backlogs.append(oldest_due)


@dataclass(frozen=True)
class Readiness:
    queues: dict[str, bool]  # queue -> served within HEALTH_WORKER_STALE_SECONDS
    beat: bool
    outbox: bool

    @property
    def ready(self) -> bool:
        return self.beat and self.outbox and all(self.queues.values())


def readiness() -> Readiness:
    """Is every queue served, does beat tick, does the outbox drain, each within its threshold.

    Beat's tick is stamped by beat itself as it sends the heartbeats (config/celery.py) and each
    queue's by the worker that consumes one (``core.heartbeat``): a queue with no worker goes
    stale while beat stays fresh, and with beat stopped the queues go stale after it."""
    now = timezone.now()
    ages = heartbeat_ages(now=now)
    oldest = min(filter(None, (oldest_due() for oldest_due in _backlogs)), default=None)
    return Readiness(
        queues={queue: ages[queue] <= settings.HEALTH_WORKER_STALE_SECONDS for queue in settings.SHOP_QUEUES},
        beat=ages[BEAT] <= settings.HEALTH_BEAT_STALE_SECONDS,
        outbox=oldest is None or (now - oldest).total_seconds() <= settings.HEALTH_OUTBOX_STALE_SECONDS,
    )
