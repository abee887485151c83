"""System checks of the deployment (``manage.py check --deploy``)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

# Backends whose counts live in one process or on one machine's disk: with two web processes
# (or two machines) behind a load balancer, each keeps its own, and every limit is multiplied.
PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache",
    "django.core.cache.backends.dummy.DummyCache",
}


@register(Tags.caches, Tags.security, deploy=True)
def shared_cache_check(
    *, app_configs: Sequence[AppConfig] | None, databases: Sequence[str] | None, **kwargs: Any
) -> list[CheckMessage]:
    """The default cache holds DRF's throttles and the web forms' limits (``core.ratelimits``):
    in production it must be one every web process shares, or each process counts its own."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in PER_PROCESS_CACHES:
        return []
    return [
        Error(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared by the web processes: "
            "each counts its own rate limits, so with two web processes or machines every limit is doubled.",
            hint="Set CACHE_URL to a cache every web process shares, e.g. redis://redis.internal:6379/2.",
            id="core.E001",
        )
    ]
